"""What every embedding recommender's training loop shares: validation NDCG@20, early
stopping on it, the result it returns (best user and item vectors), and deterministic
kernels."""

from __future__ import annotations

import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field

import numpy as np
import torch

from recsys_assets.core.io.sparse import Csr
from recsys_assets.core.models.metrics import dot_scorer, validation_ndcg


@contextmanager
def deterministic_torch() -> Iterator[None]:
    """Deterministic kernels while training: multi-threaded CPU scatter/index-add (message
    passing, embedding gradients) otherwise sums in a varying order, so two runs of one seed
    in two processes drift apart from the first epoch."""
    before = torch.are_deterministic_algorithms_enabled()
    torch.use_deterministic_algorithms(True)
    try:
        yield
    finally:
        torch.use_deterministic_algorithms(before)


def seeded_pairs(train: Csr, seed: int, what: str) -> tuple[torch.Generator, torch.Tensor, torch.Tensor]:
    """Seed torch, and return the generator batches and negatives are drawn with and the train
    (user, item) pairs they are drawn from."""
    if len(train.indices) == 0:
        raise ValueError(f"no train interactions to fit {what} on")
    torch.manual_seed(seed)
    generator = torch.Generator().manual_seed(seed)
    users = torch.from_numpy(np.repeat(np.arange(len(train.indptr) - 1), train.lengths()))
    return generator, users, torch.from_numpy(train.indices)


def step_batches(order: torch.Tensor, batch_size: int, max_steps: int) -> tuple[torch.Tensor, ...]:
    """``order`` cut into batches of ``batch_size``, or into ``max_steps`` equal ones where that
    would take more steps (``max_steps`` 0: no limit). Where every step propagates over the
    whole graph, a step costs about the graph's size whatever its batch, so a larger graph
    takes bigger steps rather than more of them."""
    size = max(batch_size, -(-len(order) // max_steps)) if max_steps else batch_size
    return order.split(size)


def validation_ndcg20(users: np.ndarray, items: np.ndarray, train: Csr, val: Csr) -> float:
    """Full-ranking NDCG@20 of dot-product scores on the validation items, train items excluded."""
    return validation_ndcg(dot_scorer(users, items), train, val, len(items))


@dataclass
class FitResult:
    users: np.ndarray
    items: np.ndarray
    best_epoch: int
    best_val_ndcg20: float
    seconds: float
    history: list[dict[str, float]] = field(default_factory=list)


class EarlyStopping:
    """Keeps the best vectors by validation NDCG@20; says stop after ``patience`` evaluations
    without improvement. ``progress`` gets each evaluation with where training stands: the
    epoch of ``epochs``, the best so far, the patience left, seconds per epoch and the most
    time left (all remaining epochs; stopping early only shortens it)."""

    def __init__(
        self,
        train: Csr,
        val: Csr,
        patience: int,
        progress: Callable[[dict[str, float]], None] | None = None,
        epochs: int = 0,
    ):
        self.train, self.val, self.patience, self.progress = train, val, patience, progress
        self.epochs = epochs
        self.best = FitResult(np.zeros(0), np.zeros(0), 0, -1.0, 0.0)
        self.waited = 0
        self.started = time.perf_counter()

    def evaluate(
        self, epoch: int, loss: float, users: np.ndarray, items: np.ndarray, ndcg: float | None = None
    ) -> bool:
        """Record this epoch (``ndcg``: its validation NDCG@20 when the caller has already
        computed it); True when training should stop."""
        if ndcg is None:
            ndcg = validation_ndcg20(users, items, self.train, self.val)
        record = {"epoch": float(epoch), "loss": loss, "val_ndcg@20": ndcg}
        self.best.history.append(record)
        if ndcg > self.best.best_val_ndcg20:
            self.best.users, self.best.items = users.copy(), items.copy()
            self.best.best_epoch, self.best.best_val_ndcg20 = epoch, ndcg
            self.waited = 0
        else:
            self.waited += 1
        stop = self.waited >= self.patience
        if self.progress:
            self.progress(record | self._standing(epoch, stop))
        return stop

    def _standing(self, epoch: int, stop: bool) -> dict[str, float]:
        per_epoch = (time.perf_counter() - self.started) / epoch
        left = 0 if stop else max(self.epochs - epoch, 0)
        return {"epochs": float(self.epochs or epoch), "best_epoch": float(self.best.best_epoch),
                "best_val_ndcg@20": self.best.best_val_ndcg20,
                "patience_left": float(self.patience - self.waited), "patience": float(self.patience),
                "seconds_per_epoch": per_epoch, "eta_seconds": per_epoch * left}  # fmt: skip

    def result(self) -> FitResult:
        self.best.seconds = time.perf_counter() - self.started
        return self.best
