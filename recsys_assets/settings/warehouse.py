"""The warehouse of request logs and drift metrics: a DuckDB file, or a BigQuery dataset."""

from __future__ import annotations

from typing import Literal

from recsys_assets.settings.base import Section, setting


class WarehouseSettings(Section):
    kind: Literal["duckdb", "bigquery"] = setting(
        "duckdb", "The warehouse: a DuckDB file or a BigQuery dataset.", env="RECSYS_WAREHOUSE",
        default_doc="`duckdb` (local), `bigquery` (gcp)",
    )  # fmt: skip
    duckdb_path: str = setting(
        description="The local warehouse file (the API and the assets share it).",
        env="RECSYS_WAREHOUSE_DUCKDB", default_doc="`data/warehouse.duckdb`",
    )  # fmt: skip
    dataset: str = setting(
        "recsys", "BigQuery dataset (request logs, drift metrics).", env="RECSYS_BQ_DATASET"
    )
    endpoint: str = setting(
        "",
        "BigQuery endpoint override, e.g. an emulator (no credentials are sent).",
        env="RECSYS_BQ_ENDPOINT",
    )
