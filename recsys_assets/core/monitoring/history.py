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
    """Days down, metrics across; a breached value in bold, one read on less than its minimum
    sample in parentheses (``no_data``: never a breach), a day without data empty."""
    names = [name for name in METRICS if name in set(history["metric_name"])]
    rows = []
    for day, group in history.groupby("metric_date", sort=True):
        cells = {r.metric_name: r for r in group.itertuples()}
        row: list[str] = [str(pd.Timestamp(day).date())]
        for name in names:
            r = cells.get(name)
            if r is None or pd.isna(r.value):
                row.append("")
            elif r.status == "no_data":
                row.append(f"({r.value:.3f})")
            else:
                row.append(f"**{r.value:.3f}**" if r.status == "breach" else f"{r.value:.3f}")
        rows.append(row)
    return markdown_table(["day", *names], rows)


def history_plot(history: pd.DataFrame) -> bytes:
    """One panel per metric: its value by day, the threshold as a dashed line across the panel,
    breaches in red, values below the minimum sample hollow and grey; a panel without a value
    says so. The x-axis spans the days there are (a day either side of a single one)."""
    import matplotlib.dates as mdates

    plt = pyplot()

    names = [name for name in METRICS if name in set(history["metric_name"])]
    columns = 3  # narrow enough for the UI's markdown dialog
    rows = max(1, -(-len(names) // columns))
    figure, axes = plt.subplots(rows, columns, figsize=(4 * columns, 2.6 * rows), squeeze=False)
    all_days = pd.to_datetime(history["metric_date"])
    span = (
        (all_days.min() - pd.Timedelta(days=1), all_days.max() + pd.Timedelta(days=1))
        if len(all_days)
        else None
    )
    for ax, name in zip(axes.flat, names, strict=False):
        metric = history[history["metric_name"] == name].sort_values("metric_date")
        days = pd.to_datetime(metric["metric_date"])
        values = metric["value"].astype(float)
        read = metric["status"].isin(["ok", "breach"])
        ax.plot(days[read], values[read], marker="o", markersize=3, color="tab:blue")
        breached = metric["status"] == "breach"
        ax.scatter(days[breached], values[breached], color="tab:red", zorder=3, s=18)
        thin = (metric["status"] == "no_data") & values.notna()
        ax.scatter(days[thin], values[thin], facecolors="none", edgecolors="grey", s=18)
        ax.axhline(float(metric["threshold"].iloc[-1]), linestyle="--", color="grey", linewidth=1)
        if not values.notna().any():
            ax.text(0.5, 0.5, "no data yet", ha="center", va="center", transform=ax.transAxes, color="grey")
        ax.set_title(name, fontsize=9)
        if span is not None:
            ax.set_xlim(*span)
            # Whole days only (a short span otherwise gets hourly ticks, each labelled with its day).
            ax.xaxis.set_major_locator(mdates.DayLocator(interval=max(1, (span[1] - span[0]).days // 7)))
        ax.xaxis.set_major_formatter(mdates.DateFormatter("%m-%d"))
        ax.tick_params(labelsize=7)
        ax.tick_params(axis="x", rotation=45)
    for ax in list(axes.flat)[len(names) :]:
        ax.axis("off")
    return png(figure)
