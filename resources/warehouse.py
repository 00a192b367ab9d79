"""The warehouse of request logs and drift metrics: a DuckDB file locally, BigQuery in gcp;
and the drift monitoring settings."""

from __future__ import annotations

from typing import Literal

from dagster import ConfigurableResource
from pydantic import Field, field_validator

from recsys_assets.core.drift import METRICS
from recsys_assets.core.warehouse import BigQueryWarehouse, DuckDBWarehouse, Warehouse, bigquery_client


class WarehouseResource(ConfigurableResource):
    kind: Literal["duckdb", "bigquery"] = "duckdb"
    duckdb_path: str = Field(default="", description="The DuckDB file (kind duckdb).")
    project: str = Field(default="", description="The GCP project (kind bigquery).")
    dataset: str = Field(default="recsys", description="The BigQuery dataset (kind bigquery).")
    api_endpoint: str = Field(default="", description="A BigQuery endpoint override (an emulator).")

    def client(self) -> Warehouse:
        if self.kind == "duckdb":
            return DuckDBWarehouse(self.duckdb_path)
        return BigQueryWarehouse(bigquery_client(self.project, self.api_endpoint), self.dataset)


class DriftConfig(ConfigurableResource):
    thresholds: dict[str, float] = Field(
        default_factory=dict, description="Per-metric threshold overrides (see core/drift.py)."
    )
    retrain_min_interval_h: float = Field(
        default=24.0, description="Fewest hours between two retrains the drift sensor requests."
    )

    @field_validator("thresholds")
    @classmethod
    def _known(cls, value: dict[str, float]) -> dict[str, float]:
        unknown = sorted(set(value) - set(METRICS))
        if unknown:
            raise ValueError(f"drift thresholds for unknown metrics {unknown}; known: {sorted(METRICS)}")
        return value
