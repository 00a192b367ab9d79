"""Experiment automation: a daily schedule for the experiment report, a sensor that reads each
report's decisions, and the job that ends an experiment.

A treatment significantly worse than the control is stopped by the sensor itself (the control
serves everyone again). One significantly better is proposed for promotion: the sensor logs
it and skips, unless ``monitoring.experiments.auto_promote`` lets it promote the treatment.
Like the drift automation, on by default in ``gcp`` and off locally.
"""

import datetime as dt
from typing import Literal

from dagster import (
    AssetKey,
    Config,
    DefaultScheduleStatus,
    DefaultSensorStatus,
    EventLogEntry,
    Failure,
    OpExecutionContext,
    RunRequest,
    ScheduleEvaluationContext,
    SensorEvaluationContext,
    SkipReason,
    asset_sensor,
    define_asset_job,
    job,
    op,
    schedule,
)

from recsys_assets.assets import monitoring
from recsys_assets.core.serving import rollout
from recsys_assets.environments import SettingsResource
from recsys_assets.settings import load_settings

AUTOMATION_ON = load_settings().drift_automation_on()
experiment_report_job = define_asset_job(
    "experiment_report_daily",
    selection=[monitoring.experiment_report],
    description="Report one day of the online experiments.",
)


class EndExperimentConfig(Config):
    experiment: str
    action: Literal["stop", "promote"]
    arm: str = rollout.TREATMENT


@op
def end_running_experiment(
    context: OpExecutionContext, config: EndExperimentConfig, settings: SettingsResource
) -> None:
    """Stop the treatment or promote it, if the experiment named is still the one running."""
    running = rollout.running_experiment(settings.artifacts)
    if running != config.experiment:
        raise Failure(f"experiment {config.experiment} is no longer running (running: {running or 'none'})")
    manifest = rollout.end_experiment(settings.artifacts, config.action, config.arm)
    context.log.info(f"{config.action} {config.arm} of {config.experiment}: serving {manifest['version']}")


@job(description="End the running experiment: stop its treatment, or promote it (run config: action).")
def end_experiment() -> None:
    end_running_experiment()


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
