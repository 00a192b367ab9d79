"""Job: evaluate every model the same way -> ``eval/eval.json``, and the promotion gate.

Extras: ``splits_uri``, ``node_maps_uri``, ``models`` (name -> the model's folder with
``users.npy``, ``items.npy``, ``meta.json``), ``candidate`` (the model that would serve),
``output_uri``, ``blessed_uri`` (the blessed report; may not exist yet), ``tolerance``
(relative drop of a gated metric that still passes), ``versions`` (data and code versions
the asset knows), ``check`` (the gate's check name).
"""

from __future__ import annotations

import platform
from datetime import UTC, datetime
from functools import partial
from importlib.metadata import version
from typing import Any

from recsys_assets.core.artifacts import join, read_json, read_npy, to_path, write_json
from recsys_assets.core.evaluation import KS, TERTILES, evaluate, promotion_verdict
from recsys_assets.core.markdown import markdown_table
from recsys_assets.jobs.pipes_io import Check, JobResult, md, run_job
from recsys_assets.jobs.train_model import load_training_data

PACKAGES = ("torch", "torch-geometric", "numpy", "faiss-cpu", "dagster-pipes")


def package_versions() -> dict[str, str]:
    return {name: version(name) for name in PACKAGES} | {"python": platform.python_version()}


def log_line(pipes: Any, prefix: str, text: str) -> None:
    pipes.log.info(f"{prefix} {text}")


def report_table(models: dict[str, Any]) -> str:
    """Test metrics at K = 10 and 20 and the slices at 20, one row per model."""
    header = ["model", "val NDCG@20", "Recall@10", "NDCG@10", "Recall@20", "NDCG@20", "Hit@20",
              "MRR@20", "coverage@20", "cold-start NDCG@20", *(f"{t} NDCG@20" for t in TERTILES),
              "train s"]  # fmt: skip
    rows = []
    for name, report in models.items():
        test, val = report["test"], report["val"]
        slices = test["slices"]
        rows.append(
            [
                name,
                f"{val['ndcg@20']:.4f}",
                *(
                    f"{test[m]:.4f}"
                    for m in ("recall@10", "ndcg@10", "recall@20", "ndcg@20", "hit@20", "mrr@20")
                ),
                f"{test['coverage@20']:.3f}",
                *(
                    f"{slices[s]['ndcg@20']:.4f}" if "ndcg@20" in slices[s] else "-"
                    for s in ("cold_start", *TERTILES)
                ),
                f"{report['train']['train_seconds']:.1f}",
            ]
        )
    return markdown_table(header, rows)


def run(params: dict[str, Any], pipes: Any, run_id: str) -> JobResult:
    data = load_training_data(params)
    models: dict[str, Any] = {}
    for name, folder in params["models"].items():
        meta = read_json(join(folder, "meta.json"))
        users, items = read_npy(join(folder, "users.npy")), read_npy(join(folder, "items.npy"))
        pipes.log.info(
            f"evaluating {name} ({users.shape[0]:,} users x {items.shape[0]:,} items, full ranking)"
        )
        metrics = evaluate(users, items, data, KS, progress=partial(log_line, pipes, name))
        models[name] = {
            **metrics,
            "train": {
                key: meta.get(key)
                for key in (
                    "train_seconds",
                    "seconds_per_epoch",
                    "epochs_run",
                    "best_epoch",
                    "best_val_ndcg@20",
                    "recency_readout",
                )
            },
            "config": meta.get("config", {}),
            "uri": folder,
            "run_id": meta.get("run_id"),
        }
    candidate = params["candidate"]
    if candidate not in models:
        raise ValueError(f"candidate {candidate!r} is not among the evaluated models {sorted(models)}")
    report = {
        "created_at": datetime.now(UTC).isoformat(timespec="seconds"),
        "candidate": candidate,
        "ks": list(KS),
        "data": data.summary(),
        "versions": {**params.get("versions", {}), "packages": package_versions()},
        "models": models,
        "run_id": run_id,
    }
    blessed_uri = params["blessed_uri"]
    blessed = read_json(blessed_uri) if to_path(blessed_uri).exists() else None
    blessed_test = blessed["models"][blessed["candidate"]]["test"] if blessed else None
    verdict = promotion_verdict(models[candidate]["test"], blessed_test, float(params["tolerance"]))
    report["promotion"] = {
        "passed": verdict.passed,
        "description": verdict.description,
        "blessed_created_at": blessed.get("created_at") if blessed else None,
        "tolerance": float(params["tolerance"]),
    }
    write_json(params["output_uri"], report)
    table = report_table(models)
    gate = Check(
        params["check"],
        verdict.passed,
        f"candidate {candidate}: {verdict.description}",
        {
            **{f"candidate_{m.replace('@', '_at_')}": v for m, v in verdict.candidate.items()},
            **{f"blessed_{m.replace('@', '_at_')}": v for m, v in (verdict.blessed or {}).items()},
            "tolerance": float(params["tolerance"]),
            "blessed_uri": blessed_uri,
        },
    )
    metadata = {
        "uri": params["output_uri"],
        "candidate": candidate,
        **{f"{name}_test_ndcg_at_20": round(r["test"]["ndcg@20"], 5) for name, r in models.items()},
        "report": md(table),
    }
    return JobResult(metadata, [gate])


if __name__ == "__main__":
    run_job(run)
