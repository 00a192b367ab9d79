"""The models family: strong simple peers, the multi-modal GAT, the evaluation report that
promotes the best of them, and its promotion gate.

Every model is trained by one job module (``recsys_assets.pipes.train_model``) and stored under
``models/<name>/`` as user and item vectors or as item-item neighbour lists, with the use of
order it chose on validation, so ``eval_report`` evaluates them all with one full-ranking
procedure and promotes by significant validation gains (``core/models/promotion.py``). The GAT
trains on the ``l4`` profile (a Vertex AI L4 in ``gcp``, a local subprocess here) and shares the
GPU pool; the baselines use ``cpu``. Every fitted model has a blocking leakage check
(``assets/leakage.py``).
"""

import subprocess
from functools import cache
from importlib.metadata import version
from pathlib import Path
from typing import TypeVar

from dagster import (
    AssetExecutionContext,
    AssetsDefinition,
    StaticPartitionsDefinition,
    asset,
)

from recsys_assets.core.io import artifacts as catalogue
from recsys_assets.core.io.artifacts import Artifacts
from recsys_assets.core.io.codecs import read_json
from recsys_assets.core.io.storage import exists
from recsys_assets.core.models import registry
from recsys_assets.defs.assets.embeddings import item_fused_embeddings, item_text_embeddings
from recsys_assets.defs.assets.graphs import (
    ii_edges_fused,
    ii_edges_txt,
    interaction_splits,
    node_maps,
    ui_edges,
)
from recsys_assets.defs.assets.job_steps import GPU_POOL, Results, job_checks, run_job
from recsys_assets.defs.environments import SettingsResource
from recsys_assets.pipes.contracts import (
    TRAIN_CONTRACTS,
    AblationParams,
    ColdStartParams,
    ContentInputs,
    EvaluateParams,
    ModelFiles,
    RankerAblationParams,
    RankerSources,
    SearchParams,
    TrainingInputs,
    TrainParams,
)
from recsys_assets.settings import Settings
from recsys_assets.settings.base import Section
from recsys_assets.settings.models import ModelSettings
from resources.job_runners import JobRunner

GROUP = "models"
TRAINING_INPUTS = [interaction_splits, node_maps]
#: What a model that reads content trains on (the GAT; the search and cold start too).
CONTENT_INPUTS = [
    *TRAINING_INPUTS,
    ui_edges,
    item_fused_embeddings,
    item_text_embeddings,
    ii_edges_fused,
    ii_edges_txt,
]


@cache
def code_version(configured: str) -> str:
    """``configured`` (set by the image build), else the package version and git commit."""
    if configured:
        return configured
    try:
        commit = subprocess.run(
            ["git", "rev-parse", "--short", "HEAD"],
            capture_output=True,
            text=True,
            check=True,
            cwd=Path(__file__).parent,
        ).stdout.strip()
    except (OSError, subprocess.CalledProcessError):
        commit = ""
    return f"{version('recsys-assets')}+{commit}" if commit else version("recsys-assets")


def training_inputs(artifacts: Artifacts) -> TrainingInputs:
    return TrainingInputs(
        splits_uri=artifacts.uri(catalogue.SPLITS), node_maps_uri=artifacts.uri(catalogue.NODE_MAPS)
    )


def model_files(artifacts: Artifacts, model: str) -> ModelFiles:
    ranker = registry.spec(model).kind == "ranker"
    return ModelFiles(
        users_uri=artifacts.uri(catalogue.MODEL_USERS, model=model),
        items_uri=artifacts.uri(catalogue.MODEL_ITEMS, model=model),
        neighbours_uri=artifacts.uri(catalogue.MODEL_NEIGHBOURS, model=model),
        meta_uri=artifacts.uri(catalogue.MODEL_META, model=model),
        trained_on_uri=artifacts.uri(catalogue.MODEL_TRAINED_ON, model=model),
        checkpoint_uri=artifacts.uri(
            catalogue.RANKER_BOOSTER if ranker else catalogue.MODEL_CHECKPOINT, model=model
        ),
        scores_uri=artifacts.uri(catalogue.MODEL_SCORES, model=model) if ranker else "",
    )


def ranker_sources(artifacts: Artifacts, models: ModelSettings) -> RankerSources:
    """Every trained retriever's files (the ranker's ``sources`` setting picks among them) and
    the content vectors its settings name."""
    return RankerSources(
        models={spec.name: model_files(artifacts, spec.name) for spec in registry.RETRIEVERS},
        content_uris={
            space: artifacts.uri(catalogue.ITEM_FEATURES[space]) for space in models.ranker.content
        },
    )


S = TypeVar("S", bound=Section)


def tuned(config: S, artifacts: Artifacts, model: str, models: ModelSettings) -> tuple[S, str]:
    """``config`` with the best settings a search found for ``model`` (and where they came
    from), when there are some and ``models.search.use_best`` is on; else as it is."""
    uri = artifacts.uri(catalogue.SEARCH_BEST, model=model)
    if not models.search.use_best or not exists(uri):
        return config, ""
    return config.with_changes(read_json(uri)["params"], uri), uri


def train_params(spec: registry.ModelSpec, artifacts: Artifacts, models: ModelSettings) -> TrainParams:
    """What ``<model>_model`` hands the training job: its settings (with a search's best when
    there is one), its files, and its content inputs when it reads them."""
    config, tuned_from = spec.config(models), ""
    if config is not None and spec.tunable:
        config, tuned_from = tuned(config, artifacts, spec.name, models)
    return TRAIN_CONTRACTS[spec.name](
        asset=spec.asset,
        model=spec.name,
        config=config,
        tuned_from=tuned_from,
        inputs=content_inputs(artifacts, models) if spec.content else None,
        sources=ranker_sources(artifacts, models) if spec.kind == "ranker" else None,
        data=training_inputs(artifacts),
        output=model_files(artifacts, spec.name),
        order=models.order,
        seeds=models.seeds,
        evaluation=models.evaluation,
    )


def content_inputs(artifacts: Artifacts, models: ModelSettings) -> ContentInputs:
    features = models.gat_features
    return ContentInputs(
        features=features,
        features_uri=artifacts.uri(catalogue.ITEM_FEATURES[features]),
        ui_edges_uri=artifacts.uri(catalogue.UI_EDGES),
        ii_edges_uri=artifacts.uri(catalogue.II_EDGES[features]),
    )


def model_asset(spec: registry.ModelSpec, ranker_inputs: list[AssetsDefinition]) -> AssetsDefinition:
    """``<name>_model``: trains the registered model in its job (the GPU profile and pool for a
    model that asks for them), its checks declared from the training contract; a ranker reads
    every retriever and the content vectors (``ranker_inputs``)."""
    kinds = {"pytorch"} if spec.epochs else {"lightgbm"} if spec.kind == "ranker" else {"python"}
    deps = ranker_inputs if spec.kind == "ranker" else CONTENT_INPUTS if spec.content else TRAINING_INPUTS

    @asset(
        name=spec.asset,
        group_name=GROUP,
        deps=deps,
        kinds=kinds | {"gpu"} if spec.gpu else kinds,
        pool=GPU_POOL if spec.gpu else None,
        check_specs=job_checks(spec.asset, TrainParams),
        description=f"{spec.description}: models/{spec.name}/.",
    )
    def train(context: AssetExecutionContext, settings: SettingsResource, job_runner: JobRunner) -> Results:
        params = train_params(spec, settings.artifacts, settings.tree.models)
        if params.tuned_from:
            context.log.info(f"{spec.asset}: training with the best settings of {params.tuned_from}")
        yield from run_job(context, job_runner, params, "l4" if spec.gpu else "cpu")

    return train


#: The assets of the models a ranker reads, by model name.
RETRIEVER_ASSETS: dict[str, AssetsDefinition] = {
    spec.name: model_asset(spec, []) for spec in registry.RETRIEVERS
}
#: What a ranker reads: the split, the content vectors and every retriever.
RANKER_INPUTS = [*TRAINING_INPUTS, item_fused_embeddings, item_text_embeddings, *RETRIEVER_ASSETS.values()]
#: Every registered model's asset, by model name.
MODEL_ASSETS: dict[str, AssetsDefinition] = {
    spec.name: RETRIEVER_ASSETS[spec.name] if spec.kind != "ranker" else model_asset(spec, RANKER_INPUTS)
    for spec in registry.MODELS
}


@asset(
    group_name=GROUP,
    deps=list(MODEL_ASSETS.values()),
    kinds={"python"},
    check_specs=job_checks("eval_report", EvaluateParams),
)
def eval_report(context: AssetExecutionContext, settings: SettingsResource, job_runner: JobRunner) -> Results:
    """Every model's metrics with 95% intervals; only a significant gain promotes: eval/eval.json."""
    yield from run_job(context, job_runner, evaluate_params(settings.artifacts, settings.tree), "cpu")


def evaluate_params(artifacts: Artifacts, tree: Settings) -> EvaluateParams:
    """What ``eval_report`` hands its job (also what the benchmarks time)."""
    return EvaluateParams(
        asset="eval_report",
        data=training_inputs(artifacts),
        models={name: model_files(artifacts, name) for name in MODEL_ASSETS},
        candidate=tree.models.candidate,
        output_uri=artifacts.uri(catalogue.EVAL_REPORT),
        table_uri=artifacts.uri(catalogue.EVAL_TABLE),
        blessed_uri=artifacts.uri(catalogue.BLESSED_REPORT),
        tolerance=tree.models.promotion_tolerance,
        evaluation=tree.models.evaluation,
        items_uri=artifacts.uri(catalogue.ITEMS),
        versions={"code": code_version(tree.code_version), "gat_features": tree.models.gat_features},
    )


def searched_retrievers(artifacts: Artifacts, models: ModelSettings) -> RankerSources:
    """The ranker's search reads the trained retrievers' files (no asset dependency: the other
    models' searches need none); a retriever not trained yet is named."""
    sources = ranker_sources(artifacts, models)
    missing = [name for name, files in sources.models.items() if not exists(files.meta_uri)]
    if missing:
        raise ValueError(
            f"hyperparameter_search[ranker]: the retrievers {missing} are not trained yet; materialize "
            f"{', '.join(f'{name}_model' for name in missing)} first"
        )
    return sources


search_partitions = StaticPartitionsDefinition(list(registry.TUNABLE))


@asset(
    group_name=GROUP,
    partitions_def=search_partitions,
    deps=CONTENT_INPUTS,
    pool=GPU_POOL,
    kinds={"optuna"},
)
def hyperparameter_search(
    context: AssetExecutionContext, settings: SettingsResource, job_runner: JobRunner
) -> Results:
    """Optuna TPE search of one model's settings on validation NDCG@20 (pruned): search/<model>/best.json."""
    model = context.partition_key
    artifacts, models = settings.artifacts, settings.tree.models
    spec = registry.spec(model)
    config = spec.config(models)
    assert config is not None  # a tunable model has settings
    params = SearchParams(
        asset="hyperparameter_search",
        model=model,
        data=training_inputs(artifacts),
        base=config.to_dict(),
        order=models.order,
        inputs=content_inputs(artifacts, models) if spec.content else None,
        sources=searched_retrievers(artifacts, models) if spec.kind == "ranker" else None,
        search=models.search,
        journal_uri=artifacts.uri(catalogue.SEARCH_JOURNAL, model=model),
        best_uri=artifacts.uri(catalogue.SEARCH_BEST, model=model),
    )
    yield from run_job(context, job_runner, params, "l4" if spec.gpu else "cpu")


@asset(group_name=GROUP, deps=CONTENT_INPUTS, pool=GPU_POOL, kinds={"pytorch", "gpu"})
def cold_start_report(
    context: AssetExecutionContext, settings: SettingsResource, job_runner: JobRunner
) -> Results:
    """Cold start: popularity, content peers, the GAT and the ranker on held-out items: eval/cold_start.json.

    Nothing fitted sees the held-out items' interactions: the fused content is refit without them.
    """
    artifacts, models = settings.artifacts, settings.tree.models
    config, _ = tuned(models.gat, artifacts, "gat", models)
    params = ColdStartParams(
        asset="cold_start_report",
        data=training_inputs(artifacts),
        gat=config,
        inputs=content_inputs(artifacts, models),
        text_uri=artifacts.uri(catalogue.TEXT_EMBEDDINGS),
        image_uri=artifacts.uri(catalogue.IMAGE_EMBEDDINGS),
        image_items_uri=artifacts.uri(catalogue.IMAGE_ITEMS),
        fusion=settings.tree.embeddings.fusion,
        knn=settings.tree.graphs.knn,
        order=models.order,
        evaluation=models.evaluation,
        protocol=models.cold_start,
        ranker=models.ranker,
        ease=models.ease,
        output_uri=artifacts.uri(catalogue.COLD_START_REPORT),
    )
    yield from run_job(context, job_runner, params, "l4")


@asset(group_name=GROUP, deps=[*RANKER_INPUTS, MODEL_ASSETS["ranker"]], kinds={"lightgbm"})
def ranker_ablation(
    context: AssetExecutionContext, settings: SettingsResource, job_runner: JobRunner
) -> Results:
    """The two-stage ranker without the GAT, without EASE and ItemKNN, without content, each against
    the full one, paired over users: eval/ranker_ablation.json."""
    artifacts, models = settings.artifacts, settings.tree.models
    params = RankerAblationParams(
        asset="ranker_ablation",
        data=training_inputs(artifacts),
        sources=ranker_sources(artifacts, models),
        base=models.ranker,
        evaluation=models.evaluation,
        output_uri=artifacts.uri(catalogue.RANKER_ABLATION),
    )
    yield from run_job(context, job_runner, params, "cpu")


@asset(group_name=GROUP, deps=[MODEL_ASSETS["gat"]], kinds={"pytorch"})
def gat_ablation(
    context: AssetExecutionContext, settings: SettingsResource, job_runner: JobRunner
) -> Results:
    """GAT variants (features, loss, heads, layers, edges, edge features) side by side: eval/ablation.json."""
    artifacts, models = settings.artifacts, settings.tree.models
    params = AblationParams(
        asset="gat_ablation",
        data=training_inputs(artifacts),
        ui_edges_uri=artifacts.uri(catalogue.UI_EDGES),
        features_uris={name: artifacts.uri(a) for name, a in catalogue.ITEM_FEATURES.items()},
        ii_edges_uris={name: artifacts.uri(a) for name, a in catalogue.II_EDGES.items()},
        base=models.gat,
        features=models.gat_features,
        output_uri=artifacts.uri(catalogue.ABLATION),
    )
    yield from run_job(context, job_runner, params, "l4")


#: Assets run when someone asks for them (each trains many models): outside ``all_assets``.
ON_REQUEST = (gat_ablation, ranker_ablation, hyperparameter_search, cold_start_report)
