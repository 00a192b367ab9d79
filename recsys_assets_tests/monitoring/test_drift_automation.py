"""The drift sensor over a DuckDB warehouse (``build_sensor_context``) and the daily schedule."""

from __future__ import annotations

import datetime as dt
import json
from pathlib import Path

import pandas as pd
import pytest
from dagster import SensorResult, build_sensor_context

from recsys_assets.core.monitoring.retrain_policy import Cursor
from recsys_assets.core.warehouse.clients import DuckDBWarehouse
from recsys_assets.core.warehouse.tables import DRIFT_METRICS
from recsys_assets.defs.automation import drift_metrics_daily_schedule, drift_retrain_sensor
from recsys_assets.defs.environments import SettingsResource
from recsys_assets.settings import Settings, SettingsError
from recsys_assets_tests.conftest import make_settings


def _day(warehouse: DuckDBWarehouse, day: dt.date, breached: set[str], computed_at: dt.datetime) -> None:
    names = ["category_psi", "unseen_item_share", "ctr"]
    warehouse.replace_day(
        DRIFT_METRICS,
        day,
        pd.DataFrame(
            {
                "metric_date": [day] * 3,
                "metric_name": names,
                "value": [0.5 if n in breached else 0.01 for n in names],
                "threshold": [0.25, 0.3, 0.0],
                "status": ["breach" if n in breached else "ok" for n in names],
                "model_version": ["v1"] * 3,
                "details": ["{}"] * 3,
                "computed_at": [computed_at] * 3,
            }
        ),
    )


def _evaluate(path: Path, cursor: str | None, interval_h: float = 24.0) -> SensorResult:
    settings = make_settings(path.parent, monitoring={"retrain_min_interval_h": interval_h})
    assert settings.warehouse.duckdb_path == str(path)
    context = build_sensor_context(cursor=cursor, resources={"settings": SettingsResource.of(settings)})
    result = drift_retrain_sensor(context)
    assert isinstance(result, SensorResult)
    return result


def test_one_retrain_per_breach_and_the_cursor_advances(tmp_path: Path) -> None:
    path = tmp_path / "warehouse.duckdb"
    warehouse = DuckDBWarehouse(str(path))
    first = dt.datetime(2026, 11, 20, 1, tzinfo=dt.UTC)

    empty = _evaluate(path, None)
    assert not empty.run_requests and "no drift metrics computed after 1970-01-01" in str(empty.skip_reason)

    _day(warehouse, dt.date(2026, 11, 19), set(), first)
    calm = _evaluate(path, None)
    assert not calm.run_requests and "3 new drift metrics, none breached" in str(calm.skip_reason)
    assert Cursor.parse(calm.cursor).since == first

    breach_at = first + dt.timedelta(days=1)
    _day(warehouse, dt.date(2026, 11, 20), {"category_psi", "unseen_item_share"}, breach_at)
    breach = _evaluate(path, calm.cursor)
    (request,) = breach.run_requests or []
    assert request.run_key is not None and request.run_key.startswith("drift-2026-11-20-v1-")
    assert request.tags["recsys/drift_breaches"] == "category_psi,unseen_item_share"
    assert request.tags["recsys/drift_date"] == "2026-11-20"
    cursor = Cursor.parse(breach.cursor)
    assert cursor.since == breach_at and cursor.last_run_key == request.run_key
    assert cursor.last_retrain is not None

    # Read again: nothing new.
    again = _evaluate(path, breach.cursor)
    assert not again.run_requests and json.loads(again.cursor or "")["since"] == breach_at.isoformat()
    # The same day rematerialized, same breach: the same run key, not requested twice.
    _day(
        warehouse,
        dt.date(2026, 11, 20),
        {"category_psi", "unseen_item_share"},
        breach_at + dt.timedelta(hours=1),
    )
    same = _evaluate(path, breach.cursor, interval_h=0)
    assert not same.run_requests and "was already requested" in str(same.skip_reason)
    # A new breach within the minimum interval: passed over, with the reason.
    _day(warehouse, dt.date(2026, 11, 21), {"ctr"}, breach_at + dt.timedelta(hours=2))
    early = _evaluate(path, same.cursor)
    assert not early.run_requests and "ctr breached on 2026-11-21, but the last retrain" in str(
        early.skip_reason
    )
    # Past the interval (here: none), the next breach retrains.
    _day(warehouse, dt.date(2026, 11, 22), {"ctr"}, breach_at + dt.timedelta(hours=3))
    later = _evaluate(path, early.cursor, interval_h=0)
    assert [r.tags["recsys/drift_breaches"] for r in later.run_requests or []] == ["ctr"]


def test_the_schedule_materializes_yesterday(tmp_path: Path) -> None:
    from dagster import build_schedule_context

    from recsys_assets.definitions import defs

    context = build_schedule_context(
        scheduled_execution_time=dt.datetime(2026, 11, 23, 1, tzinfo=dt.UTC),
        repository_def=defs.get_repository_def(),
    )
    # Evaluated as the daemon does, which checks the partition key against the job's partitions.
    (request,) = list(drift_metrics_daily_schedule.evaluate_tick(context).run_requests or [])
    assert request.partition_key == "2026-11-22" and request.run_key == "drift-metrics-2026-11-22"
    assert drift_metrics_daily_schedule.cron_schedule == "0 1 * * *"


def test_a_cursor_round_trips() -> None:
    cursor = Cursor(dt.datetime(2026, 1, 2, 3, 4, 5, 6, tzinfo=dt.UTC), None, "")
    assert Cursor.parse(cursor.dump()) == cursor
    assert Cursor.parse(None) == Cursor() and Cursor.parse("") == Cursor()


@pytest.mark.parametrize(
    ("value", "local", "gcp"), [("auto", False, True), ("on", True, True), ("off", False, False)]
)
def test_automation_setting_is_validated(value: str, local: bool, gcp: bool) -> None:
    environ = {"RECSYS_DRIFT_AUTOMATION": value}
    assert Settings.from_env(environ).monitoring.automation == value
    assert Settings.from_env(environ).drift_automation_on() is local
    assert Settings.from_env({**environ, "RECSYS_ENV": "gcp"}).drift_automation_on() is gcp
    with pytest.raises(
        SettingsError, match="RECSYS_DRIFT_AUTOMATION='sometimes': Input should be 'auto', 'on' or 'off'"
    ):
        Settings.from_env({"RECSYS_DRIFT_AUTOMATION": "sometimes"})
