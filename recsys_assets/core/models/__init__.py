"""Recommenders (popularity, MF, LightGCN, the GAT), their training data, metrics and evaluation."""
