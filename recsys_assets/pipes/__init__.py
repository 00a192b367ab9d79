"""Job modules: ``python -m recsys_assets.pipes.<name>`` inside a subprocess or a Vertex AI container.

Each takes a typed params object (``contracts.py``) from the Pipes extras, reads and writes
artifacts by URI, calls the ML core, and reports its metadata and checks back through Pipes.
They import ``dagster_pipes``, the core and the settings, never Dagster itself.
"""
