"""Job modules: ``python -m recsys_assets.jobs.<name>`` inside a subprocess or a Vertex AI container.

Each imports only ``dagster_pipes`` and the ML core, reads its parameters from the Pipes
extras, reads and writes artifacts by URI, and reports its metadata back through Pipes.
"""
