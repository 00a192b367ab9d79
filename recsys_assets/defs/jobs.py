"""Every Dagster job of the code location: the whole graph, the jobs someone asks for (ablation,
cold start, search, bless), and those the automation runs (the daily drift metrics and
experiment report, the retrain, ending an experiment)."""

from datetime import UTC, datetime
from typing import Literal

from dagster import (
    AssetSelection,
    Config,
    Failure,
    OpExecutionContext,
    define_asset_job,
    job,
    op,
)
from pydantic import Field

from recsys_assets.core.experiments.assignment import TREATMENT
from recsys_assets.core.io import artifacts as catalogue
from recsys_assets.core.io.codecs import read_json, save
from recsys_assets.core.io.storage import exists
from recsys_assets.core.serving import rollout
from recsys_assets.defs.assets import embeddings, graphs, models, monitoring, serving
from recsys_assets.defs.environments import SettingsResource

all_assets_job = define_asset_job(
    "all_assets",
    # The ablation trains several GATs; it is its own job, run when someone asks for it. The
    # daily drift metrics have their own schedule (and partitions unlike the monthly ones).
    # A search trains a model many times: it runs when someone asks for it (``search``).
    selection=AssetSelection.all()
    - AssetSelection.assets(*models.ON_REQUEST)
    - AssetSelection.groups(monitoring.GROUP),
    description="Materialize the whole graph (run with a partition range for partitioned assets).",
)
gat_ablation_job = define_asset_job(
    "ablation",
    selection=AssetSelection.assets(models.gat_ablation, models.ranker_ablation),
    description="Train GAT variants (features, loss, heads, layers) and ranker variants (without the "
    "GAT, EASE and ItemKNN, content) and record their tables.",
)

cold_start_job = define_asset_job(
    "cold_start",
    selection=AssetSelection.assets(models.cold_start_report),
    description="Hold items out entirely and see which model recommends them from their content.",
)
search_job = define_asset_job(
    "search",
    selection=AssetSelection.assets(models.hyperparameter_search),
    description="Search one model's settings with Optuna (partition: the model); its asset then uses them.",
)
drift_job = define_asset_job(
    "drift_metrics_daily",
    selection=AssetSelection.assets(monitoring.drift_metrics),
    description="Compute one day of drift metrics.",
)
retrain_job = define_asset_job(
    "retrain",
    # Embeddings -> graphs -> models -> eval -> index; the promotion gate still guards serving.
    selection=AssetSelection.groups(embeddings.GROUP, graphs.GROUP, models.GROUP, serving.GROUP)
    - AssetSelection.assets(*models.ON_REQUEST),
    description="Rematerialize embeddings, graphs, models, eval and the serving index (drift retrain).",
)


experiment_report_job = define_asset_job(
    "experiment_report_daily",
    selection=[monitoring.experiment_report],
    description="Report one day of the online experiments.",
)


class EndExperimentConfig(Config):
    experiment: str
    action: Literal["stop", "promote"]
    arm: str = TREATMENT


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


class BlessConfig(Config):
    note: str = Field(default="", description="Why this report is blessed (kept in the blessed report).")
    force: bool = Field(default=False, description="Bless even if the report's promotion gate failed.")


@op
def bless_current_report(
    context: OpExecutionContext, config: BlessConfig, settings: SettingsResource
) -> None:
    """Copy eval/eval.json to eval/blessed.json: the bar later candidates are gated against."""
    source = settings.artifacts.uri(catalogue.EVAL_REPORT)
    target = settings.artifacts.uri(catalogue.BLESSED_REPORT)
    if not exists(source):
        raise FileNotFoundError(f"{source}: no evaluation report to bless; materialize eval_report first")
    report = read_json(source)
    if not report["promotion"]["passed"] and not config.force:
        raise ValueError(
            f"{source}: its promotion gate failed ({report['promotion']['description']}); "
            "pass force: true to bless it anyway"
        )
    candidate = report["models"][report["candidate"]]["test"]
    report["blessed"] = {
        "at": datetime.now(UTC).isoformat(timespec="seconds"),
        "run_id": context.run_id,
        "note": config.note,
    }
    save(target, report)
    context.log.info(
        f"blessed {source} (candidate {report['candidate']}: test NDCG@20 {candidate['ndcg@20']:.4f}, "
        f"Recall@20 {candidate['recall@20']:.4f}) as {target}"
    )


@job(description="Bless the current eval/eval.json: later candidates must not regress below it.")
def bless_eval_report() -> None:
    bless_current_report()


#: Every job, for the Definitions.
JOBS = (
    all_assets_job, gat_ablation_job, search_job, cold_start_job, bless_eval_report, drift_job, retrain_job,
    experiment_report_job, end_experiment,
)  # fmt: skip
