"""MovieLens-100k: what a hyper-parameter search costs and what it finds.

    python -m benchmarks.movielens search ease itemknn mf [lightgcn gat]

For each model, a fresh 20-trial Optuna study (TPE, median pruning; ``core/models/search.py``)
on validation NDCG@20, then the model trained with the best settings and with the defaults,
each with its use of order chosen on validation, both scored once on test.
"""

from __future__ import annotations

import json
import os
import tempfile
import time
from pathlib import Path
from typing import Any

from benchmarks.movielens import gat_inputs, ml100k
from benchmarks.results import machine, now, write_section
from recsys_assets.core.markdown import markdown_table
from recsys_assets.core.models import training
from recsys_assets.core.models.evaluation import evaluate
from recsys_assets.core.models.search import current_params, model_fit, run_search
from recsys_assets.core.models.training_data import TrainingData
from recsys_assets.settings.base import Section
from recsys_assets.settings.models import ModelSettings, OrderConfig, SearchConfig

#: Trials per model, and a time budget (seconds; 0: none) after which no new trial starts.
TRIALS = int(os.environ.get("BENCH_SEARCH_TRIALS", "20"))
TIMEOUT_S = float(os.environ.get("BENCH_SEARCH_TIMEOUT_S", "0"))
ORDER = OrderConfig(val_users=0)


def _trained(model: str, config: Section, data: TrainingData, inputs: Any) -> training.Trained:
    return training.train(model, data, config, training.Fitting(order=ORDER, content=inputs))


def _test(trained: training.Trained, data: TrainingData) -> float:
    return evaluate(trained.model.scoring(data.n_items, trained.order), data)["test"]["ndcg@20"]


def search(models: list[str]) -> None:
    split, items, maps, data = ml100k()
    inputs = gat_inputs(split, items, maps, data) if "gat" in models else None
    sections = ModelSettings()
    rows: list[dict[str, Any]] = []
    for model in models:
        base: Section = getattr(sections, model)
        with tempfile.TemporaryDirectory() as scratch:
            config = SearchConfig(trials=TRIALS, timeout_s=TIMEOUT_S)
            fit = model_fit(model, base.to_dict(), ORDER, data, inputs, config.trial_epochs)
            result = run_search(model, fit, config, Path(scratch) / "journal.log",
                                progress=lambda line: print(line, flush=True),
                                first=current_params(model, base.to_dict()))  # fmt: skip
        started = time.perf_counter()
        tuned = _trained(model, base.with_changes(result.best_params), data, inputs)
        default = _trained(model, base, data, inputs)
        done = [t for t in result.trials if t["state"] == "complete"]
        rows.append({
            "model": model, "trials": len(result.trials), "seconds": result.seconds,
            "per_trial": result.seconds / len(result.trials),
            "pruned": sum(t["state"] == "pruned" for t in result.trials), "best_val": result.best_value,
            "params": result.best_params, "tuned_test": _test(tuned, data),
            "default_test": _test(default, data),
            "slowest": max(t["seconds"] for t in done), "retrain_s": time.perf_counter() - started,
        })  # fmt: skip
        print(rows[-1], flush=True)
    lines = [
        "## MovieLens-100k: hyper-parameter search (Optuna)",
        "",
        f"- command: `python -m benchmarks.movielens search {' '.join(models)}`",
        f"- date: {now()}",
        f"- machine: {machine()}",
        f"- {TRIALS} trials per model (time budget: {TIMEOUT_S or 'none'} s), TPE (5 random startup "
        "trials; MF, LightGCN and the GAT start from their current settings), median pruning from the "
        f"second trial after 5 epochs, at most {SearchConfig().trial_epochs} epochs a trial; "
        "objective: validation NDCG@20 (item-item models choose their order inside each trial); then the "
        "best settings and the defaults, each with its order chosen on validation, scored once on test",
        "",
        markdown_table(
            [
                "model",
                "trials",
                "search s",
                "s per trial",
                "slowest trial s",
                "pruned",
                "best val NDCG@20",
                "best settings",
                "test NDCG@20 tuned",
                "test NDCG@20 defaults",
            ],
            [
                [
                    r["model"],
                    r["trials"],
                    f"{r['seconds']:.0f}",
                    f"{r['per_trial']:.1f}",
                    f"{r['slowest']:.1f}",
                    r["pruned"],
                    f"{r['best_val']:.4f}",
                    json.dumps(r["params"], default=lambda v: round(v, 4)),
                    f"{r['tuned_test']:.4f}",
                    f"{r['default_test']:.4f}",
                ]
                for r in rows
            ],
        ),
    ]
    write_section("movielens_search_" + "_".join(models), lines)
    print("\n".join(lines))
