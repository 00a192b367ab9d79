"""The two-stage ranker's half that needs neither torch nor Dagster: candidates from every
retriever's scores, their features, and ranking one user online. Training and evaluation
(``core/models/ranker/``) and the API (``serving/``) share it, so a feature means the same
in all three."""
