# The recommendation API (serving/): small, non-root, uvicorn. On Cloud Run, one worker per
# container (instances scale); elsewhere set API_WORKERS to the cores it may use.
# Build from the repository root: docker build -f docker/api.Dockerfile -t recsys-api .

FROM python:3.11.11-slim-bookworm AS build
ENV PIP_NO_CACHE_DIR=1 PIP_DISABLE_PIP_VERSION_CHECK=1
RUN python -m venv /opt/venv
ENV PATH=/opt/venv/bin:$PATH
WORKDIR /src
COPY requirements.lock docker/api-requirements.in ./
# Only what the API imports (docker/api-requirements.in), at the lock's versions.
RUN pip install -c requirements.lock -r api-requirements.in

FROM python:3.11.11-slim-bookworm
ENV PATH=/opt/venv/bin:$PATH PYTHONUNBUFFERED=1 PORT=8080 API_WORKERS=1
# libgomp1: LightGBM's OpenMP runtime (its wheel links the system's), for two-stage versions.
# The base tag pins the Debian release.
# hadolint ignore=DL3008
RUN apt-get update \
    && apt-get install -y --no-install-recommends libgomp1 \
    && rm -rf /var/lib/apt/lists/* \
    && useradd --create-home --uid 10001 api
COPY --from=build /opt/venv /opt/venv
WORKDIR /app
# Only what the API runs: serving/, the settings tree, and the core's io, serving (the version
# loader), ranking (a two-stage version's candidates, features and ranker), experiments (the
# arms) and warehouse packages; no Dagster, no training code.
COPY --chown=api:api serving serving
COPY --chown=api:api recsys_assets/__init__.py recsys_assets/__init__.py
COPY --chown=api:api recsys_assets/settings recsys_assets/settings
COPY --chown=api:api recsys_assets/core/__init__.py recsys_assets/core/__init__.py
COPY --chown=api:api recsys_assets/core/io recsys_assets/core/io
COPY --chown=api:api recsys_assets/core/serving/__init__.py recsys_assets/core/serving/bundle.py recsys_assets/core/serving/
COPY --chown=api:api recsys_assets/core/ranking recsys_assets/core/ranking
COPY --chown=api:api recsys_assets/core/experiments/__init__.py recsys_assets/core/experiments/assignment.py recsys_assets/core/experiments/

COPY --chown=api:api recsys_assets/core/warehouse recsys_assets/core/warehouse
USER 10001
EXPOSE 8080
HEALTHCHECK --interval=30s --timeout=5s --retries=3 \
    CMD ["python", "-c", "import os, urllib.request; urllib.request.urlopen(f'http://127.0.0.1:{os.environ[\"PORT\"]}/healthz', timeout=4)"]
# A fresh multiprocess folder per start: /metrics adds up the workers (serving/metrics.py); a
# request-id key per start unless one is set, shared by the workers (serving/request_ids.py).
CMD ["sh", "-c", "export PROMETHEUS_MULTIPROC_DIR=$(mktemp -d) RECSYS_REQUEST_ID_KEY=${RECSYS_REQUEST_ID_KEY:-$(od -An -N16 -tx1 /dev/urandom | tr -d ' \\n')} && exec uvicorn --factory serving.app:create_app --host 0.0.0.0 --port \"$PORT\" --workers \"$API_WORKERS\" --no-access-log"]
