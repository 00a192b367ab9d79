"""The evaluation report (``eval/eval.json``): every model's metrics side by side, the data and
code versions they were computed on, and the promotion verdict against the blessed report."""

from __future__ import annotations

import platform
from datetime import UTC, datetime
from importlib.metadata import version
from typing import Any

from recsys_assets.core.markdown import markdown_table
from recsys_assets.core.models.evaluation import TERTILES, Verdict, promotion_verdict
from recsys_assets.core.models.training_data import TrainingData
from recsys_assets.core.outcomes import CheckOutcome

PACKAGES = ("torch", "torch-geometric", "numpy", "faiss-cpu", "dagster-pipes")
#: What the report keeps of each model's training (``models/<name>/meta.json``).
TRAIN_FIELDS = ("train_seconds", "seconds_per_epoch", "epochs_run", "best_epoch", "best_val_ndcg@20",
                "recency_readout")  # fmt: skip


def package_versions() -> dict[str, str]:
    return {name: version(name) for name in PACKAGES} | {"python": platform.python_version()}


def model_entry(metrics: dict[str, Any], meta: dict[str, Any], files: dict[str, str]) -> dict[str, Any]:
    """One model's entry: its validation and test metrics, its training summary and config, and
    the files it was evaluated from."""
    return {
        **metrics,
        "train": {key: meta.get(key) for key in TRAIN_FIELDS},
        "config": meta.get("config", {}),
        "files": files,
        "run_id": meta.get("run_id"),
    }


def build_report(
    models: dict[str, dict[str, Any]],
    data: TrainingData,
    candidate: str,
    versions: dict[str, Any],
    run_id: str,
    blessed: dict[str, Any] | None,
    tolerance: float,
) -> tuple[dict[str, Any], Verdict]:
    """The report, and the candidate's promotion verdict against ``blessed`` (None: none yet)."""
    if candidate not in models:
        raise ValueError(f"candidate {candidate!r} is not among the evaluated models {sorted(models)}")
    blessed_test = blessed["models"][blessed["candidate"]]["test"] if blessed else None
    verdict = promotion_verdict(models[candidate]["test"], blessed_test, tolerance)
    report = {
        "created_at": datetime.now(UTC).isoformat(timespec="seconds"),
        "candidate": candidate,
        "ks": sorted({int(k.split("@")[1]) for k in models[candidate]["test"] if k.startswith("ndcg@")}),
        "data": data.summary(),
        "versions": {**versions, "packages": package_versions()},
        "models": models,
        "run_id": run_id,
        "promotion": {
            "passed": verdict.passed,
            "description": verdict.description,
            "blessed_created_at": blessed.get("created_at") if blessed else None,
            "tolerance": tolerance,
        },
    }
    return report, verdict


def gate_outcome(verdict: Verdict, candidate: str, tolerance: float, blessed_uri: str) -> CheckOutcome:
    """The promotion gate as a check: the candidate's gated metrics beside the blessed ones."""
    return CheckOutcome(
        verdict.passed,
        f"candidate {candidate}: {verdict.description}",
        verdict.candidate["ndcg@20"],
        (verdict.blessed or {}).get("ndcg@20", 0.0) * (1 - tolerance),
        metadata={
            **{f"candidate_{m.replace('@', '_at_')}": v for m, v in verdict.candidate.items()},
            **{f"blessed_{m.replace('@', '_at_')}": v for m, v in (verdict.blessed or {}).items()},
            "tolerance": tolerance,
            "blessed_uri": blessed_uri,
        },
    )


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
