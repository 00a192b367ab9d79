"""The item-cold-start protocol, beside the main split: can a model recommend items nobody has
reviewed yet, from their content?

* A share of the items with interactions is held out entirely: every interaction with them
  leaves the train data, so the models never see one.
* The held-out items are split in two by item: the interactions with one half are the cold
  validation targets (for choices), those with the other half the cold test targets.
* Every model trains on what is left (early-stopping on the warm validation items), then
  ranks all items for each user, their train items excluded: a held-out item must beat every
  warm item to count, as it would in serving.

The content-only peer (``content_scorer``) is the bar a multi-modal model must clear: a user
is the (recency-weighted) mean of their train items' content vectors, and items are ranked by
cosine to it.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np

from recsys_assets.core.io.sparse import Csr
from recsys_assets.core.models.metrics import (
    Score,
    dot_scorer,
    per_user_metrics,
    ranking_metrics,
    top_k,
    user_batch,
)
from recsys_assets.core.models.popularity import popularity_scores
from recsys_assets.core.models.recency import ORDER_FREE, Order, choose, history_matrix, order_grid, readout
from recsys_assets.core.models.training_data import TrainingData
from recsys_assets.settings.models import OrderConfig


@dataclass
class ColdStart:
    """The protocol's data: what the models train on, and the cold targets."""

    #: Train without any interaction of a held-out item; val and test likewise (warm).
    warm: TrainingData
    cold_val: Csr
    cold_test: Csr
    val_items: np.ndarray
    test_items: np.ndarray

    def held(self) -> np.ndarray:
        """Per item, whether it is held out."""
        mask = np.zeros(self.warm.n_items, dtype=bool)
        mask[np.concatenate([self.val_items, self.test_items])] = True
        return mask

    def summary(self) -> dict[str, int]:
        return {
            "held_out_items": int(len(self.val_items) + len(self.test_items)),
            "cold_val_items": len(self.val_items),
            "cold_test_items": len(self.test_items),
            "cold_val_interactions": len(self.cold_val.indices),
            "cold_test_interactions": len(self.cold_test.indices),
            "warm_train_interactions": len(self.warm.train.indices),
        }


def _rows(csr: Csr) -> np.ndarray:
    return np.repeat(np.arange(len(csr.indptr) - 1), csr.lengths())


def _without(csr: Csr, held: np.ndarray) -> Csr:
    keep = ~held[csr.indices]
    values = None if csr.values is None else csr.values[keep]
    return Csr.from_pairs(_rows(csr)[keep], csr.indices[keep], len(csr.indptr) - 1, values)


def item_cold_start(data: TrainingData, share: float, seed: int) -> ColdStart:
    """Hold out ``share`` of the items with train interactions (seeded), half for cold
    validation and half for cold test."""
    if not 0 < share < 1:
        raise ValueError(f"cold-start share {share}: expected a share between 0 and 1")
    candidates = np.flatnonzero(data.train_counts() > 0)
    n_held = max(2, round(share * len(candidates)))
    if n_held >= len(candidates):
        raise ValueError(f"holding out {n_held} of {len(candidates)} items leaves nothing to train on")
    held = np.random.default_rng(seed).choice(candidates, n_held, replace=False)
    val_items, test_items = np.sort(held[: n_held // 2]), np.sort(held[n_held // 2 :])
    held_mask = np.zeros(data.n_items, dtype=bool)
    held_mask[held] = True
    warm = TrainingData(
        _without(data.train, held_mask),
        _without(data.val, held_mask),
        _without(data.test, held_mask),
        data.n_items,
    )
    rows = np.concatenate([_rows(part) for part in (data.train, data.val, data.test)])
    items = np.concatenate([part.indices for part in (data.train, data.val, data.test)])
    targets = {}
    for name, chosen in (("val", val_items), ("test", test_items)):
        mask = np.isin(items, chosen)
        pairs = np.unique(rows[mask] * np.int64(data.n_items) + items[mask])
        targets[name] = Csr.from_pairs(pairs // data.n_items, pairs % data.n_items, data.n_users)
    return ColdStart(warm, targets["val"], targets["test"], val_items, test_items)


def cold_scores(
    score: Score, protocol: ColdStart, k: int = 20
) -> tuple[dict[str, dict[str, Any]], dict[str, np.ndarray]]:
    """NDCG, Recall and Hit at ``k`` on the cold validation and test targets, ranking every item
    (train items excluded), and how often held-out items reach the top ``k`` at all; and each
    split's NDCG@k user by user (the users with a cold target, the same for every model), for
    intervals and paired comparisons (``uncertainty.py``)."""
    out, per_user = {}, {}
    n_items = protocol.warm.n_items
    for name, targets, items in (
        ("val", protocol.cold_val, protocol.val_items),
        ("test", protocol.cold_test, protocol.test_items),
    ):
        users = np.flatnonzero(targets.lengths() > 0)
        top = top_k(score, users, [protocol.warm.train], k, batch=user_batch(n_items))
        metrics: dict[str, Any] = ranking_metrics(top, users, targets, n_items, [k])
        metrics["held_out_share_of_top"] = float(np.isin(top, items).mean())
        out[name] = metrics
        per_user[name] = per_user_metrics(top, users, targets, n_items, [k])[f"ndcg@{k}"]
    return out, per_user


def cold_metrics(score: Score, protocol: ColdStart, k: int = 20) -> dict[str, dict[str, Any]]:
    """``cold_scores``' metrics alone."""
    return cold_scores(score, protocol, k)[0]


def content_scorer(features: np.ndarray, train: Csr, order: Order = ORDER_FREE) -> Score:
    """The content-only peer: a user is the weighted mean of their train items' (unit) content
    vectors, every item ranked by cosine to it."""
    unit = features / np.maximum(np.linalg.norm(features, axis=1, keepdims=True), 1e-12)
    return dot_scorer(content_user_vectors(unit, train, order), unit.astype(np.float32))


def content_user_vectors(unit: np.ndarray, train: Csr, order: Order) -> np.ndarray:
    """Each user's weighted mean of their history's unit content vectors, normalised."""
    history = history_matrix(train, len(unit), order)
    users = readout(np.zeros((history.shape[0], unit.shape[1]), dtype=np.float32), unit, history, 1.0, True)
    return users.astype(np.float32)


def popularity_scorer(protocol: ColdStart) -> Score:
    """Popularity over the warm train interactions (a held-out item never scores)."""
    counts = popularity_scores(protocol.warm.train.indices, protocol.warm.n_items)
    return lambda rows: np.broadcast_to(counts, (len(rows), len(counts)))


def content_order(features: np.ndarray, protocol: ColdStart, config: OrderConfig) -> Order:
    """The content-only peer's use of order, chosen on the cold validation targets."""

    def validate(_: int, order: Order) -> float:
        return float(
            cold_metrics(content_scorer(features, protocol.warm.train, order), protocol)["val"]["ndcg@20"]
        )

    return choose([{}], order_grid(config.decays, config.floors), validate).best.order
