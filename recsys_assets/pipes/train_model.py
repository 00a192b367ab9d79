"""Job: train one registered model (``core/models/registry.py``) on the split's train rows ->
its user and item vectors or neighbour lists, meta and, for a model that keeps one, its
checkpoint (``models/<name>/``, ``models/<name>.pt``)."""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import Any

import numpy as np
from dagster_pipes import PipesContext

from recsys_assets.core.io.codecs import save
from recsys_assets.core.io.sparse import csr_arrays
from recsys_assets.core.io.storage import write_bytes
from recsys_assets.core.markdown import Markdown, markdown_table
from recsys_assets.core.models import training
from recsys_assets.core.models.evaluation import evaluate
from recsys_assets.core.models.ranker.report import (
    importance_markdown,
    importance_plot,
    recall_markdown,
    tried_markdown,
)
from recsys_assets.core.models.ranker.scores import scores_arrays
from recsys_assets.core.models.recency import Order
from recsys_assets.core.models.training_data import TrainingData, load_training_data
from recsys_assets.pipes.contracts import TRAIN_PARAMS, TrainParams
from recsys_assets.pipes.pipes_io import JobResult, json_value, run_job


def step_logger(pipes: PipesContext, model: str, every_seconds: float = 30.0) -> Callable[[int, int], None]:
    """Within-epoch progress, logged only when an epoch is long (sampled training at scale)."""
    last = [time.perf_counter()]

    def report(done: int, total: int) -> None:
        now = time.perf_counter()
        if now - last[0] >= every_seconds:
            last[0] = now
            pipes.log.info(f"{model}: step {done:,} of {total:,} in this epoch")

    return report


def fitting_for(params: TrainParams, data: TrainingData, pipes: PipesContext) -> training.Fitting:
    """What every fit of this job gets: the uses of order, the logs, and the content inputs read
    once (each further seed reuses them)."""

    def progress(record: dict[str, float]) -> None:
        pipes.log.info(f"{params.model} {training.progress_line(record)}")

    def log(text: str) -> None:
        pipes.log.info(f"{params.model}: {text}")

    return training.Fitting(
        order=params.order,
        progress=progress,
        log=log,
        step_progress=step_logger(pipes, params.model),
        content=params.inputs.load(data) if params.inputs is not None else None,
        ranker=(
            params.sources.load(data, params.data.splits_uri, params.data.node_maps_uri)
            if params.sources is not None
            else None
        ),
    )


def seed_metrics(
    trained: training.Trained, data: TrainingData, params: TrainParams, seed: int
) -> dict[str, float]:
    """One seed's model evaluated as ``eval_report`` evaluates (its chosen use of order, the
    same test history): for the spread across seeds the report shows."""
    metrics = evaluate(
        trained.model.scoring(data.n_items, trained.order), data, test_history=params.evaluation.test_history
    )
    return {
        "seed": seed,
        **{
            f"{split}_{m}": float(metrics[split][m])
            for split in ("val", "test")
            for m in ("ndcg@20", "recall@20")
        },
        "best_epoch": float(trained.fit.best_epoch if trained.fit else 0),
    }


def seed_runs(
    params: TrainParams,
    trained: training.Trained,
    data: TrainingData,
    fitting: training.Fitting,
    pipes: PipesContext,
) -> list[dict[str, float]]:
    """With ``params.seeds`` > 1, the model refit with each further seed, every seed's metrics
    (the first is ``trained``, the model kept); empty otherwise."""
    if params.seeds < 2 or not params.spec.epochs:
        return []
    first = params.config.seed
    runs = [seed_metrics(trained, data, params, first)]
    for k in range(1, params.seeds):
        seed = first + k
        pipes.log.info(
            f"{params.model}: seed {seed} ({k + 1} of {params.seeds}), for the spread across seeds"
        )
        config = params.config.with_changes({"seed": seed}, "seeds")
        runs.append(seed_metrics(training.train(params.model, data, config, fitting), data, params, seed))
    pipes.log.info(f"{params.model}: test NDCG@20 across {len(runs)} seeds {_spread(runs, 'test_ndcg@20')}")
    return runs


def _spread(runs: list[dict[str, float]], key: str) -> str:
    values = [r[key] for r in runs]
    return f"{np.mean(values):.4f} ± {np.std(values, ddof=1):.4f}"


def order_table(tried: list[dict[str, float]], rows: int = 10) -> Markdown:
    """The best ``rows`` combinations of settings and order tried on validation."""
    best = sorted(tried, key=lambda row: -row["val_ndcg@20"])[:rows]
    keys = [k for k in best[0] if k != "val_ndcg@20"]
    return markdown_table([*keys, "val NDCG@20"], [[*(f"{r[k]:g}" for k in keys), f"{r['val_ndcg@20']:.4f}"]
                                                   for r in best])  # fmt: skip


def seeds_table(runs: list[dict[str, float]]) -> Markdown:
    """Each seed's validation and test NDCG@20 and Recall@20, then their mean and spread."""
    keys = ["val_ndcg@20", "test_ndcg@20", "val_recall@20", "test_recall@20"]
    rows = [[int(r["seed"]), *(f"{r[k]:.4f}" for k in keys)] for r in runs]
    rows.append(["mean ± sd", *(_spread(runs, k) for k in keys)])
    return markdown_table(["seed", *keys], rows)


def save_model(params: TrainParams, trained: training.Trained) -> None:
    """Vectors, neighbour lists or a ranker's scores, by the model's kind."""
    model = trained.model
    if model.split_scores is not None:
        save(params.output.scores_uri, scores_arrays(model.split_scores))
    elif model.neighbours is not None:
        save(params.output.neighbours_uri, csr_arrays(model.neighbours))
    else:
        assert model.users is not None
        assert model.items is not None
        save(params.output.users_uri, model.users.astype(np.float32))
        save(params.output.items_uri, model.items.astype(np.float32))


def ranker_metadata(params: TrainParams, meta: dict[str, Any]) -> dict[str, Any]:
    """A ranker's candidates (recall per retriever), settings tried and feature importance; a
    blend's pair and weights tried."""
    if params.spec.kind != "ranker":
        return {}
    out: dict[str, Any] = {"sources": ", ".join(meta["sources"])}
    if "recall" in meta:
        out["candidates"] = recall_markdown(meta["recall"], params.config.per_source)
        out["settings_tried"] = tried_markdown(meta["tried"])
        out["importance"] = importance_markdown(meta["importance"], meta["features"])
        out["importance_plot"] = importance_plot(meta["importance"])
        out["union_recall"] = round(meta["recall"][-1]["recall"], 4)
    else:
        out["weights_tried"] = markdown_table(
            ["weight", "val NDCG@20"],
            [[f"{t['weight']:g}", f"{t['val_ndcg@20']:.4f}"] for t in meta["tried"]],
        )
    return out


def run(params: TrainParams, pipes: PipesContext) -> JobResult:
    data = load_training_data(params.data.splits_uri, params.data.node_maps_uri)
    pipes.log.info(f"training {params.model} on {data.summary()}")
    fitting = fitting_for(params, data, pipes)
    trained = training.train(params.model, data, params.config, fitting)
    trained_on = data.trained_on(with_val=params.spec.kind == "ranker")
    meta = training.model_meta(params.model, trained, data, pipes.run_id) | {
        "tuned_from": params.tuned_from,
        "trained_on": trained_on.summary(params.output.trained_on_uri),
        "seeds": seed_runs(params, trained, data, fitting, pipes),
    }
    if params.inputs is not None:
        meta |= {"features": params.inputs.features}
    if params.sources is not None:  # what a serving version rebuilds the ranker's retrievers from
        meta |= {"inputs": params.sources.to_dict()}
    if trained.checkpoint is not None:
        write_bytes(params.output.checkpoint_uri, trained.checkpoint)
        meta |= {"checkpoint_uri": params.output.checkpoint_uri}
    if trained.model.split_scores is not None:
        meta |= {"scores_uri": params.output.scores_uri}
    save_model(params, trained)
    save(params.output.trained_on_uri, trained_on.keys)
    save(params.output.meta_uri, meta)
    history = meta["history"]
    metadata = {
        "uri": params.output.meta_uri.rsplit("/", 1)[0],
        "kind": meta["kind"],
        "dim": meta["dim"],
        "neighbours": meta["neighbours"],
        "train_seconds": meta["train_seconds"],
        "epochs_run": meta["epochs_run"],
        "seconds_per_epoch": meta["seconds_per_epoch"],
        "best_epoch": meta["best_epoch"],
        "best_val_ndcg20": meta["best_val_ndcg@20"],
        "config": json_value(trained.config) if trained.config else None,
        "learning_curve": training.learning_curve(history) if history else None,
        "order_chosen": Order(**meta["order"]).label(),
        "settings_chosen": json_value(meta["chosen"]) if meta.get("chosen") else None,
        "items_modelled": meta.get("items_modelled"),
        "note": meta.get("note"),
        "tuned_from": params.tuned_from or None,
        "order_tried": order_table(meta["order_tried"]) if len(meta["order_tried"]) > 1 else None,
        "order_val_ndcg20": json_value(meta["order_val_ndcg@20"]) if meta["order_val_ndcg@20"] else None,
        "trained_on_interactions": trained_on.interactions,
        "seeds": seeds_table(meta["seeds"]) if meta["seeds"] else None,
        **ranker_metadata(params, meta),
    }
    return JobResult(metadata, {"vectors": training.vectors_outcome(trained, data)})


if __name__ == "__main__":
    run_job(run, TRAIN_PARAMS)
