"""Two-stage recommendations: candidates from every retriever, features, a learned ranker.

``fit_two_stage`` learns from validation only (``lambdarank.py``) and returns the ranker's
scores of each user's candidates on validation (out of fold) and on test (the final model,
reading the train and validation history as every model does), as sparse users x items
matrices; a test item outside the user's candidates is a miss. ``TwoStageScores`` is what the
evaluation reads.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any

import lightgbm as lgb
import numpy as np
import scipy.sparse as sp

from recsys_assets.core.io.sparse import Csr
from recsys_assets.core.models.ranker.candidates import Source, candidates
from recsys_assets.core.models.ranker.lambdarank import CrossValidated, cross_validate
from recsys_assets.core.models.ranker.timeline import Timeline
from recsys_assets.core.models.training_data import COLD_START_MAX_TRAIN, TrainingData
from recsys_assets.core.ranking.candidates import CandidateBatch
from recsys_assets.core.ranking.features import FeatureSpace, features, mask_rows
from recsys_assets.settings.models import RankerConfig


def cold_items(data: TrainingData) -> np.ndarray:
    """Items with at most ``COLD_START_MAX_TRAIN`` train interactions (the cold-start slice's)."""
    return data.train_counts() <= COLD_START_MAX_TRAIN


@dataclass
class Candidates:
    """One split's candidates with their features: rows user-contiguous."""

    users: np.ndarray
    items: np.ndarray
    x: np.ndarray
    proposed: dict[str, np.ndarray]

    @classmethod
    def concat(cls, parts: Sequence[tuple[CandidateBatch, np.ndarray]], sources: Sequence[str]) -> Candidates:
        if not parts:
            return cls(np.zeros(0, np.int64), np.zeros(0, np.int64), np.zeros((0, 0), np.float32), {})
        return cls(
            np.concatenate([b.user_nodes for b, _ in parts]),
            np.concatenate([b.items for b, _ in parts]),
            np.vstack([x for _, x in parts]),
            {s: np.concatenate([b.proposed_by(s) for b, _ in parts]) for s in sources},
        )

    def labels(self, targets: Csr, n_items: int) -> np.ndarray:
        position, items = targets.pairs(np.arange(len(targets.indptr) - 1))
        keys = np.sort(position.astype(np.int64) * n_items + items)
        return np.isin(self.users.astype(np.int64) * n_items + self.items, keys).astype(np.float32)

    def matrix(self, scores: np.ndarray, n_users: int, n_items: int) -> sp.csr_matrix:
        return sp.csr_matrix((scores.astype(np.float32), (self.users, self.items)), shape=(n_users, n_items))


def split_candidates(
    sources: Sequence[Source],
    space: FeatureSpace,
    data: TrainingData,
    split: str,
    per_source: int,
    timeline: Timeline | None,
    log: Callable[[str], None] | None = None,
) -> Candidates:
    """The candidates and features of every user with a target on ``split``, reading that
    split's history (``TrainingData.history``) and excluding the user's own items."""
    history = data.history(split)
    targets = data.val if split == "val" else data.test
    users = np.flatnonzero(targets.lengths() > 0)
    item_counts = np.bincount(history.indices, minlength=data.n_items).astype(np.float32)
    known = timeline.split(split) if timeline is not None else None
    parts = []
    started = time.perf_counter()
    for batch in candidates(sources, history, users, [history], per_source, data.n_items):
        parts.append((batch, features(space, batch, history, item_counts, known)))
        if log:
            done = sum(len(b.users) for b, _ in parts)
            log(
                f"{split} candidates: {done:,} of {len(users):,} users, {time.perf_counter() - started:.1f} s"
            )
    return Candidates.concat(parts, [s.name for s in sources])


def recall_table(
    found: Candidates, targets: Csr, n_items: int, sources: Sequence[str]
) -> list[dict[str, Any]]:
    """Per source and for the union: the share of the targets among the candidates (recall at
    N), the candidates per user, and the targets only that source found."""
    labels = found.labels(targets, n_items) > 0
    users = np.flatnonzero(targets.lengths() > 0)
    total = float(targets.lengths()[users].sum())
    n_users = max(len(users), 1)
    rows = []
    for s in sources:
        alone = found.proposed[s] & ~np.any([found.proposed[o] for o in sources if o != s], axis=0)
        rows.append(
            {
                "source": s,
                "recall": float((labels & found.proposed[s]).sum() / total),
                "per_user": float(found.proposed[s].sum() / n_users),
                "targets_only_it_found": int((labels & alone).sum()),
            }
        )
    rows.append(
        {"source": "union", "recall": float(labels.sum() / total), "per_user": float(len(labels) / n_users),
         "targets_only_it_found": int(labels.sum())}
    )  # fmt: skip
    return rows


@dataclass
class TwoStageFit:
    """The fitted ranker and its scores on the evaluation's splits."""

    cv: CrossValidated
    names: list[str]
    val_scores: sp.csr_matrix
    test_scores: sp.csr_matrix
    recall: list[dict[str, Any]]
    seconds: dict[str, float] = field(default_factory=dict)

    @property
    def booster(self) -> lgb.Booster:
        assert self.cv.booster is not None
        return self.cv.booster

    def importance(self) -> list[tuple[str, float]]:
        gains = self.booster.feature_importance("gain")
        total = max(float(gains.sum()), 1e-12)
        return sorted(
            ((n, float(g) / total) for n, g in zip(self.names, gains, strict=True)), key=lambda t: -t[1]
        )


def fit_two_stage(
    data: TrainingData,
    sources: Sequence[Source],
    space: FeatureSpace,
    timeline: Timeline | None,
    config: RankerConfig,
    log: Callable[[str], None] | None = None,
) -> TwoStageFit:
    """The ranker learnt from validation; its out-of-fold validation and its test scores.
    ``config.cold_dropout``: the share of training rows whose interaction features are dropped,
    so the ranker learns to rank an item by its content (the cold items' are always dropped)."""
    per_source = config.per_source
    names = space.names
    seconds = {}
    started = time.perf_counter()
    val = split_candidates(sources, space, data, "val", per_source, timeline, log)
    seconds["val_candidates"] = time.perf_counter() - started
    labels = val.labels(data.val, data.n_items)
    _, groups = np.unique(val.users, return_inverse=True)
    started = time.perf_counter()
    x_fit = val.x
    if config.cold_dropout:
        x_fit = val.x.copy()
        dropped = np.random.default_rng(config.seed).random(len(x_fit)) < config.cold_dropout
        mask_rows(x_fit, space.interaction_columns(), np.flatnonzero(dropped))
    cv = cross_validate(x_fit, labels, groups, names, config, log, x_predict=val.x)
    seconds["ranker"] = time.perf_counter() - started
    started = time.perf_counter()
    test = split_candidates(sources, space, data, "test", per_source, timeline, log)
    assert cv.booster is not None
    test_scores = np.asarray(cv.booster.predict(test.x), dtype=np.float32) if len(test.x) else np.zeros(0)
    seconds["test_candidates"] = time.perf_counter() - started
    recall = recall_table(val, data.val, data.n_items, [s.name for s in sources])
    return TwoStageFit(
        cv,
        names,
        val.matrix(cv.out_of_fold, data.n_users, data.n_items),
        test.matrix(test_scores, data.n_users, data.n_items),
        recall,
        seconds,
    )
