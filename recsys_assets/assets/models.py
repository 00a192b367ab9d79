"""The models family: baselines, the multi-modal GAT, the evaluation report and its promotion gate.

Every model is trained by one job module (``recsys_assets.jobs.train_model``) and stored the
same way, as user and item vectors under ``models/<name>/``, so ``eval_report`` evaluates
them all with one full-ranking procedure. The GAT trains on the ``l4`` profile (a Vertex AI
L4 in ``gcp``, a local subprocess here) and shares the GPU pool; the baselines use ``cpu``.
"""

import os
import subprocess
from datetime import UTC, datetime
from functools import cache
from importlib.metadata import version
from typing import Any

from dagster import AssetExecutionContext, AssetsDefinition, Config, OpExecutionContext, asset, job, op
from pydantic import Field

from recsys_assets.assets.embeddings import item_fused_embeddings, item_text_embeddings
from recsys_assets.assets.graphs import ii_edges_fused, ii_edges_txt, interaction_splits, node_maps, ui_edges
from recsys_assets.assets.job_steps import GPU_POOL, Results, job_checks, run_job_module
from recsys_assets.core.artifacts import read_json, to_path, write_json
from resources.embeddings import ArtifactStore
from resources.job_runners import JobRunner
from resources.model_config import ModelConfig

GROUP = "models"
#: The model whose vectors serve, and that the promotion gate judges.
CANDIDATE = "gat"
BLESSED = ("eval", "blessed.json")
PROMOTION_GATE = "eval_report_promotion_gate"
TRAINING_INPUTS = [interaction_splits, node_maps]


@cache
def code_version() -> str:
    """``RECSYS_CODE_VERSION`` (set by the image build), else the git commit, else the package version."""
    if os.environ.get("RECSYS_CODE_VERSION"):
        return os.environ["RECSYS_CODE_VERSION"]
    try:
        commit = subprocess.run(
            ["git", "rev-parse", "--short", "HEAD"],
            capture_output=True,
            text=True,
            check=True,
            cwd=os.path.dirname(__file__),
        ).stdout.strip()
    except (OSError, subprocess.CalledProcessError):
        commit = ""
    return f"{version('recsys-assets')}+{commit}" if commit else version("recsys-assets")


def split_params(artifacts: ArtifactStore) -> dict[str, str]:
    return {
        "splits_uri": artifacts.uri("splits", "interactions.parquet"),
        "node_maps_uri": artifacts.uri("graphs", "node_maps.json"),
    }


def gat_params(artifacts: ArtifactStore, model_config: ModelConfig) -> dict[str, Any]:
    features = model_config.gat_features
    return {
        "features": features,
        "features_uri": artifacts.uri("embeddings", f"{features}.npy"),
        "ui_edges_uri": artifacts.uri("graphs", "ui_edges.npz"),
        "ii_edges_uri": artifacts.uri("graphs", f"ii_edges_{features}.npz"),
    }


def _baseline(name: str, description: str, epochs_capped: bool) -> AssetsDefinition:
    key = f"{name}_model"

    @asset(
        name=key,
        group_name=GROUP,
        deps=TRAINING_INPUTS,
        kinds={"pytorch"} if epochs_capped else {"python"},
        check_specs=job_checks(key, vectors="Finite user and item vectors, one per node."),
        description=description,
    )
    def baseline(
        context: AssetExecutionContext,
        artifacts: ArtifactStore,
        model_config: ModelConfig,
        job_runner: JobRunner,
    ) -> Results:
        params = {
            "model": name,
            **split_params(artifacts),
            "output_uri": artifacts.uri("models", name),
            "check": key,
            "config": {"epochs": model_config.max_epochs} if epochs_capped else {},
        }
        yield from run_job_module(context, job_runner, "train_model", params, "cpu")

    return baseline


popularity_model = _baseline(
    "popularity", "Most train interactions first (ties: lower item index): models/popularity/.", False
)
mf_model = _baseline(
    "mf", "Matrix factorisation with BPR, early-stopped on validation NDCG@20: models/mf/.", True
)
lightgcn_model = _baseline(
    "lightgcn", "PyG LightGCN with BPR, early-stopped on validation NDCG@20: models/lightgcn/.", True
)


@asset(
    group_name=GROUP,
    deps=[
        *TRAINING_INPUTS,
        ui_edges,
        item_fused_embeddings,
        item_text_embeddings,
        ii_edges_fused,
        ii_edges_txt,
    ],
    pool=GPU_POOL,
    kinds={"pytorch", "gpu"},
    check_specs=job_checks("gat_model", vectors="Finite user and item vectors, one per node."),
)
def gat_model(
    context: AssetExecutionContext, artifacts: ArtifactStore, model_config: ModelConfig, job_runner: JobRunner
) -> Results:
    """GATv2 over users, items and item-item kNN edges, items fed by content: models/gat.pt + models/gat/."""
    params = {
        "model": "gat",
        **split_params(artifacts),
        **gat_params(artifacts, model_config),
        "output_uri": artifacts.uri("models", "gat"),
        "checkpoint_uri": artifacts.uri("models", "gat.pt"),
        "check": "gat_model",
        "config": model_config.gat(),
    }
    yield from run_job_module(context, job_runner, "train_model", params, "l4")


MODEL_ASSETS = {"popularity": popularity_model, "mf": mf_model, "lightgcn": lightgcn_model, "gat": gat_model}


@asset(
    group_name=GROUP,
    deps=list(MODEL_ASSETS.values()),
    kinds={"python"},
    check_specs=job_checks(
        "eval_report",
        promotion_gate="The candidate's test NDCG@20 and Recall@20 are not below the blessed report's "
        "beyond the tolerance.",
    ),
)
def eval_report(
    context: AssetExecutionContext, artifacts: ArtifactStore, model_config: ModelConfig, job_runner: JobRunner
) -> Results:
    """Every model's full-ranking metrics at K 10/20 (val, test, slices, coverage): eval/eval.json."""
    params = {
        **split_params(artifacts),
        "models": {name: artifacts.uri("models", name) for name in MODEL_ASSETS},
        "candidate": CANDIDATE,
        "output_uri": artifacts.uri("eval", "eval.json"),
        "blessed_uri": artifacts.uri(*BLESSED),
        "tolerance": model_config.promotion_tolerance,
        "versions": {"code": code_version(), "gat_features": model_config.gat_features},
        "check": PROMOTION_GATE,
    }
    yield from run_job_module(context, job_runner, "evaluate", params, "cpu")


@asset(
    group_name=GROUP,
    deps=[gat_model],
    kinds={"pytorch"},
)
def gat_ablation(
    context: AssetExecutionContext, artifacts: ArtifactStore, model_config: ModelConfig, job_runner: JobRunner
) -> Results:
    """GAT variants (features, loss, heads, layers, edges, edge features) side by side: eval/ablation.json."""
    params = {
        **split_params(artifacts),
        "ui_edges_uri": artifacts.uri("graphs", "ui_edges.npz"),
        "features_uris": {f: artifacts.uri("embeddings", f"{f}.npy") for f in ("fused", "txt")},
        "ii_edges_uris": {f: artifacts.uri("graphs", f"ii_edges_{f}.npz") for f in ("fused", "txt")},
        "base": {**model_config.gat(), "features": model_config.gat_features},
        "output_uri": artifacts.uri("eval", "ablation.json"),
    }
    yield from run_job_module(context, job_runner, "gat_ablation", params, "l4")


class BlessConfig(Config):
    note: str = Field(default="", description="Why this report is blessed (kept in the blessed report).")
    force: bool = Field(default=False, description="Bless even if the report's promotion gate failed.")


@op
def bless_current_report(context: OpExecutionContext, config: BlessConfig, artifacts: ArtifactStore) -> None:
    """Copy eval/eval.json to eval/blessed.json: the bar later candidates are gated against."""
    source, target = artifacts.uri("eval", "eval.json"), artifacts.uri(*BLESSED)
    if not to_path(source).exists():
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
    write_json(target, report)
    context.log.info(
        f"blessed {source} (candidate {report['candidate']}: test NDCG@20 {candidate['ndcg@20']:.4f}, "
        f"Recall@20 {candidate['recall@20']:.4f}) as {target}"
    )


@job(description="Bless the current eval/eval.json: later candidates must not regress below it.")
def bless_eval_report() -> None:
    bless_current_report()
