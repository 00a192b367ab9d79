"""The automation: a daily schedule that computes yesterday's drift metrics and a sensor that
retrains when they breach a threshold; a daily schedule for the experiment report and a sensor
that reads each report's decisions (the jobs they run are in ``jobs.py``).

A treatment significantly worse than the control is stopped by the experiment sensor itself (the
control serves everyone again); one significantly better is proposed for promotion, or promoted
when ``monitoring.experiments.auto_promote`` lets it.

All are on by default in ``gcp`` and off locally (turn them on in the UI's Automation tab, or
set ``RECSYS_DRIFT_AUTOMATION=on``); ``dagster dev`` runs the daemon that evaluates them.
"""

import datetime as dt

from dagster import (
    AssetKey,
    DefaultScheduleStatus,
    DefaultSensorStatus,
    EventLogEntry,
    RunRequest,
    ScheduleEvaluationContext,
    SensorEvaluationContext,
    SensorResult,
    SkipReason,
    asset_sensor,
    schedule,
    sensor,
)

from recsys_assets.core.monitoring.retrain_policy import NEW_ROWS_SQL, Cursor, decide
from recsys_assets.core.serving import rollout
from recsys_assets.defs.environments import SettingsResource
from recsys_assets.defs.jobs import (
    EndExperimentConfig,
    drift_job,
    end_experiment,
    experiment_report_job,
    retrain_job,
)
from recsys_assets.settings import load_settings

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


@schedule(
    job=experiment_report_job,
    cron_schedule="30 1 * * *",
    execution_timezone="UTC",
    default_status=DefaultScheduleStatus.RUNNING if AUTOMATION_ON else DefaultScheduleStatus.STOPPED,
)
def experiment_report_daily_schedule(context: ScheduleEvaluationContext) -> RunRequest:
    """Yesterday's experiment report, at 01:30 UTC."""
    day = (context.scheduled_execution_time - dt.timedelta(days=1)).date()
    return RunRequest(run_key=f"experiment-report-{day}", partition_key=str(day))


@asset_sensor(
    asset_key=AssetKey("experiment_report"),
    job=end_experiment,
    default_status=DefaultSensorStatus.RUNNING if AUTOMATION_ON else DefaultSensorStatus.STOPPED,
)
def experiment_sensor(
    context: SensorEvaluationContext, asset_event: EventLogEntry, settings: SettingsResource
) -> list[RunRequest] | SkipReason:
    """Stops a treatment the report finds significantly worse; proposes (or makes) a promotion."""
    materialization = asset_event.asset_materialization
    decided = materialization.metadata["decisions"].value if materialization else []
    running = rollout.running_experiment(settings.artifacts)
    auto_promote = settings.tree.monitoring.experiments.auto_promote
    requests, notes = [], []
    for decision in decided if isinstance(decided, list) else []:
        name, arm, verdict = decision["experiment"], decision["arm"], decision["decision"]
        if name != running or verdict == "continue":
            continue
        if verdict == "promote" and not auto_promote:
            notes.append(
                f"{name}: {arm} is significantly better ({decision['metric']} {decision['value']:+.4f}, "
                f"p {decision['p_value']:.4g}); promote it by launching `end_experiment` with action "
                "promote, or set RECSYS_AUTO_PROMOTE=true"
            )
            continue
        config = EndExperimentConfig(experiment=name, action=verdict, arm=arm)
        run_config = {"ops": {"end_running_experiment": {"config": config.model_dump()}}}
        requests.append(RunRequest(run_key=f"{name}-{arm}-{verdict}", run_config=run_config,
                                   tags={"experiment": name, "arm": arm, "action": verdict}))  # fmt: skip
        context.log.info(
            f"{name}: requesting {verdict} of {arm} ({decision['metric']}, p {decision['p_value']:.4g})"
        )
    for note in notes:
        context.log.info(note)
    if not requests:
        return SkipReason("; ".join(notes) or f"no decision to act on (running: {running or 'none'})")
    return requests
