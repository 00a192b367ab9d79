"""The experiment report on crafted logs with planted effects, in DuckDB and in BigQuery
(bqemulator): per-arm numbers against hand counts, and the decisions the tests reach."""

from __future__ import annotations

import datetime as dt
import json
from pathlib import Path
from typing import Any

import pandas as pd
import pytest

from recsys_assets.core.experiments.report import (
    HISTORY_SQL,
    decisions,
    experiment_rows,
    history_plot,
    report_table,
)
from recsys_assets.core.warehouse.clients import Warehouse
from recsys_assets.core.warehouse.tables import EXPERIMENT_METRICS, LOG_TABLES
from recsys_assets.settings.monitoring import ExperimentConfig
from recsys_assets_tests.conftest import crafted_warehouse

DAY = dt.date(2026, 11, 20)
CONFIG = ExperimentConfig(min_requests=500, preference=0.15)


def _ts(day: dt.date, i: int) -> dt.datetime:
    return dt.datetime.combine(day, dt.time(8), tzinfo=dt.UTC) + dt.timedelta(seconds=i)


def _arm(
    experiment: str, arm: str, n: int, clicked: int, latency: float, items: list[str]
) -> tuple[list[dict[str, Any]], list[dict[str, Any]]]:
    """``n`` requests of one arm, half the day before ``DAY`` and half on it; ``clicked`` of
    them (half each day) clicked twice (a duplicate click must not count twice)."""
    requests, events = [], []
    for i in range(n):
        day = DAY - dt.timedelta(days=1) if i < n // 2 else DAY
        request_id = f"{experiment}-{arm}-{i}"
        requests.append({
            "request_id": request_id, "ts": _ts(day, i), "user_id": f"u{i}", "strategy": "user",
            "model_version": arm, "k": len(items), "items": items, "scores": [1.0] * len(items),
            "latency_ms": latency, "experiment": experiment, "arm": arm, "teams": [],
        })  # fmt: skip
        if (i % (n // 2)) < clicked // 2:
            click = {"request_id": request_id, "ts": _ts(day, i + 1), "user_id": f"u{i}", "item_id": items[0],
                     "event": "click", "experiment": experiment, "arm": arm}  # fmt: skip
            events += [click, click]
    return requests, events


def _interleaved(n: int, treatment_wins: int) -> tuple[list[dict[str, Any]], list[dict[str, Any]]]:
    requests, events = [], []
    for i in range(n):
        request_id = f"il-{i}"
        requests.append({"request_id": request_id, "ts": _ts(DAY, i), "user_id": f"v{i}", "strategy": "user",
                         "model_version": "c", "k": 2, "items": ["I0", "I1"], "scores": [1.0, 0.5],
                         "latency_ms": 3.0, "experiment": "e-il", "arm": "interleaved",
                         "teams": ["control", "treatment"]})  # fmt: skip
        item = "I1" if i < treatment_wins else "I0"
        events.append({"request_id": request_id, "ts": _ts(DAY, i + 1), "user_id": f"v{i}", "item_id": item,
                       "event": "click", "experiment": "e-il", "arm": "interleaved"})  # fmt: skip
    return requests, events


def _shadowed(served: list[dict[str, Any]]) -> tuple[list[dict[str, Any]], list[dict[str, Any]]]:
    """A shadow's rows for the first 40 served requests (same ids): the first 20 hold the served
    list's first item (clicked on the first 30 requests), the next 20 hold neither."""
    rows = [
        {**r, "arm": "shadow", "model_version": "s", "latency_ms": 9.0,
         "items": ["I0", "I3"] if i < 20 else ["I3", "I4"]}
        for i, r in enumerate(served[:40])
    ]  # fmt: skip
    return rows, []


def _write_logs(sink: Any) -> None:
    control = _arm("e-better", "control", 600, 60, 2.0, ["I0", "I1"])
    parts = [
        control,
        _arm("e-better", "treatment", 600, 150, 4.0, ["I2"]),
        _shadowed(control[0]),
        _arm("e-worse", "control", 600, 120, 2.0, ["I0"]),
        _arm("e-worse", "treatment", 600, 30, 2.0, ["I1"]),
        _arm("e-small", "control", 400, 40, 2.0, ["I0"]),
        _arm("e-small", "treatment", 400, 160, 2.0, ["I1"]),
        _interleaved(100, 70),
    ]
    sink.write(LOG_TABLES["recommendation_requests"], [r for requests, _ in parts for r in requests])
    sink.write(LOG_TABLES["feedback_events"], [e for _, events in parts for e in events])


@pytest.fixture(params=["duckdb", "bigquery"])
def warehouse(request: pytest.FixtureRequest, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Warehouse:
    """The same crafted logs in DuckDB and in BigQuery (bqemulator)."""
    warehouse: Warehouse = crafted_warehouse(request, tmp_path, monkeypatch, _write_logs)
    return warehouse


def _get(rows: pd.DataFrame, experiment: str, arm: str, metric: str) -> dict[str, Any]:
    (row,) = rows[(rows.experiment == experiment) & (rows.arm == arm) & (rows.metric_name == metric)].to_dict(
        "records"
    )
    return row


def test_planted_effects_are_found_and_decided(warehouse: Warehouse) -> None:
    rows = experiment_rows(warehouse, DAY, catalogue=10, config=CONFIG)
    assert sorted(set(rows.experiment)) == ["e-better", "e-il", "e-small", "e-worse"]
    ctr = _get(rows, "e-better", "treatment", "ctr")
    assert ctr["value"] == pytest.approx(0.25) and ctr["ci_low"] < 0.25 < ctr["ci_high"]
    assert _get(rows, "e-better", "control", "requests")["value"] == 600
    assert _get(rows, "e-better", "treatment", "latency_ms")["value"] == pytest.approx(4.0)
    assert _get(rows, "e-better", "control", "coverage")["value"] == pytest.approx(0.2)  # I0, I1 of 10
    assert _get(rows, "e-better", "shadow", "latency_ms")["value"] == pytest.approx(9.0)
    assert _get(rows, "e-better", "shadow", "requests")["value"] == 40
    assert rows[(rows.arm == "shadow") & (rows.metric_name == "ctr")].empty  # never shown
    # Served ["I0", "I1"]: the first 20 shadow lists hold I0 (1 of 2), the next 20 neither.
    agreement = _get(rows, "e-better", "shadow", "shadow_agreement")
    assert agreement["value"] == pytest.approx(0.25) and agreement["ci_low"] < 0.25 < agreement["ci_high"]
    # 30 shadowed requests clicked on I0: the shadow holds it first on 20 of them.
    replay = _get(rows, "e-better", "shadow", "replay_recall")
    assert replay["value"] == pytest.approx(20 / 30) and json.loads(replay["details"]) == {
        "clicks": 30,
        "found": 20,
        "mrr": pytest.approx(20 / 30),
    }
    better = _get(rows, "e-better", "treatment", "ctr_difference")
    assert better["value"] == pytest.approx(0.15) and better["decision"] == "promote"
    assert better["p_value"] < 1e-3 and better["ci_low"] > 0
    assert '"looks": 2' in better["details"]  # one look per day
    worse = _get(rows, "e-worse", "treatment", "ctr_difference")
    assert worse["value"] == pytest.approx(-0.15) and worse["decision"] == "stop" and worse["ci_high"] < 0
    # A big effect on too few requests: no decision yet.
    small = _get(rows, "e-small", "treatment", "ctr_difference")
    assert small["p_value"] < CONFIG.alpha and small["decision"] == "continue"
    preference = _get(rows, "e-il", "treatment", "preference")
    assert preference["value"] == pytest.approx(0.2) and preference["decision"] == "promote"
    assert '"needed": 85' in preference["details"] and preference["p_value"] < 1e-3
    assert {(d["experiment"], d["decision"]) for d in decisions(rows)} == {
        ("e-better", "promote"),
        ("e-worse", "stop"),
        ("e-small", "continue"),
        ("e-il", "promote"),
    }
    # Written like drift metrics (a day rewritten in place), read back for the table and plot.
    warehouse.replace_day(EXPERIMENT_METRICS, DAY, rows)
    warehouse.replace_day(EXPERIMENT_METRICS, DAY, rows)
    history = warehouse.query(HISTORY_SQL, {"experiment": "e-better", "last": DAY})
    assert len(history) == len(rows[rows.experiment == "e-better"])
    assert history_plot(history, "e-better").startswith(b"\x89PNG")
    assert "| e-better | treatment | ctr_difference | 0.1500 |" in report_table(rows)


def test_the_day_before_holds_only_its_own_data(warehouse: Warehouse) -> None:
    rows = experiment_rows(warehouse, DAY - dt.timedelta(days=1), catalogue=10, config=CONFIG)
    assert "e-il" not in set(rows.experiment)  # interleaving only ran on DAY
    assert _get(rows, "e-better", "control", "requests")["value"] == 300
    assert _get(rows, "e-better", "treatment", "ctr_difference")["decision"] == "continue"  # 300 < 500
    assert experiment_rows(warehouse, DAY + dt.timedelta(days=5), 10, CONFIG).empty
