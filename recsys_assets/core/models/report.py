"""The evaluation report (``eval/eval.json``): every model's metrics side by side, the data and
code versions they were computed on, and the promotion verdict against the blessed report."""

from __future__ import annotations

import platform
from datetime import UTC, datetime
from importlib.metadata import version
from typing import Any

import numpy as np

from recsys_assets.core.markdown import markdown_table
from recsys_assets.core.models import registry
from recsys_assets.core.models.evaluation import TERTILES
from recsys_assets.core.models.promotion import Decision, Verdict, promotion_verdict
from recsys_assets.core.models.recency import ORDER_FREE, Order
from recsys_assets.core.models.training_data import TrainingData
from recsys_assets.core.models.uncertainty import INTERVAL_METRICS, Resampled, column, compare_pairs
from recsys_assets.core.outcomes import CheckOutcome
from recsys_assets.core.plots import png, pyplot

PACKAGES = ("torch", "torch-geometric", "numpy", "scipy", "faiss-cpu", "dagster-pipes")
#: The metrics kept of a model evaluated with order switched off.
HEADLINE = ("ndcg@20", "recall@20", "ndcg@10", "recall@10")
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
        # Whether the serving export can publish it (the registry's word; promotion reads it).
        "servable": registry.BY_NAME[meta["model"]].servable
        if meta.get("model") in registry.BY_NAME
        else meta.get("kind", "embedding") in ("embedding", "item_item"),
        "order": meta.get("order"),
        "order_settings_chosen": meta.get("chosen"),
        **metrics,
        "train": {key: meta.get(key) for key in TRAIN_FIELDS},
        "seeds": seeds_summary(meta.get("seeds", [])),
        "trained_on": meta.get("trained_on"),
        "config": meta.get("config", {}),
        "files": files,
        "run_id": meta.get("run_id"),
    }


def with_uncertainty(
    models: dict[str, dict[str, Any]], resampled: dict[str, Resampled], served: str
) -> dict[str, dict[str, Any]]:
    """``models`` with, on each split, the interval of each metric in ``INTERVAL_METRICS`` and of
    each slice (``ci``), and every model's paired comparison with the served one (``vs_served``:
    relative and absolute difference with their intervals, p-value, Holm-corrected across the
    models compared, ``significant``)."""
    others = [name for name in models if name != served]
    for split, draws in resampled.items():
        for name, entry in models.items():
            part = entry[split]
            part["ci"] = {m: draws.interval(column(name, m)) for m in INTERVAL_METRICS}
            for slice_name, values in part["slices"].items():
                if column(name, f"slice:{slice_name}") in draws.columns:
                    values["ci"] = draws.interval(column(name, f"slice:{slice_name}"))
        for metric in INTERVAL_METRICS:
            found = compare_pairs(draws, [(column(n, metric), column(served, metric)) for n in others])
            for name, comparison in zip(others, found, strict=True):
                models[name].setdefault("vs_served", {}).setdefault(split, {})[metric] = comparison
    return models


def pairwise(
    models: dict[str, Any], resampled: dict[str, Resampled], metric: str = "ndcg@20"
) -> dict[str, Any]:
    """Every pair of models compared on ``metric``, each split one family (Holm across all
    pairs): ``"<a> vs <b>"`` -> the paired comparison of a against b (a evaluated before b)."""
    names = list(models)
    pairs = [(a, b) for i, a in enumerate(names) for b in names[i + 1 :]]
    return {
        split: {
            f"{a} vs {b}": comparison
            for (a, b), comparison in zip(
                pairs,
                compare_pairs(draws, [(column(a, metric), column(b, metric)) for a, b in pairs]),
                strict=True,
            )
        }
        for split, draws in resampled.items()
    }


def across_seeds(model: dict[str, Any]) -> str | None:
    """A model's test NDCG@20 across seeds, "0.1907 ± 0.0039 (3 seeds)"; None for one seed."""
    seeds = model.get("seeds")
    if not seeds:
        return None
    spread = seeds["test_ndcg@20"]
    return f"{spread['mean']:.4f} ± {spread['sd']:.4f} ({len(seeds['seeds'])} seeds)"


def seeds_summary(runs: list[dict[str, float]]) -> dict[str, Any] | None:
    """Mean and standard deviation across seeds of each metric the training job recorded per
    seed (``models/<name>/meta.json``'s ``seeds``); None for a model trained once."""
    if len(runs) < 2:
        return None
    summary: dict[str, Any] = {"seeds": [int(r["seed"]) for r in runs]}
    for metric in (k for k in runs[0] if k != "seed"):
        values = [r[metric] for r in runs]
        summary[metric] = {"mean": float(np.mean(values)), "sd": float(np.std(values, ddof=1))}
    return summary


def build_report(
    models: dict[str, dict[str, Any]],
    data: TrainingData,
    decision: Decision,
    versions: dict[str, Any],
    run_id: str,
    blessed: dict[str, Any] | None,
    tolerance: float,
    skipped: dict[str, str] | None = None,
    uncertainty: dict[str, Any] | None = None,
    pairs: dict[str, Any] | None = None,
) -> tuple[dict[str, Any], Verdict]:
    """The report, and the served model's promotion verdict against ``blessed`` (None: none yet)."""
    candidate = decision.served
    if candidate not in models:
        raise ValueError(f"candidate {candidate!r} is not among the evaluated models {sorted(models)}")
    blessed_test = blessed["models"][blessed["candidate"]]["test"] if blessed else None
    test = models[candidate]["test"]
    verdict = promotion_verdict(test, blessed_test, tolerance, test.get("ci"))
    report = {
        "created_at": datetime.now(UTC).isoformat(timespec="seconds"),
        "candidate": candidate,
        "candidate_reason": decision.reason,
        "decision": decision.to_dict(),
        "ks": sorted({int(k.split("@")[1]) for k in test if k.startswith("ndcg@")}),
        "data": data.summary(),
        "uncertainty": uncertainty or {},
        "versions": {**versions, "packages": package_versions()},
        "models": models,
        # Every pair of models on test and validation NDCG@20 (Holm across the pairs).
        "pairwise_ndcg@20": pairs or {},
        "skipped": skipped or {},
        "run_id": run_id,
        "promotion": {
            "passed": verdict.passed,
            "description": verdict.description,
            "blessed_created_at": blessed.get("created_at") if blessed else None,
            "blessed_model": blessed["candidate"] if blessed else None,
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


def _ci(interval: list[float] | None) -> str:
    return f" ({interval[0]:.4f}-{interval[1]:.4f})" if interval else ""


def with_ci(entry: dict[str, Any], metric: str = "ndcg@20") -> str:
    """A split's ``metric`` with its interval when it has one: "0.1340 (0.1234-0.1456)"."""
    return f"{entry[metric]:.4f}{_ci(entry.get('ci', {}).get(metric))}"


def versus(comparison: dict[str, Any] | None) -> str:
    """A comparison with the served model in a cell: the relative difference, its interval,
    and "n.s." when it is not significant."""
    if comparison is None:
        return "-"
    rel, ci = comparison["relative"], comparison.get("relative_ci")
    if not np.isfinite(rel):
        text = f"{comparison['difference']:+.4f}"
    else:
        text = f"{rel:+.1%}" + (f" ({ci[0]:+.1%}, {ci[1]:+.1%})" if ci else "")
    return text if comparison.get("significant") else f"{text} n.s."


def summary_table(models: dict[str, Any], candidate: str) -> str:
    """The table that fits the UI's metadata panel (under the 1,000 characters the UI shows
    inline): each model's validation NDCG@20 (what chooses) and test NDCG@20 with its 95%
    interval, and each one's paired difference from the served model on both ("n.s.": not
    significant), the model that serves in bold. Recall, slices, training time and the rest are
    in the full table (``eval/eval_table.md``)."""
    header = ["model", "val NDCG@20", "val vs served", "test NDCG@20 (CI)", "test vs served"]
    rows = [
        [f"**{name} (serves)**" if name == candidate else name, f"{m['val']['ndcg@20']:.4f}",
         versus(m.get("vs_served", {}).get("val", {}).get("ndcg@20")),
         with_ci(m["test"]),
         versus(m.get("vs_served", {}).get("test", {}).get("ndcg@20"))]
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
    """Validation and test NDCG@20 with their intervals and differences from the served model,
    with the chosen use of order and without it, test metrics at K = 10 and 20, the slices at
    20, and the spread across seeds, one row per model (the served one marked)."""
    header = ["model", "order (chosen on val)", "val NDCG@20 (CI)", "val vs served", "test NDCG@20 (CI)",
              "test vs served (p, Holm)", "test NDCG@20 order-free", "test Recall@20 (CI)",
              "test Recall@10", "test NDCG@10", "test Hit@20", "test MRR@20", "test coverage@20",
              "cold-start NDCG@20", *(f"{t} NDCG@20 (CI)" for t in TERTILES), "test NDCG@20 across seeds",
              "train s"]  # fmt: skip
    rows = []
    for name, report in models.items():
        test, val = report["test"], report["val"]
        slices = test["slices"]
        free = report.get("order_free")
        order = Order(**report["order"]) if report.get("order") else ORDER_FREE
        vs = report.get("vs_served", {})
        test_vs = vs.get("test", {}).get("ndcg@20")
        rows.append(
            [
                f"**{name}** (served)" if name == candidate else name,
                order.label(),
                with_ci(val),
                versus(vs.get("val", {}).get("ndcg@20")),
                with_ci(test),
                versus(test_vs) + (f" (p {test_vs['p_holm']:.3g})" if test_vs else ""),
                f"{free['test']['ndcg@20']:.4f}" if free else "same",
                with_ci(test, "recall@20"),
                *(f"{test[m]:.4f}" for m in ("recall@10", "ndcg@10", "hit@20", "mrr@20")),
                f"{test['coverage@20']:.3f}",
                f"{slices['cold_start']['ndcg@20']:.4f}" if "ndcg@20" in slices["cold_start"] else "-",
                *(
                    f"{slices[s]['ndcg@20']:.4f}{_ci(slices[s].get('ci'))}" if "ndcg@20" in slices[s] else "-"
                    for s in TERTILES
                ),
                across_seeds(report) or "one seed",
                f"{report['train']['train_seconds']:.1f}",
            ]
        )
    return markdown_table(header, rows)
