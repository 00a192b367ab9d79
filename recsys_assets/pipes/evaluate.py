"""Job: evaluate every model the same way -> ``eval/eval.json``, with every metric's interval
and every model's paired difference from the served one; choose the model to serve on
validation by significant gains only (``core/models/promotion.py``), and gate it against the
blessed report."""

from __future__ import annotations

import time
from functools import partial
from typing import Any

from dagster_pipes import PipesContext

from recsys_assets.core.catalogue.display import catalogue_cards
from recsys_assets.core.graphs.node_maps import NodeMaps
from recsys_assets.core.io.codecs import read_json, save
from recsys_assets.core.io.storage import exists, write_bytes
from recsys_assets.core.markdown import Markdown, image
from recsys_assets.core.models import registry
from recsys_assets.core.models.evaluation import KS, SplitScores, evaluate, evaluate_per_user
from recsys_assets.core.models.examples import EXAMPLE_USERS, example_users, examples_table
from recsys_assets.core.models.promotion import decide
from recsys_assets.core.models.recency import Order
from recsys_assets.core.models.report import (
    HEADLINE,
    build_report,
    gate_outcome,
    learning_curves_plot,
    model_entry,
    pairwise,
    report_table,
    summary_table,
    with_uncertainty,
)
from recsys_assets.core.models.scoring import load_scorable
from recsys_assets.core.models.training_data import TrainingData, load_training_data
from recsys_assets.core.models.uncertainty import SPLIT_SEEDS, Resampled, split_columns
from recsys_assets.pipes.contracts import EvaluateParams, ModelFiles
from recsys_assets.pipes.pipes_io import JobResult, run_job
from recsys_assets.settings.models import EvaluationConfig


def log_line(pipes: PipesContext, model: str, text: str) -> None:
    pipes.log.info(f"{model} {text}")


def evaluate_model(
    name: str,
    files: ModelFiles,
    meta: dict[str, Any],
    data: TrainingData,
    config: EvaluationConfig,
    pipes: PipesContext,
) -> tuple[dict[str, Any], dict[str, SplitScores]]:
    """The model with its chosen use of order (and user by user); and, when that uses order,
    with order off."""
    model = load_scorable(files.users_uri, files.items_uri, files.neighbours_uri, meta)
    model.check(data.n_users, data.n_items, files.meta_uri.rsplit("/", 1)[0])
    chosen, free = Order(**meta["order"]), Order(**meta["order_free"])
    if model.kind == "ranker":
        pipes.log.info(f"evaluating {name} (ranker: its candidates' scores, validation out of fold)")
        return evaluate_per_user(
            model.scoring(data.n_items), data, KS, partial(log_line, pipes, name), config.test_history,
            model.split_scorers(),
        )  # fmt: skip
    pipes.log.info(
        f"evaluating {name} ({model.kind}, {chosen.label()}; full ranking of {data.n_items:,} items)"
    )
    progress = partial(log_line, pipes, name)
    metrics, scores = evaluate_per_user(
        model.scoring(data.n_items, chosen), data, KS, progress, config.test_history
    )
    if chosen != free:
        off = evaluate(model.scoring(data.n_items, free), data, KS, progress, config.test_history)
        metrics["order_free"] = {
            "order": free.to_dict(),
            **{split: {m: off[split][m] for m in HEADLINE} for split in ("val", "test")},
        }
    return metrics, scores


def resample(
    scores: dict[str, dict[str, SplitScores]], config: EvaluationConfig, pipes: PipesContext
) -> dict[str, Resampled]:
    """Each split's per-user metrics of every model, resampled together (paired)."""
    started = time.perf_counter()
    out = {
        split: Resampled.of(
            split_columns({name: by_split[split] for name, by_split in scores.items()}),
            config.resamples,
            config.seed + offset,
            config.confidence,
        )
        for split, offset in SPLIT_SEEDS.items()
    }
    pipes.log.info(
        f"{config.resamples:,} bootstrap resamples of the users, shared by {len(scores)} models: "
        f"{time.perf_counter() - started:.1f} s"
    )
    return out


def candidate_examples(params: EvaluateParams, name: str, data: TrainingData) -> Markdown:
    """The candidate's top items for a few test users, by display name (``core/models/examples.py``)."""
    files = params.models[name]
    meta = read_json(files.meta_uri)
    model = load_scorable(files.users_uri, files.items_uri, files.neighbours_uri, meta)
    maps = NodeMaps.from_json(read_json(params.data.node_maps_uri))
    names = catalogue_cards(params.items_uri, maps.items).titles
    split_scores = model.split_scorers()
    score = (
        split_scores["test"]
        if split_scores
        else model.scorer(data.history("test"), data.n_items, Order(**meta["order"]))
    )
    return examples_table(score, data, example_users(data), maps.users, names)


def run(params: EvaluateParams, pipes: PipesContext) -> JobResult:
    config = params.evaluation
    data = load_training_data(params.data.splits_uri, params.data.node_maps_uri)
    models: dict[str, Any] = {}
    scores: dict[str, dict[str, SplitScores]] = {}
    skipped: dict[str, str] = {}
    histories: dict[str, list[dict[str, float]]] = {}
    for name, files in params.models.items():
        meta = read_json(files.meta_uri)
        histories[name] = meta.get("history", [])
        if meta.get("skipped"):
            skipped[name] = meta["skipped"]
            pipes.log.warning(f"{name} was skipped: {meta['skipped']}")
            continue
        metrics, scores[name] = evaluate_model(name, files, meta, data, config, pipes)
        models[name] = model_entry(metrics, meta, files.to_dict())
    resampled = resample(scores, config, pipes)
    blessed = read_json(params.blessed_uri) if exists(params.blessed_uri) else None
    decision = decide(
        models,
        resampled["val"],
        pinned=params.candidate,
        blessed_model=blessed["candidate"] if blessed else None,
        margin=config.margin,
        cost_order=config.serving_cost or registry.SERVING_COST,
    )
    candidate = decision.served
    pipes.log.info(f"serves: {decision.reason}")
    with_uncertainty(models, resampled, candidate)
    uncertainty = {
        "intervals": f"percentile bootstrap over users, {config.resamples} resamples shared by every model "
        "(paired), per split",
        "test": "two-sided paired t-test on per-user differences, Holm-corrected across the models compared "
        "with the served one",
        **config.to_dict(),
    }
    report, verdict = build_report(
        models, data, decision, params.versions, pipes.run_id, blessed, params.tolerance,
        skipped, uncertainty, pairwise(models, resampled),
    )  # fmt: skip
    save(params.output_uri, report)
    write_bytes(params.table_uri, (report_table(models, candidate) + "\n").encode())
    curves = learning_curves_plot({name: histories[name] for name in models})
    gated = "passed" if verdict.passed else "FAILED, nothing downstream runs"
    metadata = {
        "uri": params.output_uri,
        "served": f"{candidate}: {decision.reason}. Promotion gate {gated}: {verdict.description}",
        "candidate": candidate,
        "candidate_reason": decision.reason,
        "validation_best": decision.validation_best,
        **{f"{name}_test_ndcg_at_20": round(r["test"]["ndcg@20"], 5) for name, r in models.items()},
        "report": summary_table(models, candidate),
        "full_table_uri": params.table_uri,
        "learning_curves": image("learning curves", curves) if curves else None,
        "examples": Markdown(
            f"{candidate}'s top items for {EXAMPLE_USERS} test users:\n\n"
            + candidate_examples(params, candidate, data)
        ),
        **({"skipped": "; ".join(f"{k}: {v}" for k, v in skipped.items())} if skipped else {}),
    }
    gate = gate_outcome(verdict, candidate, params.tolerance, params.blessed_uri)
    return JobResult(metadata, {"promotion_gate": gate})


if __name__ == "__main__":
    run_job(run, EvaluateParams)
