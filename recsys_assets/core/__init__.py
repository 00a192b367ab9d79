"""The ML core, one package per asset family: ``catalogue``, ``embeddings``, ``graphs``,
``models``, ``serving``, ``monitoring``, plus ``warehouse`` and ``io`` under them all.

Plain Python over numpy, pandas, torch and faiss, configured by ``recsys_assets.settings``.
Nothing here imports Dagster, the assets, the job modules, ``resources`` or ``serving``: the
same functions run inside assets, inside Vertex AI job containers, in the API and in the
benchmarks (``recsys_assets_tests/project/test_architecture.py`` holds it to that).
"""
