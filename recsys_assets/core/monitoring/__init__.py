"""Drift monitoring: the formulas, one day against the training window, history, and the retrain policy."""
