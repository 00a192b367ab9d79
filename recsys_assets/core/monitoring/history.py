"""Drift over time for people: a markdown table and a PNG of the last days of ``drift_metrics``
(the asset puts both in its metadata, which the Dagster UI renders)."""

from __future__ import annotations

import pandas as pd

from recsys_assets.core.markdown import markdown_table
from recsys_assets.core.plots import png, pyplot
from recsys_assets.settings.monitoring import METRICS

HISTORY_DAYS = 30
HISTORY_SQL = (
    "SELECT metric_date, metric_name, value, threshold, status FROM {drift_metrics} "
    "WHERE metric_date > @first AND metric_date <= @last ORDER BY metric_date"
)


def history_table(history: pd.DataFrame) -> str:
    """Days down, metrics across; a breached value in bold, a day without data empty."""
    names = [name for name in METRICS if name in set(history["metric_name"])]
    rows = []
    for day, group in history.groupby("metric_date", sort=True):
        cells = {r.metric_name: r for r in group.itertuples()}
        row: list[str] = [str(pd.Timestamp(day).date())]
        for name in names:
            r = cells.get(name)
            if r is None or pd.isna(r.value):
                row.append("")
            else:
                row.append(f"**{r.value:.3f}**" if r.status == "breach" else f"{r.value:.3f}")
        rows.append(row)
    return markdown_table(["day", *names], rows)


def history_plot(history: pd.DataFrame) -> bytes:
    """One panel per metric: its value by day, the threshold dashed, breaches in red (PNG)."""
    plt = pyplot()

    names = [name for name in METRICS if name in set(history["metric_name"])]
    columns = 4
    rows = max(1, -(-len(names) // columns))
    figure, axes = plt.subplots(rows, columns, figsize=(4 * columns, 2.6 * rows), squeeze=False)
    for ax, name in zip(axes.flat, names, strict=False):
        metric = history[history["metric_name"] == name].sort_values("metric_date")
        days = pd.to_datetime(metric["metric_date"])
        ax.plot(days, metric["value"], marker="o", markersize=3, color="tab:blue")
        ax.plot(days, metric["threshold"], linestyle="--", color="grey", linewidth=1)
        breached = metric["status"] == "breach"
        ax.scatter(days[breached], metric["value"][breached], color="tab:red", zorder=3, s=18)
        ax.set_title(name, fontsize=9)
        ax.tick_params(labelsize=7)
        ax.tick_params(axis="x", rotation=45)
    for ax in list(axes.flat)[len(names) :]:
        ax.axis("off")
    return png(figure)
