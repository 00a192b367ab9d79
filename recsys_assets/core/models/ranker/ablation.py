"""What each part of the two-stage ranker adds: the ranker refit without one group of retrievers or
features at a time, every variant evaluated like the full one and compared with it, paired over
users (bootstrap interval, paired t-test, Holm across the variants).

The question it answers first: does the GNN matter? ``without the GAT`` drops the GAT's
candidates and its score, rank and z features; ``without content`` drops every content
retriever (including the cold items') and the content similarities; ``without EASE and
ItemKNN`` drops the item-item models.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from typing import Any

from recsys_assets.core.markdown import Markdown, markdown_table
from recsys_assets.core.models import training
from recsys_assets.core.models.evaluation import evaluate_per_user
from recsys_assets.core.models.ranker.inputs import RankerInputs
from recsys_assets.core.models.report import with_ci
from recsys_assets.core.models.training_data import TrainingData
from recsys_assets.core.models.uncertainty import SPLIT_SEEDS, Resampled, column, compare_pairs, split_columns
from recsys_assets.settings.models import EvaluationConfig, RankerConfig

FULL = "full"


def default_variants(models: Sequence[str]) -> dict[str, dict[str, Any]]:
    """The full ranker and one variant per group removed (a group absent from ``models`` is skipped)."""
    variants: dict[str, dict[str, Any]] = {FULL: {}}
    for name, dropped in (("without the GAT", {"gat"}), ("without EASE and ItemKNN", {"ease", "itemknn"})):
        if dropped & set(models):
            variants[name] = {"sources": [m for m in models if m not in dropped]}
    variants["without content"] = {"content": []}
    return variants


def ablate(
    data: TrainingData,
    base: RankerConfig,
    inputs: RankerInputs,
    variants: Mapping[str, Mapping[str, Any]],
    evaluation: EvaluationConfig,
    log: Callable[[str], None] | None = None,
) -> tuple[list[dict[str, Any]], dict[str, dict[str, Any]]]:
    """Each variant's metrics and cost, and each variant against the full ranker per split."""
    if FULL not in variants:
        raise ValueError(f"ranker ablation: variants {sorted(variants)} lack {FULL!r}, the reference")
    rows, scores = [], {}
    for name, overrides in variants.items():
        config = base.with_changes(dict(overrides), f"ranker ablation {name}")
        if log:
            log(f"ranker ablation: {name} ({dict(overrides) or 'as configured'})")
        trained = training.train("ranker", data, config, training.Fitting(ranker=inputs, log=None))
        metrics, scores[name] = evaluate_per_user(
            trained.model.scoring(data.n_items), data, split_scores=trained.model.split_scorers(),
            test_history=evaluation.test_history,
        )  # fmt: skip
        recall = {r["source"]: r["recall"] for r in trained.extra["recall"]}
        rows.append(
            {
                "variant": name,
                "changes": dict(overrides),
                "sources": trained.extra["sources"],
                "val": metrics["val"],
                "test": metrics["test"],
                "union_recall": recall["union"],
                "train_seconds": round(float(trained.extra["train_seconds"]), 2),
            }
        )
    comparisons: dict[str, dict[str, Any]] = {}
    others = [name for name in variants if name != FULL]
    for split, offset in SPLIT_SEEDS.items():
        draws = Resampled.of(
            split_columns({name: by_split[split] for name, by_split in scores.items()}),
            evaluation.resamples, evaluation.seed + offset, evaluation.confidence,
        )  # fmt: skip
        for row in rows:
            row[split]["ci"] = {"ndcg@20": draws.interval(column(row["variant"], "ndcg@20"))}
        found = compare_pairs(draws, [(column(name, "ndcg@20"), column(FULL, "ndcg@20")) for name in others])
        comparisons[split] = dict(zip(others, found, strict=True))
    return rows, comparisons


def ablation_table(rows: list[dict[str, Any]], comparisons: dict[str, dict[str, Any]]) -> Markdown:
    """Each variant's validation and test NDCG@20 and its test difference from the full ranker."""

    def versus(name: str) -> str:
        c = comparisons["test"].get(name)
        if c is None:
            return "-"
        lo, hi = c["relative_ci"] or (float("nan"), float("nan"))
        mark = "significant" if c["significant"] else "not significant"
        return f"{c['relative']:+.1%} ({lo:+.1%} to {hi:+.1%}; p_holm {c['p_holm']:.3f}, {mark})"

    header = [
        "variant",
        "val NDCG@20",
        "test NDCG@20 (95% CI)",
        "test vs full (95% CI)",
        "union recall",
        "train s",
    ]
    return markdown_table(
        header,
        [[r["variant"], f"{r['val']['ndcg@20']:.4f}", with_ci(r["test"]), versus(r["variant"]),
          f"{r['union_recall']:.4f}", f"{r['train_seconds']:.1f}"] for r in rows],
    )  # fmt: skip
