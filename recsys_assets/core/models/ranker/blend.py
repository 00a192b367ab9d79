"""The floor a learned ranker must clear: a per-user z-scored blend of the two models best on
validation, ``w * z_a + (1 - w) * z_b``, its weight chosen on validation.

Each model's scores are standardised per user over the catalogue (their scale differs by user
and by model), so the weight means the same for every user. The two models are the retrievers
with the best validation NDCG@20 (each with the use of order it chose); test reads the train
and validation history, as every model does. The blend's scores of each split are kept for the
top ``keep`` items of each user (a ranking metric at K <= keep reads nothing below them).
"""

from __future__ import annotations

import time

import numpy as np
import scipy.sparse as sp
import torch

from recsys_assets.core.io.sparse import Csr
from recsys_assets.core.models.metrics import Score, sample_rows, top_k, user_batch, validation_ndcg
from recsys_assets.core.models.scoring import Scorable
from recsys_assets.core.models.training import Fitting, Trained
from recsys_assets.core.models.training_data import TrainingData
from recsys_assets.settings.models import BlendConfig


def standardised(score: Score) -> Score:
    """``score`` with each user's row standardised (mean 0, unit deviation over the catalogue)."""

    def z(rows: np.ndarray) -> np.ndarray:
        values = np.asarray(score(rows), dtype=np.float32)
        mean = values.mean(axis=1, keepdims=True)
        std = np.maximum(values.std(axis=1, keepdims=True), 1e-9)
        return (values - mean) / std

    return z


def blended(a: Score, b: Score, weight: float) -> Score:
    za, zb = standardised(a), standardised(b)
    return lambda rows: weight * za(rows) + (1.0 - weight) * zb(rows)


def top_scores(score: Score, users: np.ndarray, exclude: list[Csr], keep: int, n_items: int) -> sp.csr_matrix:
    """The top ``keep`` items of each of ``users`` (their own excluded) with their scores."""
    top = top_k(score, users, exclude, keep, batch=user_batch(n_items))
    values = np.empty(top.shape, dtype=np.float32)
    batch = user_batch(n_items)
    for lo in range(0, len(users), batch):
        scores = torch.from_numpy(np.ascontiguousarray(score(users[lo : lo + batch]), dtype=np.float32))
        values[lo : lo + batch] = torch.gather(scores, 1, torch.from_numpy(top[lo : lo + batch])).numpy()
    rows = np.repeat(users, keep)
    return sp.csr_matrix((values.ravel(), (rows, top.ravel())), shape=(len(exclude[0].indptr) - 1, n_items))


def fit(data: TrainingData, config: BlendConfig, fitting: Fitting) -> Trained:
    """The two retrievers best on validation, blended with the weight best on validation."""
    inputs = fitting.ranker
    if inputs is None:
        raise ValueError("blend: needs the trained models (Fitting.ranker)")
    if len(inputs.models) < 2:
        raise ValueError(f"blend: needs two models, given {sorted(inputs.models)}")
    started = time.perf_counter()
    val = sample_rows(data.val, config.val_users, config.seed)
    alone = {
        name: validation_ndcg(model.scorer(data.train, data.n_items, order), data.train, val, data.n_items)
        for name, (model, order) in inputs.models.items()
    }
    first, second = sorted(alone, key=lambda name: -alone[name])[:2]
    scorers = {name: inputs.models[name] for name in (first, second)}

    def split_score(history: Csr, weight: float) -> Score:
        (ma, oa), (mb, ob) = scorers[first], scorers[second]
        return blended(ma.scorer(history, data.n_items, oa), mb.scorer(history, data.n_items, ob), weight)

    tried = {
        w: validation_ndcg(split_score(data.train, w), data.train, val, data.n_items) for w in config.weights
    }
    weight = max(tried, key=lambda w: (tried[w], -abs(w - 0.5)))
    if fitting.log:
        fitting.log(
            f"blend of {first} and {second}: weight {weight:g} on {first} (val NDCG@20 {tried[weight]:.4f})"
        )
    split_scores = {
        name: top_scores(
            split_score(data.history(name), weight),
            np.flatnonzero(targets.lengths() > 0),
            [data.train] if name == "val" else [data.train, data.val],
            config.keep,
            data.n_items,
        )
        for name, targets in (("val", data.val), ("test", data.test))
    }
    extra = {
        "train_seconds": time.perf_counter() - started,
        "sources": [first, second],
        "chosen": {"first": first, "second": second, "weight": weight},
        "alone_val_ndcg@20": {k: round(v, 5) for k, v in alone.items()},
        "tried": [{"weight": w, "val_ndcg@20": round(v, 5)} for w, v in tried.items()],
    }
    return Trained(Scorable(split_scores=split_scores), config.to_dict(), extra=extra)
