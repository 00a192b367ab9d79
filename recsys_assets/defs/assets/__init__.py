"""Dagster assets, one module per asset family."""
