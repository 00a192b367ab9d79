"""Where heavy steps run: Dagster resources that start a module as a local subprocess or as a
Vertex AI CustomJob, talking Dagster Pipes. Generic: nothing here imports ``recsys_assets``;
the deployment's settings configure them (``recsys_assets/defs/environments.py``)."""
