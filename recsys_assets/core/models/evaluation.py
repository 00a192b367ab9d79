"""One evaluation for every model: full-ranking metrics on validation and test, slices,
coverage; and the same user by user, for intervals and paired tests (``uncertainty.py``).

Validation reads each user's train history and excludes their train items; test reads the
train and validation history (as a deployed model would know it; the models stay fitted on
train) and excludes train and validation items, so both score the same next-items task.
Slices keep the ranking and restrict the held-out items: ``cold_start`` (items with at most
``COLD_START_MAX_TRAIN`` train interactions) and the train-popularity tertiles ``head``,
``torso`` and ``tail`` (each a third of the train interactions, ``metrics.popularity_tertiles``).
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, Literal

import numpy as np

from recsys_assets.core.io.sparse import Csr
from recsys_assets.core.models.metrics import (
    Score,
    coverage,
    per_user_metrics,
    popularity_tertiles,
    restrict,
    top_k,
    user_batch,
)
from recsys_assets.core.models.training_data import COLD_START_MAX_TRAIN, TrainingData

KS = (10, 20)
TERTILES = ("head", "torso", "tail")


def slice_masks(data: TrainingData) -> dict[str, np.ndarray]:
    counts = data.train_counts()
    tertile = popularity_tertiles(counts)
    return {
        "cold_start": counts <= COLD_START_MAX_TRAIN,
        **{name: tertile == t for t, name in enumerate(TERTILES)},
    }


#: Which history a model reads when it is tested (``TrainingData.history``): train and
#: validation (what a deployed model knows), or train alone (the protocol before it).
TestHistory = Literal["train+val", "train"]
#: A model's scorer given the history it reads (``Scorable.scoring``); a model that reads no
#: history ignores it (``fixed``).
ScoreFor = Callable[[Csr], Score]


def fixed(score: Score) -> ScoreFor:
    """A ``ScoreFor`` for scores that do not depend on the history read (plain vectors)."""
    return lambda _history: score


@dataclass
class SplitScores:
    """One split's evaluation, user by user: what intervals and paired tests are computed from.

    ``users``: the evaluated users (node indices, every model in the same order); ``values``:
    metric -> one value per user; ``slices``: slice -> (which users have a target in it, their
    NDCG at the largest K).
    """

    users: np.ndarray
    values: dict[str, np.ndarray]
    slices: dict[str, tuple[np.ndarray, np.ndarray]] = field(default_factory=dict)


def _split_metrics(
    top: np.ndarray,
    users: np.ndarray,
    targets: Csr,
    masks: dict[str, np.ndarray],
    n_items: int,
    ks: Sequence[int],
) -> tuple[dict[str, Any], SplitScores]:
    per_user = per_user_metrics(top, users, targets, n_items, ks)
    per_user.pop("has_targets")
    out: dict[str, Any] = {"users": float(len(users)), **{m: float(v.mean()) for m, v in per_user.items()}}
    out.update({f"coverage@{k}": coverage(top, n_items, k) for k in ks})
    slices: dict[str, Any] = {}
    slice_scores: dict[str, tuple[np.ndarray, np.ndarray]] = {}
    k = max(ks)
    for name, mask in masks.items():
        part = restrict(targets, mask)
        scores = per_user_metrics(top, users, part, n_items, [k])
        has = scores["has_targets"]
        if not has.any():
            slices[name] = {"users": 0.0, "interactions": 0.0}
            continue
        slices[name] = {
            "users": float(has.sum()),
            **{m: float(v[has].mean()) for m, v in scores.items() if m != "has_targets"},
            "interactions": float(part.lengths()[users].sum()),
        }
        slice_scores[name] = (has, scores[f"ndcg@{k}"])
    out["slices"] = slices
    return out, SplitScores(users, per_user, slice_scores)


def checked(score: Score, n_items: int) -> Score:
    """``score``, refusing a batch of scores that is not one row per user and one column per item."""

    def score_checked(rows: np.ndarray) -> np.ndarray:
        scores = score(rows)
        if scores.shape != (len(rows), n_items):
            raise ValueError(f"model scored {list(scores.shape)} for {len(rows)} users x {n_items} items")
        return scores

    return score_checked


def evaluate_per_user(
    score_for: ScoreFor,
    data: TrainingData,
    ks: Sequence[int] = KS,
    progress: Callable[[str], None] | None = None,
    test_history: TestHistory = "train+val",
    split_scores: Mapping[str, Score] | None = None,
) -> tuple[dict[str, dict[str, Any]], dict[str, SplitScores]]:
    """Validation and test metrics of a model, and the same user by user.

    ``score_for(history)``: every item's score for a batch of users, reading ``history``
    (``Scorable.scoring``). Validation reads the train history and excludes train items; test
    reads ``test_history`` (train and validation by default) and excludes train and validation
    items. The whole catalogue is ranked, in user batches. ``split_scores``: a model whose
    scores of each split were made by its fit (the ranker: out of fold on validation) gives
    them here instead.
    """
    masks = slice_masks(data)
    out, scores = {}, {}
    for name, exclude, targets in (
        ("val", [data.train], data.val),
        ("test", [data.train, data.val], data.test),
    ):
        history = data.history(name) if test_history == "train+val" else data.train
        score = checked(split_scores[name] if split_scores else score_for(history), data.n_items)
        evaluated = np.flatnonzero(targets.lengths() > 0)
        top = top_k(score, evaluated, exclude, max(ks), batch=user_batch(data.n_items))
        out[name], scores[name] = _split_metrics(top, evaluated, targets, masks, data.n_items, ks)
        if progress:
            progress(
                f"{name}: NDCG@20 {out[name].get('ndcg@20', float('nan')):.4f} over {len(evaluated):,} users"
            )
    return out, scores


def evaluate(
    score_for: ScoreFor,
    data: TrainingData,
    ks: Sequence[int] = KS,
    progress: Callable[[str], None] | None = None,
    test_history: TestHistory = "train+val",
) -> dict[str, dict[str, Any]]:
    """``evaluate_per_user``'s metrics alone."""
    return evaluate_per_user(score_for, data, ks, progress, test_history)[0]
