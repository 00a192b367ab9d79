"""One day of drift metrics: the day's logged traffic, read from the warehouse, against the
training window of the serving version (``drift.py`` holds the formulas).

The day's *interactions* are its clicks and purchases in ``feedback_events``: what users did
with the catalogue in production, after the model was trained. *New items* are the items of
those interactions that the training window never saw (text embeddings from the catalogue).
Serving metrics read ``recommendation_requests`` and ``feedback_events`` for the day and the
trailing 7 days. Aggregations run in the warehouse; only the day's interactions and small
summaries come back.
"""

from __future__ import annotations

import datetime as dt
import io
import json
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import pandas as pd

from recsys_assets.core.io.codecs import read_npy, read_parquet
from recsys_assets.core.monitoring import drift
from recsys_assets.core.serving.bundle import read_manifest, read_version_file
from recsys_assets.core.warehouse.clients import Warehouse
from recsys_assets.core.warehouse.tables import DRIFT_METRICS
from recsys_assets.settings.monitoring import Metric

TRAILING_DAYS = 7


@dataclass
class TrainingWindow:
    """What the serving version's model was trained on."""

    version: str
    item_ids: list[str]
    #: Training interactions per item (items order).
    item_counts: np.ndarray
    user_ids: set[str]
    #: Each item's leaf category ("" when it has none), items order.
    categories: list[str]
    #: Items' text embeddings, items order.
    text: np.ndarray
    item_index: dict[str, int] = field(init=False)

    def __post_init__(self) -> None:
        if not (len(self.item_ids) == len(self.item_counts) == len(self.categories) == len(self.text)):
            raise ValueError(
                f"training window {self.version}: {len(self.item_ids)} item ids, {len(self.item_counts)} "
                f"counts, {len(self.categories)} categories, {len(self.text)} text embeddings"
            )
        self.item_index = {item: i for i, item in enumerate(self.item_ids)}


def load_training_window(manifest_uri: str, items_uri: str, text_uri: str) -> TrainingWindow:
    """The published serving version's training window: its ids and train histories (from the
    version's files, checksums verified), the catalogue's categories and text embeddings."""
    manifest = read_manifest(manifest_uri)
    ids = json.loads(read_version_file(manifest, "ids.json", manifest_uri))
    with np.load(io.BytesIO(read_version_file(manifest, "history.npz", manifest_uri))) as history:
        counts = np.bincount(history["indices"], minlength=len(ids["items"]))
    catalogue = read_parquet(items_uri, columns=["item_id", "categories"])
    if catalogue["item_id"].tolist() != ids["items"]:
        raise ValueError(
            f"{items_uri}: items differ from serving version {manifest['version']}'s ids.json; the catalogue "
            "changed since the version was published (materialize through faiss_index first)"
        )
    text = read_npy(text_uri)
    if len(text) != len(catalogue):
        raise ValueError(f"{text_uri}: {len(text)} rows for {len(catalogue)} items in {items_uri}")
    return TrainingWindow(
        version=str(manifest["version"]),
        item_ids=ids["items"],
        item_counts=counts,
        user_ids=set(ids["users"]),
        categories=[leaf_category(c) for c in catalogue["categories"]],
        text=text,
    )


def leaf_category(categories: Any) -> str:
    """The most specific category of an item: the last of its (flattened) categories."""
    if categories is None or len(categories) == 0:
        return ""
    return str(categories[-1])


def _bounds(day: dt.date, days: int = 1) -> dict[str, dt.datetime]:
    start = dt.datetime.combine(day, dt.time(), tzinfo=dt.UTC)
    return {"start": start, "end": start + dt.timedelta(days=days)}


def _trailing(day: dt.date) -> dict[str, dt.datetime]:
    return _bounds(day - dt.timedelta(days=TRAILING_DAYS), TRAILING_DAYS)


def shown(column: str = "arm") -> str:
    """Requests whose recommendations were shown (a shadow version's rankings never are)."""
    return f"({column} IS NULL OR {column} <> 'shadow')"


SHOWN = shown()
INTERACTIONS_SQL = (
    "SELECT user_id, item_id FROM {feedback_events} "
    "WHERE ts >= @start AND ts < @end AND event IN ('click', 'purchase')"
)
REQUESTS_SQL = (
    "SELECT COUNT(*) AS requests, SUM(CASE WHEN strategy = 'popular' THEN 1 ELSE 0 END) AS fallbacks "
    "FROM {recommendation_requests} WHERE ts >= @start AND ts < @end AND " + SHOWN
)
COVERAGE_SQL = (
    "SELECT COUNT(DISTINCT item) AS items FROM {recommendation_requests} AS r, UNNEST(r.items) AS item "
    "WHERE r.ts >= @start AND r.ts < @end AND " + shown("r.arm")
)
EVENTS_SQL = (
    "SELECT SUM(CASE WHEN event = 'impression' THEN 1 ELSE 0 END) AS impressions, "
    "SUM(CASE WHEN event = 'click' THEN 1 ELSE 0 END) AS clicks "
    "FROM {feedback_events} WHERE ts >= @start AND ts < @end"
)
#: Each request's top score (the served-score distribution), by dialect.
TOP_SCORE = {"duckdb": "scores[1]", "bigquery": "scores[SAFE_OFFSET(0)]"}


def _top_scores(warehouse: Warehouse) -> str:
    """Each request's top score in a window, as a subquery."""
    return (
        f"(SELECT {TOP_SCORE[warehouse.dialect]} AS s FROM {{recommendation_requests}} "
        f"WHERE ts >= @start AND ts < @end AND {SHOWN}) AS top"
    )


def _score_edges(warehouse: Warehouse, day: dt.date) -> list[float]:
    """Decile edges of the trailing window's top scores: the smallest score of deciles 2-10
    (NTILE, plain SQL in both dialects; bqemulator returned no APPROX_QUANTILES of a derived
    value)."""
    sql = (
        "SELECT tile, MIN(s) AS edge FROM (SELECT s, NTILE(10) OVER (ORDER BY s) AS tile "
        f"FROM {_top_scores(warehouse)} WHERE s IS NOT NULL) AS tiles WHERE tile > 1 GROUP BY tile"
    )
    edges = warehouse.query(sql, _trailing(day))["edge"]
    return sorted({float(e) for e in edges})


def _score_histogram(warehouse: Warehouse, edges: list[float], bounds: dict[str, dt.datetime]) -> np.ndarray:
    cases = " ".join(f"WHEN s < {edge!r} THEN {i}" for i, edge in enumerate(edges))
    sql = (
        f"SELECT CASE {cases} ELSE {len(edges)} END AS bin, COUNT(*) AS n FROM {_top_scores(warehouse)} "
        "WHERE s IS NOT NULL GROUP BY bin"
    )
    counts = np.zeros(len(edges) + 1)
    for row in warehouse.query(sql, bounds).itertuples():
        counts[int(row.bin)] = row.n
    return counts


def _value(rows: pd.DataFrame, column: str) -> float:
    value = rows[column].iloc[0] if len(rows) else None
    return 0.0 if value is None or pd.isna(value) else float(value)


Found = dict[str, tuple[float | None, dict[str, Any]]]


def day_metrics(
    warehouse: Warehouse, window: TrainingWindow, day: dt.date, metrics: dict[str, Metric]
) -> pd.DataFrame:
    """The day's rows of ``drift_metrics``: one per metric of ``metrics`` (with their thresholds,
    ``MonitoringSettings.metrics()``)."""
    interactions = warehouse.query(INTERACTIONS_SQL, _bounds(day))
    found = {**_interaction_metrics(window, interactions), **_serving_metrics(warehouse, window, day)}
    computed_at = dt.datetime.now(dt.UTC)
    records = []
    for name, metric in metrics.items():
        value, details = found[name]
        sample = details[metric.sample]  # every metric's details carry its sample
        details = {**details, "sample": metric.sample, "min_sample": metric.min_sample}
        records.append(
            {
                "metric_date": day,
                "metric_name": name,
                "value": None if value is None else float(value),
                "threshold": metric.threshold,
                "status": drift.status(metric, value, sample),
                "model_version": window.version,
                "details": json.dumps(details, default=float),
                "computed_at": computed_at,
            }
        )
    return pd.DataFrame.from_records(records, columns=DRIFT_METRICS.column_names())


def _interaction_metrics(window: TrainingWindow, interactions: pd.DataFrame) -> Found:
    """Interaction and content drift of the day's clicks and purchases."""
    found: Found = {}
    rows = np.array([window.item_index.get(i, -1) for i in interactions["item_id"]], dtype=np.int64)
    seen = (rows >= 0) & (window.item_counts[np.maximum(rows, 0)] > 0)
    base = {"interactions": len(interactions)}
    train_rows = np.repeat(np.arange(len(window.item_ids)), window.item_counts.astype(np.int64))
    if len(interactions):
        categories = [window.categories[r] if r >= 0 else "(not in catalogue)" for r in rows]
        train_categories = [window.categories[r] for r in train_rows]
        found["category_psi"] = _with(drift.category_psi(train_categories, categories), base)
        found["popularity_psi"] = _with(
            drift.popularity_psi(window.item_counts, train_rows, np.where(seen, rows, -1)), base
        )
    else:
        found["category_psi"] = found["popularity_psi"] = (None, base)
    found["unseen_item_share"] = (drift.unseen_share(seen), base)
    users = interactions["user_id"].to_numpy()
    found["unseen_user_share"] = (drift.unseen_share(np.array([u in window.user_ids for u in users])), base)

    new_rows = np.unique(rows[(rows >= 0) & ~seen])
    trained = window.item_counts > 0
    new_text, train_text = window.text[new_rows], window.text[trained]
    content = {"new_items": len(new_rows), "training_items": int(trained.sum())}
    found["centroid_distance"] = (drift.centroid_distance(train_text, new_text), content)
    ks, ks_details = drift.nn_similarity_ks(train_text, new_text)
    found["nn_similarity_ks"] = (ks, {**content, **ks_details})
    return found


def _serving_metrics(warehouse: Warehouse, window: TrainingWindow, day: dt.date) -> Found:
    """Fallback rate, coverage, CTR and served scores of the day (vs the trailing 7 days)."""
    found: Found = {}
    day_bounds = _bounds(day)
    requests = warehouse.query(REQUESTS_SQL, day_bounds)
    served, fallbacks = _value(requests, "requests"), _value(requests, "fallbacks")
    counts = {"requests": served, "popular": fallbacks}
    found["fallback_rate"] = (fallbacks / served if served else None, counts)
    covered = _value(warehouse.query(COVERAGE_SQL, day_bounds), "items")
    found["catalogue_coverage"] = (
        covered / len(window.item_ids) if served else None,
        {"requests": served, "served_items": covered, "catalogue": len(window.item_ids)},
    )
    today, before = warehouse.query(EVENTS_SQL, day_bounds), warehouse.query(EVENTS_SQL, _trailing(day))
    impressions, clicks = _value(today, "impressions"), _value(today, "clicks")
    past_impressions, past_clicks = _value(before, "impressions"), _value(before, "clicks")
    ctr = clicks / impressions if impressions else None
    past_ctr = past_clicks / past_impressions if past_impressions else None
    events = {"impressions": impressions, "clicks": clicks, "trailing_ctr": past_ctr}
    found["ctr"] = (ctr, events)
    found["ctr_change"] = (ctr / past_ctr - 1.0 if ctr is not None and past_ctr else None, events)
    edges = _score_edges(warehouse, day)
    if edges and served:
        expected = _score_histogram(warehouse, edges, _trailing(day))
        actual = _score_histogram(warehouse, edges, day_bounds)
        found["score_psi"] = (
            drift.psi(expected, actual),
            {
                "requests": served,
                "edges": [round(e, 6) for e in edges],
                "trailing": expected.tolist(),
                "day": actual.tolist(),
            },
        )
    else:
        found["score_psi"] = (None, {"requests": served, "trailing_edges": len(edges)})
    return found


def _with(result: tuple[float, dict[str, Any]], extra: dict[str, Any]) -> tuple[float | None, dict[str, Any]]:
    value, details = result
    return value, {**extra, **details}
