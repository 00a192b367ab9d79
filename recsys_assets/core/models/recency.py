"""Order-awareness every model shares: a user's train history weighted by recency.

Each train item of a user gets the weight ``floor + exp(decay * (r - 1))``, ``r`` its place in
the user's history in time, 0 for the first and 1 for the last (``TrainingData.train.values``).
``decay = 0`` gives every item the same weight: order-free. The next thing a user picks
resembles their last picks more than their first ones, and this is the cheapest way to say so.

How a model uses it:

* item-item models (EASE, ItemKNN) score ``weighted history @ item-item weights``;
* embedding models (MF, LightGCN, the GAT) read out ``user + w * mean of the user's items'
  vectors, weighted`` (unit length again for models scored by cosine), ``w = 0`` being off.

The decay, floor and readout weight are chosen per model on validation (``choose``); the
evaluation reports each model with its choice and with order switched off.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Sequence
from dataclasses import asdict, dataclass

import numpy as np
import scipy.sparse as sp

from recsys_assets.core.io.sparse import Csr


@dataclass(frozen=True)
class Order:
    """One use of order: the history weighting, and for embedding models the readout weight."""

    decay: float = 0.0
    floor: float = 0.0
    readout: float = 0.0

    @property
    def order_free(self) -> bool:
        return self.decay == 0.0

    def weights(self, positions: np.ndarray) -> np.ndarray:
        return self.floor + np.exp(self.decay * (positions - 1.0))

    def to_dict(self) -> dict[str, float]:
        return asdict(self)

    def label(self) -> str:
        parts = [f"decay {self.decay:g}", f"floor {self.floor:g}"] if not self.order_free else ["order-free"]
        return ", ".join([*parts, f"readout {self.readout:g}"])


ORDER_FREE = Order()


def history_weights(train: Csr, order: Order) -> np.ndarray:
    """Each train interaction's weight under ``order`` (all 1 when order-free)."""
    if order.order_free:
        return np.ones(len(train.indices), dtype=np.float32)
    if train.values is None:
        raise ValueError("the train interactions carry no history positions; rematerialize the splits")
    return order.weights(train.values).astype(np.float32)


def history_matrix(train: Csr, n_items: int, order: Order) -> sp.csr_matrix:
    """Users x items, each train interaction weighted by ``order``; a repeated (user, item)
    pair sums."""
    weights = history_weights(train, order)
    matrix = sp.csr_matrix((weights, train.indices, train.indptr), shape=(len(train.indptr) - 1, n_items))
    matrix.sum_duplicates()
    return matrix


def readout(
    users: np.ndarray, items: np.ndarray, history: sp.csr_matrix, weight: float, unit: bool
) -> np.ndarray:
    """``users + weight * (the history-weighted mean of each user's item vectors)``, normalised
    when the model scores by cosine (``unit``); ``users`` unchanged when ``weight`` is 0."""
    if weight == 0.0:
        return users
    totals = np.asarray(history.sum(axis=1)).ravel()
    pooled = np.asarray(history @ items) / np.maximum(totals, 1e-12)[:, None]
    out = users + weight * pooled
    if unit:
        out = out / np.maximum(np.linalg.norm(out, axis=1, keepdims=True), 1e-12)
    return out.astype(users.dtype, copy=False)


def order_grid(
    decays: Iterable[float], floors: Iterable[float], readouts: Iterable[float] = (0.0,)
) -> list[Order]:
    """Every distinct ``Order`` of the settings: order-free ones once per readout (the floor
    makes no difference there), and no floors or decays without a readout when the model
    reads order through it (``readouts`` other than ``(0,)``)."""
    readouts = list(readouts)
    embedding = readouts != [0.0]
    grid: list[Order] = []
    for r in readouts:
        if embedding and r == 0.0:
            grid.append(Order(readout=0.0))
            continue
        for decay in decays:
            for floor in [0.0] if decay == 0.0 else floors:
                grid.append(Order(float(decay), float(floor), float(r)))
    return list(dict.fromkeys(grid))


@dataclass
class Tried:
    params: dict[str, float]
    order: Order
    val_ndcg20: float


@dataclass
class Choice:
    """The best of the combinations tried on validation, and the best order-free one with the
    same model parameters (the same model with order switched off)."""

    best: Tried
    order_free: Tried
    tried: list[Tried]

    def table(self) -> list[dict[str, float]]:
        return [{**t.params, **t.order.to_dict(), "val_ndcg@20": round(t.val_ndcg20, 5)} for t in self.tried]


def choose(
    candidates: Sequence[dict[str, float]],
    grid: Sequence[Order],
    validate: Callable[[int, Order], float],
    progress: Callable[[str], None] | None = None,
) -> Choice:
    """Try every candidate (its index into ``candidates``) with every order of ``grid``;
    ties go to the earlier one (simpler settings come first in the grids)."""
    if not any(o.order_free for o in grid):
        raise ValueError("the order grid needs an order-free entry to compare against")
    tried = []
    for index, params in enumerate(candidates):
        for order in grid:
            tried.append(Tried(params, order, validate(index, order)))
            if progress:
                progress(f"{_describe(params)}{order.label()}: val NDCG@20 {tried[-1].val_ndcg20:.4f}")
    best = max(tried, key=lambda t: t.val_ndcg20)
    same = [t for t in tried if t.order.order_free and t.params == best.params]
    return Choice(best, max(same, key=lambda t: t.val_ndcg20), tried)


def _describe(params: dict[str, float]) -> str:
    return "".join(f"{k} {v:g}, " for k, v in params.items())
