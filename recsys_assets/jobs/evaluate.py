"""Job: evaluate every model the same way -> ``eval/eval.json``, and the promotion gate."""

from __future__ import annotations

from functools import partial
from typing import Any

from dagster_pipes import PipesContext

from recsys_assets.core.io.codecs import read_json, read_npy, save
from recsys_assets.core.io.storage import exists
from recsys_assets.core.models.evaluation import KS, evaluate
from recsys_assets.core.models.report import build_report, gate_outcome, model_entry, report_table
from recsys_assets.core.models.training_data import load_training_data
from recsys_assets.jobs.contracts import EvaluateParams
from recsys_assets.jobs.pipes_io import JobResult, run_job


def log_line(pipes: PipesContext, model: str, text: str) -> None:
    pipes.log.info(f"{model} {text}")


def run(params: EvaluateParams, pipes: PipesContext) -> JobResult:
    data = load_training_data(params.data.splits_uri, params.data.node_maps_uri)
    models: dict[str, Any] = {}
    for name, files in params.models.items():
        users, items = read_npy(files.users_uri), read_npy(files.items_uri)
        pipes.log.info(
            f"evaluating {name} ({users.shape[0]:,} users x {items.shape[0]:,} items, full ranking)"
        )
        metrics = evaluate(users, items, data, KS, progress=partial(log_line, pipes, name))
        models[name] = model_entry(metrics, read_json(files.meta_uri), files.to_dict())
    blessed = read_json(params.blessed_uri) if exists(params.blessed_uri) else None
    report, verdict = build_report(
        models, data, params.candidate, params.versions, pipes.run_id, blessed, params.tolerance
    )
    save(params.output_uri, report)
    metadata = {
        "uri": params.output_uri,
        "candidate": params.candidate,
        **{f"{name}_test_ndcg_at_20": round(r["test"]["ndcg@20"], 5) for name, r in models.items()},
        "report": report_table(models),
    }
    gate = gate_outcome(verdict, params.candidate, params.tolerance, params.blessed_uri)
    return JobResult(metadata, {"promotion_gate": gate})


if __name__ == "__main__":
    run_job(run, EvaluateParams)
