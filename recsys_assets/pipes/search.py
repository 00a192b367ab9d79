"""Job: an Optuna search over one model's settings on validation NDCG@20 -> the study's journal
(``search/<model>/journal.log``, resumed by the next search) and its best settings
(``search/<model>/best.json``), which the model's asset then trains with.

It runs where the model trains (the GAT's on the ``l4`` profile: one Vertex AI job per search
in ``gcp``, bounded by the GPU pool), trials one after another in this process, so pruning
reads each trial's validation curve as it trains.
"""

from __future__ import annotations

import tempfile
from pathlib import Path
from typing import Any

from dagster_pipes import PipesContext

from recsys_assets.core.io.codecs import save
from recsys_assets.core.io.storage import exists, read_bytes, write_bytes
from recsys_assets.core.markdown import Markdown, image
from recsys_assets.core.models.search import current_params, history_plot, model_fit, run_search
from recsys_assets.core.models.training_data import load_training_data
from recsys_assets.pipes.contracts import SearchParams
from recsys_assets.pipes.pipes_io import JobResult, json_value, run_job


def run(params: SearchParams, pipes: PipesContext) -> JobResult:
    data = load_training_data(params.data.splits_uri, params.data.node_maps_uri)
    content = params.inputs.load(data) if params.inputs is not None else None
    ranker = (
        params.sources.load(data, params.data.splits_uri, params.data.node_maps_uri)
        if params.sources is not None
        else None
    )
    fit = model_fit(
        params.model, params.base, params.order, data, content, params.search.trial_epochs, ranker
    )
    with tempfile.TemporaryDirectory(prefix="search-") as scratch:
        journal = Path(scratch) / "journal.log"
        if exists(params.journal_uri):
            journal.write_bytes(read_bytes(params.journal_uri))
            pipes.log.info(f"resuming the study in {params.journal_uri}")

        def keep_journal() -> None:
            write_bytes(params.journal_uri, journal.read_bytes())

        first = current_params(params.model, params.base)
        result = run_search(params.model, fit, params.search, journal, keep_journal, pipes.log.info, first)
    best: dict[str, Any] = {
        "model": params.model,
        "params": result.best_params,
        "val_ndcg@20": round(result.best_value, 5),
        "trials": len(result.trials),
        "journal_uri": params.journal_uri,
        # Every trial fitted on the split's train rows and was scored on its validation rows.
        "trained_on": data.trained_on().summary(),
    }
    save(params.best_uri, best)
    completed = [t for t in result.trials if t["state"] == "complete"]
    metadata = {
        "uri": params.best_uri,
        "best_val_ndcg20": round(result.best_value, 5),
        "best_params": json_value(result.best_params),
        "trials": len(result.trials),
        "new_trials": result.new_trials,
        "pruned": sum(t["state"] == "pruned" for t in result.trials),
        "seconds": round(result.seconds, 1),
        "seconds_per_new_trial": round(result.seconds / max(result.new_trials, 1), 2),
        "completed_trials_mean_seconds": round(
            sum(t["seconds"] for t in completed) / max(len(completed), 1), 2
        ),
        "trials_table": Markdown(result.table()),
        "optimisation_history": image("optimisation history", history_plot(result)),
    }
    return JobResult(metadata)


if __name__ == "__main__":
    run_job(run, SearchParams)
