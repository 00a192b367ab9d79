"""Item-item models: a user's score for item ``j`` is ``sum_i h_ui * W[i, j]`` over the items
``i`` of their (recency-weighted, ``recency.py``) history ``h_u``.

``W`` is stored sparse, each row ``i`` holding the items ``i`` votes for: its neighbour list.
What is evaluated is exactly what serves, so both read the same pruned matrix.

* **ItemKNN** (as in RecBole's ``ItemKNN``, Sarwar et al. 2001): cosine similarity of the
  binary interaction columns, ``G_ij / (|x_i| |x_j| + shrink)``; for each item ``j`` the ``k``
  most similar items ``i`` keep their similarity. Computed in column blocks from the sparse
  interaction matrix, so memory follows the block, not the catalogue squared.
* **EASE** (Steck, "Embarrassingly Shallow Autoencoders", 2019): ``P = (X^T X + lambda I)^-1``,
  ``B = I - P diag(1 / diag(P))`` (zero diagonal); dense, so above ``max_items`` it is fitted on
  the most-interacted items only, and each row keeps its ``neighbours`` largest weights (by
  magnitude: EASE's negative weights matter).
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

import numpy as np
import scipy.sparse as sp

from recsys_assets.core.io.sparse import Csr, dense_enough
from recsys_assets.core.models.metrics import Score

if TYPE_CHECKING:
    import optuna

#: Dense blocks of the similarity computation stay under this many floats (256 MB).
BLOCK_FLOATS = 64 * 1024 * 1024


@dataclass
class ItemItemFit:
    """One fitted ``W`` per setting tried (validation picks one, with the order)."""

    candidates: list[tuple[dict[str, float], sp.csr_matrix]]
    seconds: float
    notes: dict[str, Any] = field(default_factory=dict)


def interaction_matrix(train: Csr, n_items: int) -> sp.csr_matrix:
    """Users x items, 1 where the user has a train interaction with the item."""
    matrix = sp.csr_matrix(
        (np.ones(len(train.indices), dtype=np.float32), train.indices, train.indptr),
        shape=(len(train.indptr) - 1, n_items),
    )
    matrix.sum_duplicates()
    matrix.data[:] = 1.0
    return matrix


def top_per_row(matrix: np.ndarray, k: int, by_magnitude: bool = False) -> tuple[np.ndarray, np.ndarray]:
    """(columns, values) of the ``k`` largest entries of each row (by absolute value when
    ``by_magnitude``), zeros dropped later."""
    k = min(k, matrix.shape[1])
    key = np.abs(matrix) if by_magnitude else matrix
    columns = (
        np.argpartition(-key, k - 1, axis=1)[:, :k]
        if k < matrix.shape[1]
        else np.tile(np.arange(matrix.shape[1]), (matrix.shape[0], 1))
    )
    return columns, np.take_along_axis(matrix, columns, axis=1)


def _sparse(rows: np.ndarray, columns: np.ndarray, values: np.ndarray, n_items: int) -> sp.csr_matrix:
    keep = values != 0
    matrix = sp.csr_matrix(
        (values[keep].astype(np.float32), (rows[keep], columns[keep])), shape=(n_items, n_items)
    )
    matrix.sort_indices()
    return matrix


def itemknn(
    train: Csr,
    n_items: int,
    neighbours: tuple[int, ...],
    shrinks: tuple[float, ...],
    progress: Callable[[str], None] | None = None,
) -> ItemItemFit:
    """One ``W`` per (neighbours, shrink): ``W[i, j]`` = the similarity of ``i`` to ``j`` when
    ``i`` is among ``j``'s most similar items. Items without train interactions have no
    similarity to anything and are left out of the computation."""
    start = time.perf_counter()
    modelled = np.flatnonzero(np.bincount(train.indices, minlength=n_items) > 0)
    x = interaction_matrix(train, n_items)[:, modelled].tocsc()
    xt = x.T.tocsr()
    m = len(modelled)
    norms = np.sqrt(np.asarray(x.sum(axis=0)).ravel())
    k_max = min(max(neighbours), max(m - 1, 1))
    block = max(1, BLOCK_FLOATS // max(m, 1))
    per_shrink: dict[float, list[tuple[np.ndarray, np.ndarray]]] = {s: [] for s in shrinks}
    for lo in range(0, m, block):
        hi = min(m, lo + block)
        # (hi - lo) x m co-occurrence counts of the block's items with every modelled item.
        counts = np.asarray((xt[lo:hi] @ x).todense(), dtype=np.float32)
        for shrink in shrinks:
            similarity = counts / (norms[lo:hi, None] * norms[None, :] + shrink + 1e-6)
            similarity[np.arange(hi - lo), np.arange(lo, hi)] = 0.0
            columns, values = top_per_row(similarity, k_max)
            order = np.argsort(-values, axis=1, kind="stable")
            per_shrink[shrink].append(
                (np.take_along_axis(columns, order, 1).astype(np.int32), np.take_along_axis(values, order, 1))
            )
        if progress and hi < m:
            progress(f"itemknn: similarities of {hi:,} of {m:,} items")
    candidates = []
    for shrink, blocks in per_shrink.items():
        # Row r is target item modelled[r]; its neighbours (columns) vote for it.
        sources = modelled[np.concatenate([b[0] for b in blocks])]
        values = np.concatenate([b[1] for b in blocks])
        for k in neighbours:
            kk = min(k, sources.shape[1])
            w = _sparse(sources[:, :kk].ravel(), np.repeat(modelled, kk), values[:, :kk].ravel(), n_items)
            candidates.append(({"neighbours": float(k), "shrink": float(shrink)}, w))
    return ItemItemFit(candidates, time.perf_counter() - start, {"items_modelled": m})


#: Above this many items EASE inverts in float32 (half the memory; lambda keeps it well conditioned).
EASE_FLOAT64_ITEMS = 4_000


def ease(
    train: Csr,
    n_items: int,
    l2: tuple[float, ...],
    max_items: int,
    neighbours: int,
    progress: Callable[[str], None] | None = None,
) -> ItemItemFit:
    """One pruned ``B`` per lambda, on the ``max_items`` most-interacted items."""
    start = time.perf_counter()
    counts = np.bincount(train.indices, minlength=n_items)
    modelled = np.flatnonzero(counts > 0)
    notes: dict[str, Any] = {"items_modelled": len(modelled)}
    if len(modelled) > max_items:
        notes["note"] = (
            f"{len(modelled):,} items have train interactions, above ease.max_items {max_items:,}: "
            f"EASE models the {max_items:,} most-interacted; the others score 0"
        )
        modelled = np.sort(np.argsort(-counts, kind="stable")[:max_items])
        notes["items_modelled"] = int(max_items)
    m = len(modelled)
    dtype = np.float64 if m <= EASE_FLOAT64_ITEMS else np.float32
    x = interaction_matrix(train, n_items)[:, modelled]
    gram: np.ndarray = (x.T @ x).toarray().astype(dtype)
    diagonal = np.arange(m)
    candidates = []
    for lam in l2:
        if progress:
            progress(f"inverting {m:,} x {m:,} with lambda {lam:g}")
        regularised: np.ndarray = gram.copy()
        regularised[diagonal, diagonal] += lam
        weights = np.linalg.inv(regularised)
        del regularised
        weights /= -np.diag(weights)[None, :]
        weights[diagonal, diagonal] = 0.0
        columns, values = top_per_row(weights, neighbours or m, by_magnitude=True)
        del weights
        rows = np.repeat(modelled, columns.shape[1])
        candidates.append(
            ({"l2": float(lam)}, _sparse(rows, modelled[columns].ravel(), values.ravel(), n_items))
        )
    return ItemItemFit(candidates, time.perf_counter() - start, notes)


def scoring_matrix(weights: sp.csr_matrix) -> sp.csr_matrix | np.ndarray:
    """``W`` as it is best multiplied: dense when it is dense enough (``sparse.dense_enough``)."""
    return weights.toarray() if dense_enough(weights) else weights


def item_item_scorer(history: sp.csr_matrix, weights: sp.csr_matrix | np.ndarray) -> Score:
    """``score`` for ``metrics.top_k``: the users' weighted histories times ``W`` (``scoring_matrix``)."""

    def score(rows: np.ndarray) -> np.ndarray:
        product = history[rows] @ weights
        return np.asarray(product.todense() if sp.issparse(product) else product, dtype=np.float32)

    return score


def ease_space(trial: optuna.trial.BaseTrial) -> dict[str, Any]:
    """A search trial's overrides of ``EASEConfig``: one lambda a trial (the grid of one value)."""
    return {"l2": [trial.suggest_float("l2", 10.0, 5000.0, log=True)]}


def itemknn_space(trial: optuna.trial.BaseTrial) -> dict[str, Any]:
    """A search trial's overrides of ``ItemKNNConfig``: one k and shrinkage a trial."""
    return {
        "neighbours": [trial.suggest_int("neighbours", 10, 1000, log=True)],
        "shrink": [trial.suggest_float("shrink", 0.0, 100.0)],
    }
