"""The warehouse tables the API writes and monitoring reads, defined once.

DuckDB (local) and BigQuery (gcp) DDL are both generated from these definitions, and the
Terraform schemas are checked against them, so the three never drift apart.
"""

from __future__ import annotations

import random
import time
from dataclasses import dataclass
from typing import Any

#: How long ``connect_duckdb`` waits for another process's lock on the file by default.
DUCKDB_LOCK_WAIT_S = 30.0

#: BigQuery type -> DuckDB type.
DUCKDB_TYPES = {
    "STRING": "VARCHAR",
    "INT64": "BIGINT",
    "FLOAT64": "DOUBLE",
    "BOOL": "BOOLEAN",
    "TIMESTAMP": "TIMESTAMPTZ",
    "DATE": "DATE",
    "JSON": "JSON",
}


@dataclass(frozen=True)
class Column:
    name: str
    type: str
    mode: str = "NULLABLE"  # NULLABLE, REQUIRED or REPEATED (a list)
    description: str = ""


@dataclass(frozen=True)
class Table:
    name: str
    columns: tuple[Column, ...]
    #: BigQuery: the DATE or TIMESTAMP column partitioned by day, and the clustering columns.
    partition: str
    cluster: tuple[str, ...] = ()
    description: str = ""

    def duckdb_ddl(self) -> str:
        columns = []
        for c in self.columns:
            kind = DUCKDB_TYPES[c.type] + ("[]" if c.mode == "REPEATED" else "")
            columns.append(f"{c.name} {kind}" + (" NOT NULL" if c.mode == "REQUIRED" else ""))
        # Columns added since a table was first created (NULLABLE or REPEATED ones) are added to
        # an older local warehouse in place; BigQuery's tables follow Terraform's schemas.
        added = [
            f"ALTER TABLE {self.name} ADD COLUMN IF NOT EXISTS {c.name} "
            + DUCKDB_TYPES[c.type] + ("[]" if c.mode == "REPEATED" else "")
            for c in self.columns if c.mode != "REQUIRED"
        ]  # fmt: skip
        return "; ".join([f"CREATE TABLE IF NOT EXISTS {self.name} ({', '.join(columns)})", *added])

    def arrow_schema(self) -> Any:
        """The table as an Arrow schema: every batch converts the same way, whatever its rows
        hold (a column all empty would otherwise take Arrow's null type in one batch only)."""
        import pyarrow as pa

        types = {"STRING": pa.string(), "INT64": pa.int64(), "FLOAT64": pa.float64(), "BOOL": pa.bool_(),
                 "TIMESTAMP": pa.timestamp("us", tz="UTC"), "DATE": pa.date32(),
                 "JSON": pa.string()}  # fmt: skip
        return pa.schema(
            [
                pa.field(c.name, pa.list_(types[c.type]) if c.mode == "REPEATED" else types[c.type])
                for c in self.columns
            ]
        )

    def column_names(self) -> list[str]:
        return [c.name for c in self.columns]

    def bigquery_schema(self) -> list[dict[str, str]]:
        """The BigQuery schema in its JSON form (what ``bq`` and Terraform's ``schema`` take)."""
        return [
            {"name": c.name, "type": c.type, "mode": c.mode, "description": c.description}
            for c in self.columns
        ]

    def create_in_bigquery(self, client: Any, dataset: str) -> None:
        """Create the table (day-partitioned and clustered) if it does not exist; in production
        Terraform creates it from the same schema."""
        from google.cloud import bigquery

        table = bigquery.Table(
            f"{client.project}.{dataset}.{self.name}",
            schema=[bigquery.SchemaField.from_api_repr(f) for f in self.bigquery_schema()],
        )
        table.time_partitioning = bigquery.TimePartitioning(
            type_=bigquery.TimePartitioningType.DAY, field=self.partition
        )
        table.clustering_fields = list(self.cluster) or None
        table.description = self.description
        client.create_table(table, exists_ok=True)


#: The online experiment a logged row belongs to (``core/experiments/assignment.py``).
EXPERIMENT_COLUMNS = (
    Column("experiment", "STRING", "NULLABLE", "The experiment running at the time (empty: none)."),
    Column(
        "arm", "STRING", "NULLABLE",
        "control, a treatment's name, interleaved, or shadow (a shadow version's ranking, never shown).",
    ),
)  # fmt: skip
RECOMMENDATION_REQUESTS = Table(
    "recommendation_requests",
    (
        Column("request_id", "STRING", "REQUIRED", "The id returned to the caller (feedback refers to it)."),
        Column("ts", "TIMESTAMP", "REQUIRED", "When the request was answered (UTC)."),
        Column("user_id", "STRING", "REQUIRED"),
        Column("strategy", "STRING", "REQUIRED", "user, recent_items or popular."),
        Column("model_version", "STRING", "REQUIRED", "The serving version (manifest) that answered."),
        Column("k", "INT64", "REQUIRED"),
        Column("items", "STRING", "REPEATED", "Recommended item ids, best first."),
        Column("scores", "FLOAT64", "REPEATED", "Their scores, in the same order."),
        Column("latency_ms", "FLOAT64", "REQUIRED", "Time spent answering, in milliseconds."),
        *EXPERIMENT_COLUMNS,
        Column("teams", "STRING", "REPEATED", "Interleaving: the arm that picked each item, in order."),
    ),
    partition="ts",
    cluster=("strategy", "model_version"),
    description="Every answered recommendation request (written by the API).",
)
FEEDBACK_EVENTS = Table(
    "feedback_events",
    (
        Column("request_id", "STRING", "REQUIRED"),
        Column("ts", "TIMESTAMP", "REQUIRED"),
        Column("user_id", "STRING", "REQUIRED"),
        Column("item_id", "STRING", "REQUIRED"),
        Column("event", "STRING", "REQUIRED", "impression, click or purchase."),
        *EXPERIMENT_COLUMNS,
    ),
    partition="ts",
    cluster=("event",),
    description="Impressions, clicks and purchases reported for served recommendations.",
)
DRIFT_METRICS = Table(
    "drift_metrics",
    (
        Column("metric_date", "DATE", "REQUIRED", "The day the metric describes (UTC)."),
        Column(
            "metric_name",
            "STRING",
            "REQUIRED",
            "See recsys_assets/core/monitoring/drift.py for each formula.",
        ),
        Column("value", "FLOAT64", "NULLABLE", "Empty when the day had no data for it."),
        Column("threshold", "FLOAT64", "REQUIRED"),
        Column("status", "STRING", "REQUIRED", "ok, breach or no_data."),
        Column("model_version", "STRING", "REQUIRED", "The serving version the day was compared with."),
        Column("details", "JSON", "NULLABLE", "Inputs and intermediate values behind the metric."),
        Column("computed_at", "TIMESTAMP", "REQUIRED"),
    ),
    partition="metric_date",
    cluster=("metric_name", "status"),
    description="One row per drift metric and day (written by the drift_metrics asset).",
)
EXPERIMENT_METRICS = Table(
    "experiment_metrics",
    (
        Column("metric_date", "DATE", "REQUIRED", "The report's day: data from the start to its end."),
        Column("experiment", "STRING", "REQUIRED"),
        Column("arm", "STRING", "REQUIRED", "The arm described, or compared with the control."),
        Column(
            "metric_name", "STRING", "REQUIRED",
            "requests, ctr, latency_ms, coverage, ctr_difference, preference, shadow_agreement or "
            "replay_recall "
            "(recsys_assets/core/experiments/report.py).",
        ),
        Column("value", "FLOAT64", "NULLABLE", "Empty when the arm had no data for it."),
        Column("ci_low", "FLOAT64", "NULLABLE", "The confidence interval (always valid for ctr_difference)."),
        Column("ci_high", "FLOAT64", "NULLABLE"),
        Column("p_value", "FLOAT64", "NULLABLE", "Comparisons: the test's p-value (always valid for A/B)."),
        Column("decision", "STRING", "NULLABLE", "Comparisons: continue, stop or promote."),
        Column("details", "JSON", "NULLABLE", "Counts behind the value."),
        Column("computed_at", "TIMESTAMP", "REQUIRED"),
    ),
    partition="metric_date",
    cluster=("experiment", "arm"),
    description="Per experiment, arm and day: click-through, latency, coverage, tests (experiment_report).",
)  # fmt: skip
#: What the API writes.
LOG_TABLES = {t.name: t for t in (RECOMMENDATION_REQUESTS, FEEDBACK_EVENTS)}
#: Every warehouse table (Terraform creates these in BigQuery).
TABLES = {**LOG_TABLES, DRIFT_METRICS.name: DRIFT_METRICS, EXPERIMENT_METRICS.name: EXPERIMENT_METRICS}


def connect_duckdb(path: str, read_only: bool = False, wait_s: float = DUCKDB_LOCK_WAIT_S) -> Any:
    """Open the local warehouse, waiting while another process holds its lock.

    DuckDB lets one process at a time open a file for writing, and none to read meanwhile:
    API workers each append a batch now and then, and the monitoring assets read between
    them. Writers hold the file for milliseconds, so a short wait with jitter resolves a
    conflict; past ``wait_s`` the error names the file and the holder DuckDB reports.
    """
    import duckdb

    deadline = time.monotonic() + wait_s
    while True:
        try:
            return duckdb.connect(path, read_only=read_only)
        except duckdb.IOException as error:
            if "lock" not in str(error).lower() or time.monotonic() >= deadline:
                raise
            time.sleep(random.uniform(0.005, 0.05))


def write_bigquery_schemas(folder: str) -> list[str]:
    """Each table's BigQuery schema as ``<folder>/<table>.json``, the files Terraform reads
    (``make terraform-schemas``; a test fails when they differ from these definitions)."""
    import json
    from pathlib import Path

    out = Path(folder)
    out.mkdir(parents=True, exist_ok=True)
    written = []
    for table in TABLES.values():
        path = out / f"{table.name}.json"
        path.write_text(json.dumps(table.bigquery_schema(), indent=2) + "\n")
        written.append(str(path))
    return written


if __name__ == "__main__":
    import sys

    print("\n".join(write_bigquery_schemas(sys.argv[1] if len(sys.argv) > 1 else "terraform/schemas")))
