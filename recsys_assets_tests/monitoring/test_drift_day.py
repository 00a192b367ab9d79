"""One day of drift metrics from a DuckDB warehouse of crafted logs, against hand-computed values;
idempotent writes of a day."""

from __future__ import annotations

import datetime as dt
import json
import math
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import pytest

from recsys_assets.core.monitoring import drift
from recsys_assets.core.monitoring.day import TrainingWindow, day_metrics, leaf_category
from recsys_assets.core.warehouse.clients import Warehouse
from recsys_assets.core.warehouse.tables import DRIFT_METRICS, LOG_TABLES
from recsys_assets.settings.monitoring import METRICS, MonitoringSettings
from recsys_assets_tests.conftest import crafted_warehouse

DAY = dt.date(2026, 11, 20)
#: The crafted day is tiny (4 interactions, 4 requests, 10 impressions): read on any sample.
ANY_SAMPLE = MonitoringSettings(min_samples=dict.fromkeys(METRICS, 1)).metrics()


def _ts(day: dt.date, hour: int = 12) -> dt.datetime:
    return dt.datetime.combine(day, dt.time(hour), tzinfo=dt.UTC)


def _request(day: dt.date, items: list[str], top: float, strategy: str = "user") -> dict[str, Any]:
    return {"request_id": f"r{top}{items}", "ts": _ts(day), "user_id": "u0", "strategy": strategy,
            "model_version": "v1", "k": len(items), "items": items,
            "scores": [top] + [top / 2] * (len(items) - 1), "latency_ms": 1.0}  # fmt: skip


def _event(day: dt.date, user: str, item: str, event: str) -> dict[str, Any]:
    return {"request_id": "r", "ts": _ts(day), "user_id": user, "item_id": item, "event": event}


@pytest.fixture
def window() -> TrainingWindow:
    return TrainingWindow(
        version="v1",
        item_ids=["I0", "I1", "I2", "I3"],
        item_counts=np.array([2, 1, 1, 0]),  # I3 is in the catalogue, never in training
        user_ids={"u0", "u1"},
        categories=["A", "A", "B", "B"],
        text=np.array([[1.0, 0.0], [1.0, 0.0], [0.0, 1.0], [0.0, 1.0]], dtype=np.float32),
    )


def _write_logs(sink: Any) -> None:
    trailing = DAY - dt.timedelta(days=5)
    requests = [_request(trailing, ["I0"], top / 10) for top in range(1, 11)]  # top scores 0.1 .. 1.0
    requests += [
        _request(DAY, ["I0", "I1"], 5.0),
        _request(DAY, ["I1", "I2"], 5.0),
        _request(DAY, ["I0"], 5.0),
        _request(DAY, ["I2"], 5.0, strategy="popular"),
        _request(DAY + dt.timedelta(days=1), ["I3"], 9.0),  # the next day: not counted
    ]
    sink.write(LOG_TABLES["recommendation_requests"], requests)
    events = [_event(DAY, "u0", "I0", "click"), _event(DAY, "u9", "I3", "click"),
              _event(DAY, "u1", "I2", "click"), _event(DAY, "u9", "I9", "purchase")]  # fmt: skip
    events += [_event(DAY, "u0", "I0", "impression")] * 10
    events += [_event(trailing, "u0", "I0", "impression")] * 20 + [_event(trailing, "u0", "I0", "click")] * 2
    events += [_event(DAY + dt.timedelta(days=1), "u5", "I3", "click")] * 50
    sink.write(LOG_TABLES["feedback_events"], events)


@pytest.fixture(params=["duckdb", "bigquery"])
def warehouse(request: pytest.FixtureRequest, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Warehouse:
    """The same crafted logs in DuckDB and in BigQuery (bqemulator)."""
    warehouse: Warehouse = crafted_warehouse(request, tmp_path, monkeypatch, _write_logs)
    return warehouse


def _by_name(frame: pd.DataFrame) -> dict[str, dict[str, Any]]:
    return {row["metric_name"]: row for row in frame.to_dict("records")}


def test_each_metric_on_crafted_logs(warehouse: Warehouse, window: TrainingWindow) -> None:
    got = _by_name(day_metrics(warehouse, window, DAY, ANY_SAMPLE))
    assert set(got) == set(METRICS)
    value = {name: row["value"] for name, row in got.items()}
    details = {name: json.loads(row["details"]) for name, row in got.items()}

    # Interactions: clicks and purchases of the day: I0 (u0), I3 (u9), I2 (u1), I9 (u9, not in the catalogue).
    assert value["unseen_item_share"] == 0.5  # I3 (never trained on) and I9
    assert value["unseen_user_share"] == 0.5  # u9 twice
    # Training categories A A A B (I0 twice, I1, I2); the day's A, B, B, (not in catalogue).
    want = (0.25 - 0.75) * math.log(0.25 / 0.75) + (0.5 - 0.25) * math.log(0.5 / 0.25)
    want += (0.25 - 1e-4) * math.log(0.25 / 1e-4)
    assert value["category_psi"] == pytest.approx(want, rel=1e-9)
    # Popularity bins of I0..I3: 0, 5, 7 and 10 (unseen); training rows 0 0 1 2, the day's 0, 10, 7, 10.
    expected, actual = np.zeros(11), np.zeros(11)
    expected[[0, 5, 7]] = [2, 1, 1]
    actual[[0, 7, 10]] = [1, 1, 2]
    assert value["popularity_psi"] == pytest.approx(drift.psi(expected, actual), rel=1e-9)

    # New items: I3 alone, text (0, 1); the trained items' centroid is (2, 1) / sqrt(5).
    assert value["centroid_distance"] == pytest.approx(1 - 1 / math.sqrt(5), rel=1e-6)
    # I3's nearest trained item: I2, similarity 1; trained items' nearest others: 1, 1, 0.
    assert value["nn_similarity_ks"] == pytest.approx(1 / 3)
    assert details["nn_similarity_ks"]["new_items"] == 1

    # Serving: 4 requests that day, 1 answered by popularity; I0, I1, I2 served of 4 items.
    assert value["fallback_rate"] == 0.25 and value["catalogue_coverage"] == 0.75
    assert value["ctr"] == pytest.approx(0.3)  # 3 clicks / 10 impressions
    assert value["ctr_change"] == pytest.approx(0.3 / 0.1 - 1)  # trailing: 2 / 20
    # Trailing top scores 0.1 .. 1.0: one per decile bin; the day's four all above the last edge.
    assert details["score_psi"]["trailing"] == [1.0] * 10 and details["score_psi"]["day"] == [0.0] * 9 + [4.0]
    want = 9 * (1e-4 - 0.1) * math.log(1e-4 / 0.1) + (1 - 0.1) * math.log(1 / 0.1)
    assert value["score_psi"] == pytest.approx(want, rel=1e-9)

    status = {name: row["status"] for name, row in got.items()}
    assert status["ctr_change"] == "ok" and status["unseen_item_share"] == "breach"
    assert status["score_psi"] == "breach" and status["fallback_rate"] == "ok"
    assert {row["model_version"] for row in got.values()} == {"v1"}
    assert {row["metric_date"] for row in got.values()} == {DAY}


def test_thresholds_are_configurable_and_an_empty_day_has_no_data(
    warehouse: Warehouse, window: TrainingWindow
) -> None:
    metrics = MonitoringSettings(
        thresholds={"unseen_item_share": 0.6}, min_samples=dict.fromkeys(METRICS, 1)
    ).metrics()
    got = _by_name(day_metrics(warehouse, window, DAY, metrics))
    assert got["unseen_item_share"]["threshold"] == 0.6 and got["unseen_item_share"]["status"] == "ok"
    empty = _by_name(day_metrics(warehouse, window, dt.date(2026, 1, 1), METRICS))
    assert {row["status"] for row in empty.values()} == {"no_data"}
    assert all(row["value"] is None or math.isnan(row["value"]) for row in empty.values())


def test_below_its_minimum_sample_a_metric_has_no_data_never_a_breach(
    warehouse: Warehouse, window: TrainingWindow
) -> None:
    """The default minimums: the tiny day's values are kept, but none is read as a breach."""
    got = _by_name(day_metrics(warehouse, window, DAY, METRICS))
    assert {row["status"] for row in got.values()} == {"no_data"}
    read_any = _by_name(day_metrics(warehouse, window, DAY, ANY_SAMPLE))
    assert read_any["unseen_item_share"]["status"] == "breach"  # the same value, read on 4 interactions
    assert got["unseen_item_share"]["value"] == read_any["unseen_item_share"]["value"] == 0.5
    details = json.loads(got["category_psi"]["details"])
    assert details["interactions"] == 4 and (details["sample"], details["min_sample"]) == (
        "interactions",
        200,
    )
    assert json.loads(got["ctr"]["details"])["min_sample"] == 200
    assert json.loads(got["score_psi"]["details"])["sample"] == "requests"
    # At its minimum a metric is read: 4 interactions, a minimum of 4.
    four = MonitoringSettings(min_samples={"unseen_item_share": 4}).metrics()
    assert _by_name(day_metrics(warehouse, window, DAY, four))["unseen_item_share"]["status"] == "breach"


def test_rerunning_a_day_replaces_its_rows(warehouse: Warehouse, window: TrainingWindow) -> None:
    other = dt.date(2026, 11, 19)
    warehouse.replace_day(DRIFT_METRICS, other, day_metrics(warehouse, window, other, METRICS))
    for _ in range(2):
        warehouse.replace_day(DRIFT_METRICS, DAY, day_metrics(warehouse, window, DAY, METRICS))
    counts = warehouse.query(
        "SELECT metric_date, COUNT(*) AS n FROM {drift_metrics} GROUP BY metric_date ORDER BY metric_date"
    )
    days = [(pd.Timestamp(r["metric_date"]).date(), r["n"]) for r in counts.to_dict("records")]
    assert days == [(other, len(METRICS)), (DAY, len(METRICS))]
    sql = "SELECT value FROM {drift_metrics} WHERE metric_date = @day AND metric_name = 'ctr'"
    one = warehouse.query(sql, {"day": DAY})
    assert one["value"].tolist() == [pytest.approx(0.3)]


def test_leaf_category() -> None:
    assert leaf_category(["Electronics", "Audio", "Headphones"]) == "Headphones"
    assert leaf_category([]) == "" and leaf_category(None) == ""


def test_a_window_with_mismatched_lengths_is_refused() -> None:
    with pytest.raises(ValueError, match="training window v1: 2 item ids, 1 counts"):
        TrainingWindow("v1", ["a", "b"], np.array([1]), set(), ["x", "y"], np.zeros((2, 2)))


def test_thresholds_for_unknown_metrics_are_refused() -> None:
    with pytest.raises(ValueError, match=r"thresholds for unknown metrics \['psi_of_nothing'\]"):
        MonitoringSettings(thresholds={"psi_of_nothing": 0.1})
    with pytest.raises(ValueError, match=r"min_samples for unknown metrics \['psi_of_nothing'\]"):
        MonitoringSettings(min_samples={"psi_of_nothing": 10})
    assert MonitoringSettings(thresholds={"ctr": 0.01}).metrics()["ctr"].threshold == 0.01


def test_the_last_days_as_a_table_and_a_plot(warehouse: Warehouse, window: TrainingWindow) -> None:
    import io

    from PIL import Image

    from recsys_assets.core.monitoring.history import HISTORY_SQL, history_plot, history_table

    for day in (DAY - dt.timedelta(days=1), DAY):
        warehouse.replace_day(DRIFT_METRICS, day, day_metrics(warehouse, window, day, ANY_SAMPLE))
    history = warehouse.query(HISTORY_SQL, {"first": DAY - dt.timedelta(days=30), "last": DAY})
    assert len(history) == 2 * len(METRICS)
    table = history_table(history).splitlines()
    assert table[0].startswith("| day | category_psi | popularity_psi |") and len(table) == 4
    assert table[2] == "| 2026-11-19 |" + "  |" * len(METRICS)  # no traffic that day
    assert "| **0.500** |" in table[3] and "| 0.250 |" in table[3]  # unseen items breach; fallback does not
    # With the default minimums the same day reads as too small to tell, in parentheses.
    warehouse.replace_day(DRIFT_METRICS, DAY, day_metrics(warehouse, window, DAY, METRICS))
    history = warehouse.query(HISTORY_SQL, {"first": DAY - dt.timedelta(days=30), "last": DAY})
    thin = history_table(history).splitlines()[3]
    assert "| (0.500) |" in thin and "**" not in thin
    image = Image.open(io.BytesIO(history_plot(history)))
    # Three panels a row (the UI's dialog is that wide), 11 metrics in four rows, at 80 dpi.
    assert image.format == "PNG" and image.size == (12 * 80, int(2.6 * 4 * 80))
