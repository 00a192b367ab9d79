"""The ML core: plain Python over numpy, pandas and the readers' own parsers.

Nothing under this package may import Dagster: the same functions run inside assets,
inside Vertex AI job containers and inside the benchmarks.
"""
