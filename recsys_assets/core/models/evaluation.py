"""One evaluation for every model: full-ranking metrics on validation and test, slices,
coverage; and the promotion verdict against a blessed report.

Validation excludes each user's train items; test excludes train and validation items.
Slices keep the ranking and restrict the held-out items: ``cold_start`` (items with at most
``COLD_START_MAX_TRAIN`` train interactions) and the train-popularity tertiles ``head``,
``torso`` and ``tail`` (each a third of the train interactions, ``metrics.popularity_tertiles``).
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np

from recsys_assets.core.models.metrics import (
    Csr,
    Score,
    coverage,
    popularity_tertiles,
    ranking_metrics,
    restrict,
    top_k,
    user_batch,
)
from recsys_assets.core.models.training_data import COLD_START_MAX_TRAIN, TrainingData

KS = (10, 20)
TERTILES = ("head", "torso", "tail")
#: The metrics the promotion gate compares.
GATED = ("ndcg@20", "recall@20")


def slice_masks(data: TrainingData) -> dict[str, np.ndarray]:
    counts = data.train_counts()
    tertile = popularity_tertiles(counts)
    return {
        "cold_start": counts <= COLD_START_MAX_TRAIN,
        **{name: tertile == t for t, name in enumerate(TERTILES)},
    }


def _split_metrics(
    top: np.ndarray,
    users: np.ndarray,
    targets: Csr,
    masks: dict[str, np.ndarray],
    n_items: int,
    ks: Sequence[int],
) -> dict[str, Any]:
    out: dict[str, Any] = ranking_metrics(top, users, targets, n_items, ks)
    out.update({f"coverage@{k}": coverage(top, n_items, k) for k in ks})
    slices: dict[str, Any] = {}
    for name, mask in masks.items():
        part = restrict(targets, mask)
        if part.lengths()[users].sum() == 0:
            slices[name] = {"users": 0.0, "interactions": 0.0}
            continue
        slices[name] = {
            **ranking_metrics(top, users, part, n_items, [max(ks)]),
            "interactions": float(part.lengths()[users].sum()),
        }
    out["slices"] = slices
    return out


def checked(score: Score, n_items: int) -> Score:
    """``score``, refusing a batch of scores that is not one row per user and one column per item."""

    def score_checked(rows: np.ndarray) -> np.ndarray:
        scores = score(rows)
        if scores.shape != (len(rows), n_items):
            raise ValueError(f"model scored {list(scores.shape)} for {len(rows)} users x {n_items} items")
        return scores

    return score_checked


def evaluate(
    score: Score,
    data: TrainingData,
    ks: Sequence[int] = KS,
    progress: Callable[[str], None] | None = None,
) -> dict[str, dict[str, Any]]:
    """Validation and test metrics of a model (``score(users)``: every item's score for each
    user, ``metrics.dot_scorer`` for vectors), ranking the whole catalogue in user batches."""
    masks = slice_masks(data)
    score = checked(score, data.n_items)
    out = {}
    for name, exclude, targets in (
        ("val", [data.train], data.val),
        ("test", [data.train, data.val], data.test),
    ):
        evaluated = np.flatnonzero(targets.lengths() > 0)
        top = top_k(score, evaluated, exclude, max(ks), batch=user_batch(data.n_items))
        out[name] = _split_metrics(top, evaluated, targets, masks, data.n_items, ks)
        if progress:
            progress(
                f"{name}: NDCG@20 {out[name].get('ndcg@20', float('nan')):.4f} over {len(evaluated):,} users"
            )
    return out


@dataclass
class Verdict:
    passed: bool
    description: str
    candidate: dict[str, float]
    blessed: dict[str, float] | None


def promotion_verdict(
    candidate: dict[str, float], blessed: dict[str, float] | None, tolerance: float
) -> Verdict:
    """Pass unless a gated test metric fell more than ``tolerance`` (relative) below the blessed one.

    Without a blessed report there is nothing to regress from: the first candidate passes,
    and the description says so (bless it to set the bar).
    """
    values = {m: float(candidate[m]) for m in GATED}
    if blessed is None:
        return Verdict(
            True, "no blessed report yet: nothing to compare with (bless one to set the bar)", values, None
        )
    floors = {m: float(blessed[m]) * (1.0 - tolerance) for m in GATED}
    failed = [m for m in GATED if values[m] < floors[m]]
    parts = [f"{m} {values[m]:.4f} vs blessed {float(blessed[m]):.4f} (floor {floors[m]:.4f})" for m in GATED]
    verdict = "REGRESSION in " + ", ".join(failed) if failed else "no regression"
    return Verdict(
        not failed,
        f"{verdict}: " + "; ".join(parts) + f"; tolerance {tolerance:.1%}",
        values,
        {m: float(blessed[m]) for m in GATED},
    )
