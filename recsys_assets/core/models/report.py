"""The evaluation report (``eval/eval.json``): every model's metrics side by side, the data and
code versions they were computed on, and the promotion verdict against the blessed report."""

from __future__ import annotations

import platform
from datetime import UTC, datetime
from importlib.metadata import version
from typing import Any

from recsys_assets.core.markdown import markdown_table
from recsys_assets.core.models.evaluation import TERTILES, Verdict, promotion_verdict
from recsys_assets.core.models.recency import ORDER_FREE, Order
from recsys_assets.core.models.training_data import TrainingData
from recsys_assets.core.outcomes import CheckOutcome
from recsys_assets.core.plots import png, pyplot

PACKAGES = ("torch", "torch-geometric", "numpy", "scipy", "faiss-cpu", "dagster-pipes")
#: The metrics kept of a model evaluated with order switched off.
HEADLINE = ("ndcg@20", "recall@20", "ndcg@10", "recall@10")
#: Model kinds the serving export can publish (``core/serving/export.py``).
SERVABLE_KINDS = ("embedding", "item_item")
#: What the report keeps of each model's training (``models/<name>/meta.json``).
TRAIN_FIELDS = ("train_seconds", "seconds_per_epoch", "epochs_run", "best_epoch", "best_val_ndcg@20",
                "order_val_ndcg@20", "items_modelled", "note", "tuned_from")  # fmt: skip


def package_versions() -> dict[str, str]:
    return {name: version(name) for name in PACKAGES} | {"python": platform.python_version()}


def model_entry(metrics: dict[str, Any], meta: dict[str, Any], files: dict[str, str]) -> dict[str, Any]:
    """One model's entry: its kind, its validation and test metrics with the use of order chosen
    (and without order, when one was chosen), its training summary and config, and the files
    it was evaluated from."""
    return {
        "kind": meta.get("kind", "embedding"),
        "order": meta.get("order"),
        "order_settings_chosen": meta.get("chosen"),
        **metrics,
        "train": {key: meta.get(key) for key in TRAIN_FIELDS},
        "config": meta.get("config", {}),
        "files": files,
        "run_id": meta.get("run_id"),
    }


def choose_candidate(models: dict[str, dict[str, Any]], pinned: str = "") -> tuple[str, str]:
    """The model to serve and gate, and why: the pinned one, or the servable model with the
    best validation NDCG@20 (ties: the first evaluated), with its margin over the runner-up."""
    servable = {name: m for name, m in models.items() if m.get("kind", "embedding") in SERVABLE_KINDS}
    if pinned:
        if pinned not in models:
            raise ValueError(
                f"pinned candidate {pinned!r} is not among the evaluated models {sorted(models)}"
            )
        if pinned not in servable:
            raise ValueError(
                f"pinned candidate {pinned!r} is a {models[pinned]['kind']} model, which cannot serve"
            )
        return (
            pinned,
            f"{pinned}: pinned by the models.candidate setting (val NDCG@20 {_val(models[pinned]):.4f})",
        )
    if not servable:
        raise ValueError(f"no servable model among {sorted(models)}")
    ranked = sorted(servable, key=lambda name: -_val(servable[name]))
    best = ranked[0]
    reason = f"{best}: best validation NDCG@20 among servable models ({_val(servable[best]):.4f})"
    if len(ranked) > 1:
        second = ranked[1]
        margin = _val(servable[best]) / max(_val(servable[second]), 1e-12) - 1
        reason += f", {margin:+.1%} over {second} ({_val(servable[second]):.4f})"
    return best, reason


def _val(model: dict[str, Any]) -> float:
    return float(model["val"]["ndcg@20"])


def build_report(
    models: dict[str, dict[str, Any]],
    data: TrainingData,
    candidate: str,
    reason: str,
    versions: dict[str, Any],
    run_id: str,
    blessed: dict[str, Any] | None,
    tolerance: float,
    skipped: dict[str, str] | None = None,
) -> tuple[dict[str, Any], Verdict]:
    """The report, and the candidate's promotion verdict against ``blessed`` (None: none yet)."""
    if candidate not in models:
        raise ValueError(f"candidate {candidate!r} is not among the evaluated models {sorted(models)}")
    blessed_test = blessed["models"][blessed["candidate"]]["test"] if blessed else None
    verdict = promotion_verdict(models[candidate]["test"], blessed_test, tolerance)
    report = {
        "created_at": datetime.now(UTC).isoformat(timespec="seconds"),
        "candidate": candidate,
        "candidate_reason": reason,
        "ks": sorted({int(k.split("@")[1]) for k in models[candidate]["test"] if k.startswith("ndcg@")}),
        "data": data.summary(),
        "versions": {**versions, "packages": package_versions()},
        "models": models,
        "skipped": skipped or {},
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


def summary_table(models: dict[str, Any], candidate: str) -> str:
    """The table that fits the UI's metadata panel (four columns, under the 1,000 characters the
    UI shows inline): each model's validation NDCG@20 (what chooses the candidate), test NDCG@20
    and Recall@20 (only reported), the model that serves in bold. Coverage, training time and
    the rest are in the full table (``eval/eval_table.md``)."""
    header = ["model", "val NDCG@20 (chooses)", "test NDCG@20", "test Recall@20"]
    rows = [
        [f"**{name} (serves)**" if name == candidate else name, f"{m['val']['ndcg@20']:.4f}",
         f"{m['test']['ndcg@20']:.4f}", f"{m['test']['recall@20']:.4f}"]
        for name, m in models.items()
    ]  # fmt: skip
    return markdown_table(header, rows)


def learning_curves_plot(histories: dict[str, list[dict[str, float]]]) -> bytes | None:
    """Validation NDCG@20 by epoch of every model trained epoch by epoch (PNG); None when none was."""
    curves = {name: h for name, h in histories.items() if h}
    if not curves:
        return None
    plt = pyplot()
    figure, axis = plt.subplots(figsize=(6, 3))
    for name, history in curves.items():
        axis.plot(
            [h["epoch"] for h in history], [h["val_ndcg@20"] for h in history], label=name, linewidth=1.2
        )
    axis.set_xlabel("epoch", fontsize=8)
    axis.set_ylabel("validation NDCG@20", fontsize=8)
    axis.set_title("learning curves", fontsize=9)
    axis.tick_params(labelsize=7)
    axis.legend(fontsize=7)
    return png(figure)


def report_table(models: dict[str, Any], candidate: str = "") -> str:
    """Validation and test NDCG@20 with the chosen use of order and without it, test metrics
    at K = 10 and 20 and the slices at 20, one row per model (the candidate marked)."""
    header = ["model", "order (chosen on val)", "val NDCG@20", "test NDCG@20", "test NDCG@20 order-free",
              "test Recall@10", "test NDCG@10", "test Recall@20", "test Hit@20", "test MRR@20",
              "test coverage@20", "cold-start NDCG@20", *(f"{t} NDCG@20" for t in TERTILES),
              "train s"]  # fmt: skip
    rows = []
    for name, report in models.items():
        test, val = report["test"], report["val"]
        slices = test["slices"]
        free = report.get("order_free")
        order = Order(**report["order"]) if report.get("order") else ORDER_FREE
        rows.append(
            [
                f"**{name}** (served)" if name == candidate else name,
                order.label(),
                f"{val['ndcg@20']:.4f}",
                f"{test['ndcg@20']:.4f}",
                f"{free['test']['ndcg@20']:.4f}" if free else "same",
                *(f"{test[m]:.4f}" for m in ("recall@10", "ndcg@10", "recall@20", "hit@20", "mrr@20")),
                f"{test['coverage@20']:.3f}",
                *(
                    f"{slices[s]['ndcg@20']:.4f}" if "ndcg@20" in slices[s] else "-"
                    for s in ("cold_start", *TERTILES)
                ),
                f"{report['train']['train_seconds']:.1f}",
            ]
        )
    return markdown_table(header, rows)
