"""The monitoring family: daily drift of interactions, new items and served traffic against the
serving model's training window, written to the warehouse's ``drift_metrics`` table."""

import base64
import datetime as dt

import pandas as pd
from dagster import AssetExecutionContext, DailyPartitionsDefinition, MaterializeResult, MetadataValue, asset

from recsys_assets.assets.embeddings import ITEMS, item_text_embeddings
from recsys_assets.assets.serving import SERVING, faiss_index
from recsys_assets.core.artifacts import write_bytes
from recsys_assets.core.drift_day import day_metrics, load_training_window
from recsys_assets.core.drift_report import HISTORY_DAYS, HISTORY_SQL, history_plot, history_table
from recsys_assets.core.markdown import markdown_table
from recsys_assets.core.serving_index import MANIFEST
from recsys_assets.core.warehouse_tables import DRIFT_METRICS
from resources.embeddings import ArtifactStore
from resources.settings import Settings
from resources.warehouse import DriftConfig, WarehouseResource

GROUP = "monitoring"
#: Days up to today: today's partition computes the day so far (on demand; the schedule
#: materializes yesterday's once it is complete).
drift_days = DailyPartitionsDefinition(
    start_date=Settings.from_env().drift_start, timezone="UTC", end_offset=1
)


@asset(
    group_name=GROUP,
    partitions_def=drift_days,
    deps=[faiss_index, item_text_embeddings, ITEMS],
    kinds={"duckdb", "bigquery"},
)
def drift_metrics(
    context: AssetExecutionContext,
    artifacts: ArtifactStore,
    warehouse: WarehouseResource,
    drift_config: DriftConfig,
) -> MaterializeResult:
    """Daily drift metrics vs the serving model's training window, one warehouse row per metric."""
    day = dt.date.fromisoformat(context.partition_key)
    window = load_training_window(
        artifacts.uri(SERVING, MANIFEST),
        artifacts.uri("items.parquet"),
        artifacts.uri("embeddings", "txt.npy"),
    )
    client = warehouse.client()
    rows = day_metrics(client, window, day, drift_config.thresholds)
    # Delete + insert of the day: rerunning a partition replaces its rows.
    client.replace_day(DRIFT_METRICS, day, rows)
    breached = rows.loc[rows["status"] == "breach", "metric_name"].tolist()
    history = client.query(HISTORY_SQL, {"first": day - dt.timedelta(days=HISTORY_DAYS), "last": day})
    plot = history_plot(history)
    plot_uri = artifacts.uri("monitoring", f"drift_{day}.png")
    write_bytes(plot_uri, plot)
    context.log.info(
        f"{day}: {len(rows)} drift metrics vs serving version {window.version}; "
        f"breached: {breached or 'none'}"
    )
    return MaterializeResult(
        metadata={
            "day": str(day),
            "model_version": window.version,
            "breached": MetadataValue.json(breached),
            "metrics": MetadataValue.md(_day_table(rows)),
            f"last_{HISTORY_DAYS}_days": MetadataValue.md(history_table(history)),
            f"last_{HISTORY_DAYS}_days_plot": MetadataValue.md(
                f"![drift over the last {HISTORY_DAYS} days](data:image/png;base64,"
                f"{base64.b64encode(plot).decode()})"
            ),
            "plot_uri": plot_uri,
        }
    )


def _day_table(rows: pd.DataFrame) -> str:
    return markdown_table(
        ["metric", "value", "threshold", "status"],
        [
            [r.metric_name, "" if pd.isna(r.value) else f"{r.value:.4f}", r.threshold, r.status]
            for r in rows.itertuples()
        ],
    )
