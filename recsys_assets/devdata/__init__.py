"""Development data, not the production pipeline: the synthetic catalogue and MovieLens conversion."""
