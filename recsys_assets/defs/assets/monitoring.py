"""The monitoring family: daily drift of interactions, new items and served traffic against the
serving model's training window (the warehouse's ``drift_metrics`` table), and the daily report
of the online experiments (``experiment_metrics``)."""

import datetime as dt
from typing import Any

import pandas as pd
from dagster import AssetExecutionContext, MaterializeResult, MetadataValue, asset

from recsys_assets.core.experiments import report
from recsys_assets.core.io import artifacts as catalogue
from recsys_assets.core.io.codecs import read_parquet
from recsys_assets.core.io.storage import write_bytes
from recsys_assets.core.markdown import image, markdown_table
from recsys_assets.core.monitoring.day import day_metrics, load_training_window
from recsys_assets.core.monitoring.history import HISTORY_DAYS, HISTORY_SQL, history_plot, history_table
from recsys_assets.core.warehouse.tables import DRIFT_METRICS, EXPERIMENT_METRICS
from recsys_assets.defs.assets.embeddings import ITEMS, item_text_embeddings
from recsys_assets.defs.assets.serving import faiss_index
from recsys_assets.defs.environments import SettingsResource
from recsys_assets.defs.partitions import drift_metric_days

GROUP = "monitoring"


@asset(
    group_name=GROUP,
    partitions_def=drift_metric_days,
    deps=[faiss_index, item_text_embeddings, ITEMS],
    kinds={"duckdb", "bigquery"},
)
def drift_metrics(context: AssetExecutionContext, settings: SettingsResource) -> MaterializeResult:
    """Daily drift metrics vs the serving model's training window, one warehouse row per metric."""
    day = dt.date.fromisoformat(context.partition_key)
    artifacts = settings.artifacts
    window = load_training_window(
        artifacts.uri(catalogue.SERVING_MANIFEST),
        artifacts.uri(catalogue.ITEMS),
        artifacts.uri(catalogue.TEXT_EMBEDDINGS),
    )
    client = settings.warehouse()
    rows = day_metrics(client, window, day, settings.tree.monitoring.metrics())
    # Delete + insert of the day: rerunning a partition replaces its rows.
    client.replace_day(DRIFT_METRICS, day, rows)
    breached = rows.loc[rows["status"] == "breach", "metric_name"].tolist()
    history = client.query(HISTORY_SQL, {"first": day - dt.timedelta(days=HISTORY_DAYS), "last": day})
    plot = history_plot(history)
    plot_uri = artifacts.uri(catalogue.DRIFT_PLOT, day=day)
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
                image(f"drift over the last {HISTORY_DAYS} days", plot)
            ),
            "plot_uri": plot_uri,
            # Numbers, one per metric with enough data: the asset's Plots tab in the UI charts
            # each of them across the daily partitions, no click needed.
            **{
                f"value_{r.metric_name}": float(r.value)
                for r in rows.itertuples()
                if r.status != "no_data" and not pd.isna(r.value)
            },
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


@asset(
    group_name=GROUP,
    partitions_def=drift_metric_days,
    deps=[faiss_index, ITEMS],
    kinds={"duckdb", "bigquery"},
)
def experiment_report(context: AssetExecutionContext, settings: SettingsResource) -> MaterializeResult:
    """Online experiments to the day's end: per arm click-through, latency, coverage, and the tests."""
    day = dt.date.fromisoformat(context.partition_key)
    catalogue_size = len(read_parquet(settings.artifacts.uri(catalogue.ITEMS), columns=["item_id"]))
    client = settings.warehouse()
    rows = report.experiment_rows(client, day, catalogue_size, settings.tree.monitoring.experiments)
    client.replace_day(EXPERIMENT_METRICS, day, rows)
    names = sorted(set(rows["experiment"]))
    decided = report.decisions(rows)
    context.log.info(f"{day}: experiments {names or 'none'}; decisions {decided or 'none'}")
    metadata: dict[str, Any] = {
        "day": str(day),
        "experiments": MetadataValue.json(names),
        "decisions": MetadataValue.json(decided),
        "report": MetadataValue.md(
            report.report_table(rows) if len(rows) else "no experiment served that day"
        ),
    }
    for name in names:
        history = client.query(report.HISTORY_SQL, {"experiment": name, "last": day})
        metadata[f"plot_{name}"] = MetadataValue.md(image(name, report.history_plot(history, name)))
    return MaterializeResult(metadata=metadata)
