"""Every setting of a deployment, in one typed tree read once from ``RECSYS_*`` variables.

A section per concern (``data``, ``embeddings``, ``graphs``, ``models``, ``serving``,
``warehouse``, ``jobs``, ``monitoring``); each field carries its default, its documentation and
the variable that sets it (``base.setting``). The settings table of ``docs/settings.md`` is generated from the
tree (``python -m recsys_assets.settings``). This package imports neither Dagster nor the ML core:
the core, the job containers and the API read the same tree.
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from functools import cache
from pathlib import Path
from typing import Any, Literal

from pydantic import ValidationError, model_validator

from recsys_assets.settings.base import (
    Section,
    SettingsError,
    describe_errors,
    markdown_table,
    read_environment,
    section,
    setting,
)
from recsys_assets.settings.data import DataSettings
from recsys_assets.settings.embeddings import EmbeddingSettings
from recsys_assets.settings.graphs import GraphSettings
from recsys_assets.settings.jobs import JobSettings
from recsys_assets.settings.models import ModelSettings
from recsys_assets.settings.monitoring import MonitoringSettings
from recsys_assets.settings.serving import ServingSettings
from recsys_assets.settings.warehouse import WarehouseSettings

__all__ = ["PROJECT_ROOT", "Environment", "Settings", "SettingsError", "load_settings"]

Environment = Literal["local", "gcp"]
#: The repository root; local artifacts, raw data and the warehouse live below it by default.
PROJECT_ROOT = Path(__file__).resolve().parents[2]


class GcpSettings(Section):
    project: str = setting(
        "recsys-project", "GCP project (GCS, BigQuery, Vertex AI).", env="RECSYS_GCP_PROJECT"
    )
    bucket: str = setting(
        "recsys-artifacts", "Where `gcp` keeps artifacts and raw data.", env="RECSYS_GCS_BUCKET"
    )
    prefix: str = setting("recsys", "Folder of the artifacts in that bucket.", env="RECSYS_GCS_PREFIX")


class ArtifactSettings(Section):
    root: str = setting(
        description="Root of every artifact: a folder, or `gs://bucket/prefix`.", env="RECSYS_ARTIFACTS_ROOT",
        default_doc="`data/artifacts` (local), `gs://$RECSYS_GCS_BUCKET/$RECSYS_GCS_PREFIX` (gcp)",
    )  # fmt: skip


class Settings(Section):
    env: Environment = setting(
        "local",
        "`local` (a folder, DuckDB, subprocesses) or `gcp` (GCS, BigQuery, Vertex AI).",
        env="RECSYS_ENV",
    )
    code_version: str = setting(
        "", "The code's version in reports (set by the image build); empty: the git commit.",
        env="RECSYS_CODE_VERSION",
    )  # fmt: skip
    gcp: GcpSettings = section(GcpSettings, "The GCP project and bucket.")
    artifacts: ArtifactSettings = section(ArtifactSettings, "Where artifacts live.", required=True)
    data: DataSettings = section(DataSettings, "The raw dumps and their checks.", required=True)
    embeddings: EmbeddingSettings = section(EmbeddingSettings, "Item embeddings.")
    graphs: GraphSettings = section(GraphSettings, "Item-item graphs.")
    models: ModelSettings = section(ModelSettings, "Recommenders and the promotion gate.")
    serving: ServingSettings = section(ServingSettings, "The serving index and the API.")
    warehouse: WarehouseSettings = section(
        WarehouseSettings, "Request logs and drift metrics.", required=True
    )
    jobs: JobSettings = section(JobSettings, "Vertex AI jobs (gcp).", required=True)
    monitoring: MonitoringSettings = section(MonitoringSettings, "Drift monitoring.")

    @model_validator(mode="before")
    @classmethod
    def _environment_defaults(cls, data: Any) -> Any:
        """The defaults that follow ``env`` or other settings; explicit values win."""
        if not isinstance(data, dict):
            return data
        data = {key: dict(value) if isinstance(value, dict) else value for key, value in data.items()}
        gcp = {**GcpSettings().model_dump(), **data.get("gcp", {})}
        bucket, prefix = gcp["bucket"], str(gcp["prefix"]).strip("/")
        cloud = data.get("env", "local") == "gcp"
        raw = f"gs://{bucket}/raw" if cloud else str(PROJECT_ROOT / "data" / "raw" / "small")
        defaults = {
            "artifacts": {
                "root": f"gs://{bucket}/{prefix}" if cloud else str(PROJECT_ROOT / "data" / "artifacts")
            },
            "data": {
                "reviews_uri": f"{raw}/reviews_Electronics_5.json.gz",
                "metadata_uri": f"{raw}/meta_Electronics.json.gz",
            },
            "warehouse": {
                "kind": "bigquery" if cloud else "duckdb",
                "duckdb_path": str(PROJECT_ROOT / "data" / "warehouse.duckdb"),
            },
            "jobs": {"pipes_bucket": bucket},
            "serving": {"log_sink": "bigquery" if cloud else "duckdb"},
            "embeddings": {"image": {"encoder": "clip"}} if cloud else {},
        }
        for name, values in defaults.items():
            current = data.setdefault(name, {})
            if isinstance(current, dict):
                for key, value in values.items():
                    if isinstance(value, dict) and isinstance(current.get(key, {}), dict):
                        current[key] = {**value, **current.get(key, {})}
                    else:
                        current.setdefault(key, value)
        return data

    @model_validator(mode="after")
    def _bigquery_staging_needs_bigquery(self) -> Settings:
        if self.data.staging_engine == "bigquery" and self.warehouse.kind != "bigquery":
            raise ValueError(
                "data.staging_engine 'bigquery' stages the dumps in the warehouse's BigQuery dataset; "
                f"the warehouse is {self.warehouse.kind!r} (set RECSYS_WAREHOUSE=bigquery)"
            )
        return self

    @classmethod
    def from_env(cls, environ: Mapping[str, str] | None = None) -> Settings:
        """The tree from ``RECSYS_*`` variables (default: this process's environment); an
        invalid value raises ``SettingsError`` naming the variable."""
        environ = os.environ if environ is None else environ
        values = read_environment(cls, environ)
        try:
            return cls.model_validate(values)
        except ValidationError as error:
            raise SettingsError(describe_errors(error, cls, environ)) from error

    def drift_automation_on(self) -> bool:
        automation = self.monitoring.automation
        return automation == "on" or (automation == "auto" and self.env == "gcp")


@cache
def load_settings() -> Settings:
    """This process's settings, read from its environment once."""
    return Settings.from_env()


def readme_table() -> str:
    """The table of variables (``docs/settings.md``)."""
    return markdown_table(Settings)
