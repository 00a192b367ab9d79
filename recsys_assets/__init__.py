"""Multi-modal GNN recommendations as a Dagster asset graph.

``recsys_assets.settings`` (every setting, one typed tree) and ``recsys_assets.core`` (the ML core)
import without Dagster, as do the job modules (``recsys_assets.pipes``, which need only
``dagster_pipes``); the Dagster definitions live in ``recsys_assets.definitions``. ARCHITECTURE.md
draws the layers.
"""
