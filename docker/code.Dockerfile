# The Dagster code location (gRPC server); the webserver and the daemon run from the same image
# with another command (docker/compose.yaml). GPU steps do not run here: they go to Vertex AI.
# Build from the repository root: docker build -f docker/code.Dockerfile -t recsys-code .

FROM python:3.11.11-slim-bookworm AS build
ENV PIP_NO_CACHE_DIR=1 PIP_DISABLE_PIP_VERSION_CHECK=1
RUN python -m venv /opt/venv
ENV PATH=/opt/venv/bin:$PATH
WORKDIR /src
COPY pyproject.toml requirements.lock README.md ./
COPY recsys_assets recsys_assets
COPY resources resources
COPY serving serving
# CPU torch (the lock's version) from PyTorch's index; everything else pinned by the lock.
RUN pip install --extra-index-url https://download.pytorch.org/whl/cpu -c requirements.lock .

FROM python:3.11.11-slim-bookworm
ENV PATH=/opt/venv/bin:$PATH PYTHONUNBUFFERED=1 DAGSTER_HOME=/opt/dagster/dagster_home
# libgomp1: LightGBM's OpenMP runtime (its wheel links the system's), for the ranker's job when
# it runs here as a subprocess. The base tag pins the Debian release.
# hadolint ignore=DL3008
RUN apt-get update \
    && apt-get install -y --no-install-recommends libgomp1 \
    && rm -rf /var/lib/apt/lists/* \
    && useradd --create-home --uid 10001 dagster
COPY --from=build /opt/venv /opt/venv
COPY docker/dagster_home /opt/dagster/dagster_home
WORKDIR /opt/dagster
USER 10001
EXPOSE 4000
HEALTHCHECK --interval=30s --timeout=10s --retries=3 CMD ["dagster", "api", "grpc-health-check", "-p", "4000"]
CMD ["dagster", "code-server", "start", "-h", "0.0.0.0", "-p", "4000", "-m", "recsys_assets.definitions"]
