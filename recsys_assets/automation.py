"""Drift automation: a daily schedule that computes yesterday's drift metrics, and a sensor that
retrains when they breach a threshold.

Both are on by default in ``gcp`` and off locally (turn them on in the UI's Automation tab, or
set ``RECSYS_DRIFT_AUTOMATION=on``); ``dagster dev`` runs the daemon that evaluates them.
"""

import datetime as dt

from dagster import (
    AssetSelection,
    DefaultScheduleStatus,
    DefaultSensorStatus,
    RunRequest,
    ScheduleEvaluationContext,
    SensorEvaluationContext,
    SensorResult,
    define_asset_job,
    schedule,
    sensor,
)

from recsys_assets.assets import embeddings, graphs, models, monitoring, serving
from recsys_assets.core.monitoring.retrain_policy import NEW_ROWS_SQL, Cursor, decide
from recsys_assets.environments import SettingsResource
from recsys_assets.settings import load_settings

drift_job = define_asset_job(
    "drift_metrics_daily",
    selection=AssetSelection.assets(monitoring.drift_metrics),
    description="Compute one day of drift metrics.",
)
retrain_job = define_asset_job(
    "retrain",
    # Embeddings -> graphs -> models -> eval -> index; the promotion gate still guards serving.
    selection=AssetSelection.groups(embeddings.GROUP, graphs.GROUP, models.GROUP, serving.GROUP)
    - AssetSelection.assets(models.gat_ablation, models.hyperparameter_search, models.cold_start_report),
    description="Rematerialize embeddings, graphs, models, eval and the serving index (drift retrain).",
)

AUTOMATION_ON = load_settings().drift_automation_on()


@schedule(
    job=drift_job,
    cron_schedule="0 1 * * *",
    execution_timezone="UTC",
    default_status=DefaultScheduleStatus.RUNNING if AUTOMATION_ON else DefaultScheduleStatus.STOPPED,
)
def drift_metrics_daily_schedule(context: ScheduleEvaluationContext) -> RunRequest:
    """Yesterday's drift metrics, at 01:00 UTC (the API's last log rows of the day are written by then)."""
    day = (context.scheduled_execution_time - dt.timedelta(days=1)).date()
    return RunRequest(run_key=f"drift-metrics-{day}", partition_key=str(day))


@sensor(
    job=retrain_job,
    minimum_interval_seconds=300,
    default_status=DefaultSensorStatus.RUNNING if AUTOMATION_ON else DefaultSensorStatus.STOPPED,
)
def drift_retrain_sensor(context: SensorEvaluationContext, settings: SettingsResource) -> SensorResult:
    """Requests one retrain run when a drift metric breaches its threshold (at most one per interval)."""
    cursor = Cursor.parse(context.cursor)
    rows = settings.warehouse().query(NEW_ROWS_SQL, {"since": cursor.since})
    interval = dt.timedelta(hours=settings.tree.monitoring.retrain_min_interval_h)
    decision = decide(rows, cursor, dt.datetime.now(dt.UTC), interval)
    if decision.run_key is None:
        context.log.info(decision.skip_reason)
        return SensorResult(skip_reason=decision.skip_reason, cursor=decision.cursor.dump())
    context.log.info(f"requesting retrain {decision.run_key}: {decision.tags}")
    return SensorResult(
        run_requests=[RunRequest(run_key=decision.run_key, tags=decision.tags)], cursor=decision.cursor.dump()
    )
