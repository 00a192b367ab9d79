"""The API's settings, read once from the environment (``RECSYS_*``)."""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path

PROJECT_ROOT = Path(__file__).resolve().parent.parent


def _float(name: str, default: float) -> float:
    raw = os.environ.get(name)
    if raw is None or raw == "":
        return default
    try:
        return float(raw)
    except ValueError as error:
        raise ValueError(f"{name}={raw!r}: expected a number") from error


@dataclass(frozen=True)
class ServingSettings:
    #: The manifest the API follows (a local path or gs://); ``faiss_index`` publishes it.
    manifest_uri: str = str(PROJECT_ROOT / "data" / "artifacts" / "serving" / "manifest.json")
    #: Seconds between checks of the manifest for a new version.
    reload_interval_s: float = 10.0
    #: Enables ``POST /admin/reload`` for callers that send it in ``X-API-Key``; empty: disabled.
    admin_api_key: str = ""
    #: Where request and feedback logs go: ``duckdb`` (a local file) or ``bigquery``; ``none``: off.
    log_sink: str = "duckdb"
    duckdb_path: str = str(PROJECT_ROOT / "data" / "warehouse.duckdb")
    bq_project: str = "recsys-project"
    bq_dataset: str = "recsys"
    #: A BigQuery endpoint override (an emulator); empty: Google's.
    bq_endpoint: str = ""
    #: Rows written per batch, seconds between flushes, and the most rows held while the
    #: warehouse is unreachable (beyond it the oldest are dropped and counted).
    log_batch_rows: int = 5_000
    #: Each DuckDB write costs ~45 ms whatever its size (open, checkpoint on close), so
    #: fewer, larger writes: monitoring reads days, not seconds.
    log_flush_s: float = 5.0
    log_buffer_rows: int = 100_000
    #: FAISS calls in flight at once, each in its own thread; 0: one per core. Set it to the
    #: CPU quota where the process sees more cores than it may use (containers).
    search_threads: int = 0

    @classmethod
    def from_env(cls) -> ServingSettings:
        env = os.environ.get
        sink = env("RECSYS_LOG_SINK", "bigquery" if env("RECSYS_ENV") == "gcp" else "duckdb")
        if sink not in ("duckdb", "bigquery", "none"):
            raise ValueError(f"RECSYS_LOG_SINK={sink!r}: expected duckdb, bigquery or none")
        artifacts = env("RECSYS_ARTIFACTS_ROOT")
        default_manifest = f"{artifacts.rstrip('/')}/serving/manifest.json" if artifacts else cls.manifest_uri
        return cls(
            manifest_uri=env("RECSYS_SERVING_MANIFEST") or default_manifest,
            reload_interval_s=_float("RECSYS_RELOAD_INTERVAL_S", cls.reload_interval_s),
            admin_api_key=env("RECSYS_ADMIN_API_KEY", ""),
            log_sink=sink,
            duckdb_path=env("RECSYS_WAREHOUSE_DUCKDB") or cls.duckdb_path,
            bq_project=env("RECSYS_GCP_PROJECT") or cls.bq_project,
            bq_dataset=env("RECSYS_BQ_DATASET") or cls.bq_dataset,
            bq_endpoint=env("RECSYS_BQ_ENDPOINT") or cls.bq_endpoint,
            log_batch_rows=int(_float("RECSYS_LOG_BATCH_ROWS", cls.log_batch_rows)),
            log_flush_s=_float("RECSYS_LOG_FLUSH_S", cls.log_flush_s),
            log_buffer_rows=int(_float("RECSYS_LOG_BUFFER_ROWS", cls.log_buffer_rows)),
            search_threads=int(_float("RECSYS_SEARCH_THREADS", cls.search_threads)),
        )
