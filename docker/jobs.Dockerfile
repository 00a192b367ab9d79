# The Vertex AI job image: the ML core and dagster-pipes only (no Dagster), on CUDA for the L4 /
# T4 steps (image embeddings, GAT training). Vertex runs `python -m recsys_assets.pipes.<name>`.
# Build from the repository root: docker build -f docker/jobs.Dockerfile -t recsys-jobs .

FROM nvidia/cuda:12.6.3-cudnn-runtime-ubuntu24.04 AS build
ENV DEBIAN_FRONTEND=noninteractive PIP_NO_CACHE_DIR=1 PIP_DISABLE_PIP_VERSION_CHECK=1
# The base tag pins the Ubuntu release; its python3.12 is whatever security update is current
# (an exact apt version disappears from the archive when the next update lands).
# hadolint ignore=DL3008
RUN apt-get update \
    && apt-get install -y --no-install-recommends python3.12 python3.12-venv \
    && rm -rf /var/lib/apt/lists/*
RUN python3.12 -m venv /opt/venv
ENV PATH=/opt/venv/bin:$PATH
WORKDIR /src
COPY requirements.lock docker/jobs-requirements.in ./
# The ML core (docker/jobs-requirements.in) at the lock's versions; torch's CUDA build from PyPI.
RUN pip install -c requirements.lock -r jobs-requirements.in

FROM nvidia/cuda:12.6.3-cudnn-runtime-ubuntu24.04
ENV DEBIAN_FRONTEND=noninteractive PATH=/opt/venv/bin:$PATH PYTHONUNBUFFERED=1
# libgomp1: LightGBM's OpenMP runtime (its wheel links the system's).
# hadolint ignore=DL3008
RUN apt-get update \
    && apt-get install -y --no-install-recommends python3.12 libgomp1 \
    && rm -rf /var/lib/apt/lists/* \
    && useradd --create-home --uid 10001 jobs
COPY --from=build /opt/venv /opt/venv
WORKDIR /app
# Only what the job modules run: the settings tree, the jobs, and the parts of the ML core they
# import (embeddings, models, the graph edges, io); no Dagster.
COPY --chown=jobs:jobs recsys_assets/__init__.py recsys_assets/__init__.py
COPY --chown=jobs:jobs recsys_assets/settings recsys_assets/settings
COPY --chown=jobs:jobs recsys_assets/pipes recsys_assets/pipes
COPY --chown=jobs:jobs recsys_assets/core/__init__.py recsys_assets/core/markdown.py recsys_assets/core/outcomes.py recsys_assets/core/plots.py recsys_assets/core/processes.py recsys_assets/core/leakage.py recsys_assets/core/ann.py recsys_assets/core/
COPY --chown=jobs:jobs recsys_assets/core/io recsys_assets/core/io
COPY --chown=jobs:jobs recsys_assets/core/embeddings recsys_assets/core/embeddings
COPY --chown=jobs:jobs recsys_assets/core/models recsys_assets/core/models
COPY --chown=jobs:jobs recsys_assets/core/ranking recsys_assets/core/ranking
COPY --chown=jobs:jobs recsys_assets/core/catalogue/__init__.py recsys_assets/core/catalogue/display.py recsys_assets/core/catalogue/
COPY --chown=jobs:jobs recsys_assets/core/graphs/__init__.py recsys_assets/core/graphs/edges.py recsys_assets/core/graphs/node_maps.py recsys_assets/core/graphs/splits.py recsys_assets/core/graphs/knn.py recsys_assets/core/graphs/
USER 10001
ENTRYPOINT ["python", "-m"]
