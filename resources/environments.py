"""One resource set per environment, picked by ``RECSYS_ENV`` (``local`` by default).

Asset code is identical everywhere; only these dictionaries differ. ``local`` uses a folder
under the repository and needs no credentials or network; ``gcp`` points the very same
classes at GCS (and, in later layers, BigQuery and Vertex AI).
"""

from __future__ import annotations

from typing import Any

from resources.embeddings import ArtifactStore, EmbeddingConfig
from resources.graph_config import GraphConfig
from resources.io_managers import ArtifactIOManagerFactory, FormatName
from resources.job_runners import LocalJobRunner, VertexJobRunner
from resources.model_config import ModelConfig
from resources.raw_data import QualityPolicy, RawDataSource
from resources.serving_config import ServingConfig
from resources.settings import Settings
from resources.warehouse import DriftConfig, WarehouseResource

#: Resource key of the IO manager for each artifact format; ``io_manager`` is parquet.
IO_MANAGER_KEYS: dict[FormatName, str] = {
    "parquet": "io_manager",
    "npy": "npy_io_manager",
    "npz": "npz_io_manager",
    "json": "json_io_manager",
}


def artifact_io_managers(root: str, storage_options: dict[str, Any] | None = None) -> dict[str, Any]:
    return {
        key: ArtifactIOManagerFactory(
            base_path=root,
            format=fmt,
            storage_options=storage_options or {},
        )
        for fmt, key in IO_MANAGER_KEYS.items()
    }


def _shared(settings: Settings) -> dict[str, Any]:
    return {
        "raw_data": RawDataSource(
            reviews_uri=settings.raw_reviews_uri,
            metadata_uri=settings.raw_metadata_uri,
            format=settings.raw_format,  # type: ignore[arg-type]  # validated by Settings
        ),
        "quality_policy": QualityPolicy(
            max_quarantine_rate=settings.max_quarantine_rate,
            row_count_tolerance=settings.row_count_tolerance,
        ),
        "artifacts": ArtifactStore(root=settings.artifacts_root),
        "graph_config": GraphConfig(k=settings.knn_k),
        "model_config": ModelConfig(
            gat_features=settings.gat_features,  # type: ignore[arg-type]  # validated by Settings
            gat_loss=settings.gat_loss,  # type: ignore[arg-type]
            gat_heads=settings.gat_heads,
            gat_layers=settings.gat_layers,
            gat_config=settings.gat_config,
            max_epochs=settings.max_epochs,
            promotion_tolerance=settings.promotion_tolerance,
        ),
        "serving_config": ServingConfig(
            index_kind=settings.index_kind,  # type: ignore[arg-type]  # validated by Settings
            min_recall=settings.min_index_recall,
        ),
        "drift_config": DriftConfig(
            thresholds={k: float(v) for k, v in settings.drift_thresholds.items()},
            retrain_min_interval_h=settings.retrain_min_interval_h,
        ),
        "embedding_config": EmbeddingConfig(
            text_model=settings.text_model,
            text_backend=settings.text_backend,  # type: ignore[arg-type]  # validated by Settings
            image_encoder=settings.image_encoder,  # type: ignore[arg-type]
            image_weights=settings.image_weights,
            image_max_items=settings.image_max_items,
            image_max_failure_rate=settings.image_max_failure_rate,
        ),
    }


def local_resources(settings: Settings) -> dict[str, Any]:
    return {
        **artifact_io_managers(settings.artifacts_root),
        **_shared(settings),
        "job_runner": LocalJobRunner(),
        "warehouse": WarehouseResource(kind="duckdb", duckdb_path=settings.warehouse_duckdb),
    }


def gcp_resources(settings: Settings) -> dict[str, Any]:
    # gcsfs picks up Application Default Credentials (workload identity on GCP); the
    # project is named so that requester-pays buckets and quotas bill the right one.
    storage_options = {"project": settings.gcp_project}
    return {
        **artifact_io_managers(settings.artifacts_root, storage_options),
        **_shared(settings),
        "job_runner": VertexJobRunner(
            project=settings.gcp_project,
            region=settings.vertex_region,
            image_uri=settings.vertex_image,
            service_account=settings.vertex_service_account,
            pipes_bucket=settings.pipes_bucket,
        ),
        "warehouse": WarehouseResource(
            kind="bigquery",
            project=settings.gcp_project,
            dataset=settings.bq_dataset,
            api_endpoint=settings.bq_endpoint,
        ),
    }


def build_resources(settings: Settings | None = None) -> dict[str, Any]:
    settings = settings or Settings.from_env()
    return {"local": local_resources, "gcp": gcp_resources}[settings.env](settings)
