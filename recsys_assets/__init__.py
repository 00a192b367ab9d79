"""Multi-modal GNN recommendations as a Dagster asset graph.

``recsys_assets.core`` is the ML core and imports without Dagster; the Dagster
definitions live in ``recsys_assets.definitions``.
"""
