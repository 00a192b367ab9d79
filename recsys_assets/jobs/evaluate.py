"""Job: evaluate every model the same way -> ``eval/eval.json``; promote the validation-best
servable model (or the pinned one) as the candidate, and gate it against the blessed report."""

from __future__ import annotations

from functools import partial
from typing import Any

from dagster_pipes import PipesContext

from recsys_assets.core.catalogue.display import catalogue_cards
from recsys_assets.core.graphs.node_maps import NodeMaps
from recsys_assets.core.io.codecs import read_json, save
from recsys_assets.core.io.storage import exists, write_bytes
from recsys_assets.core.markdown import Markdown, image
from recsys_assets.core.models.evaluation import KS, evaluate
from recsys_assets.core.models.examples import EXAMPLE_USERS, example_users, examples_table
from recsys_assets.core.models.recency import Order
from recsys_assets.core.models.report import (
    HEADLINE,
    build_report,
    choose_candidate,
    gate_outcome,
    learning_curves_plot,
    model_entry,
    report_table,
    summary_table,
)
from recsys_assets.core.models.scoring import load_scorable
from recsys_assets.core.models.training_data import TrainingData, load_training_data
from recsys_assets.jobs.contracts import EvaluateParams, ModelFiles
from recsys_assets.jobs.pipes_io import JobResult, run_job


def log_line(pipes: PipesContext, model: str, text: str) -> None:
    pipes.log.info(f"{model} {text}")


def evaluate_model(
    name: str, files: ModelFiles, meta: dict[str, Any], data: TrainingData, pipes: PipesContext
) -> dict[str, Any]:
    """The model with its chosen use of order; and, when that uses order, with order off."""
    model = load_scorable(files.users_uri, files.items_uri, files.neighbours_uri, meta)
    model.check(data.n_users, data.n_items, files.meta_uri.rsplit("/", 1)[0])
    chosen, free = Order(**meta["order"]), Order(**meta["order_free"])
    pipes.log.info(
        f"evaluating {name} ({model.kind}, {chosen.label()}; full ranking of {data.n_items:,} items)"
    )
    metrics = evaluate(
        model.scorer(data.train, data.n_items, chosen), data, KS, partial(log_line, pipes, name)
    )
    if chosen != free:
        off = evaluate(model.scorer(data.train, data.n_items, free), data, KS, partial(log_line, pipes, name))
        metrics["order_free"] = {
            "order": free.to_dict(),
            **{split: {m: off[split][m] for m in HEADLINE} for split in ("val", "test")},
        }
    return metrics


def candidate_examples(params: EvaluateParams, name: str, data: TrainingData) -> Markdown:
    """The candidate's top items for a few test users, by display name (``core/models/examples.py``)."""
    files = params.models[name]
    meta = read_json(files.meta_uri)
    model = load_scorable(files.users_uri, files.items_uri, files.neighbours_uri, meta)
    maps = NodeMaps.from_json(read_json(params.data.node_maps_uri))
    names = catalogue_cards(params.items_uri, maps.items).titles
    score = model.scorer(data.train, data.n_items, Order(**meta["order"]))
    return examples_table(score, data, example_users(data), maps.users, names)


def run(params: EvaluateParams, pipes: PipesContext) -> JobResult:
    data = load_training_data(params.data.splits_uri, params.data.node_maps_uri)
    models: dict[str, Any] = {}
    skipped: dict[str, str] = {}
    histories: dict[str, list[dict[str, float]]] = {}
    for name, files in params.models.items():
        meta = read_json(files.meta_uri)
        histories[name] = meta.get("history", [])
        if meta.get("skipped"):
            skipped[name] = meta["skipped"]
            pipes.log.warning(f"{name} was skipped: {meta['skipped']}")
            continue
        models[name] = model_entry(evaluate_model(name, files, meta, data, pipes), meta, files.to_dict())
    candidate, reason = choose_candidate(models, params.candidate)
    pipes.log.info(f"candidate: {reason}")
    blessed = read_json(params.blessed_uri) if exists(params.blessed_uri) else None
    report, verdict = build_report(
        models, data, candidate, reason, params.versions, pipes.run_id, blessed, params.tolerance, skipped
    )
    save(params.output_uri, report)
    write_bytes(params.table_uri, (report_table(models, candidate) + "\n").encode())
    curves = learning_curves_plot({name: histories[name] for name in models})
    gated = "passed" if verdict.passed else "FAILED, nothing downstream runs"
    metadata = {
        "uri": params.output_uri,
        "served": f"{candidate}, chosen on validation: {reason}. "
        f"Promotion gate {gated}: {verdict.description}",
        "candidate": candidate,
        "candidate_reason": reason,
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
