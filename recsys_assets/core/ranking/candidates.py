"""Candidates from every retriever's scores of the whole catalogue: for each user, the union of
each retriever's top ``N`` eligible items, with every retriever's score, standardised score and
rank of every candidate (``candidate_batch``). The scores come from wherever the caller has
them: the trained models for a batch of users (``core/models/ranker/candidates.py``), a served
version's arrays for one request (``online.py``)."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass

import numpy as np


@dataclass
class CandidateBatch:
    """The candidates of a batch of users, one row per (user, candidate).

    ``position``: the user's place in the batch; ``users``: the batch's user nodes; ``items``:
    the candidate item nodes; ``scores[s]``: source ``s``'s score of each candidate (whether or
    not it proposed it); ``z[s]``: that score standardised over the user's eligible items (the
    scale differs by user); ``ranks[s]``: its rank in ``s``'s list (1 first), NaN when ``s``
    did not propose it.
    """

    users: np.ndarray
    position: np.ndarray
    items: np.ndarray
    scores: dict[str, np.ndarray]
    z: dict[str, np.ndarray]
    ranks: dict[str, np.ndarray]

    @property
    def user_nodes(self) -> np.ndarray:
        return self.users[self.position]

    def proposed_by(self, source: str) -> np.ndarray:
        return ~np.isnan(self.ranks[source])


def top_rows(values: np.ndarray, k: int) -> tuple[np.ndarray, np.ndarray]:
    """Per row, the ``k`` largest values' columns, best first, ties by column ascending (so the
    same scores always give the same list, in training and in the API), and whether each is
    finite (``-inf`` marks an ineligible item)."""
    n = values.shape[1]
    k = min(k, n)
    if k < n:
        part = np.argpartition(-values, k - 1, axis=1)[:, :k]
        kth = np.take_along_axis(values, part, axis=1).min(axis=1, keepdims=True)
        # Every value above the k-th, then the k-th's ties by column: a deterministic set.
        above = values > kth
        need = k - above.sum(axis=1, keepdims=True)
        tied = values == kth
        chosen = above | (tied & (np.cumsum(tied, axis=1) <= need))
        columns = np.nonzero(chosen)[1].reshape(len(values), k)
    else:
        columns = np.broadcast_to(np.arange(n), values.shape).copy()
    picked = np.take_along_axis(values, columns, axis=1)
    order = np.lexsort((columns, -picked), axis=1)
    columns = np.take_along_axis(columns, order, axis=1)
    return columns, np.isfinite(np.take_along_axis(picked, order, axis=1))


def candidate_batch(
    users: np.ndarray,
    full: Mapping[str, np.ndarray],
    excluded: np.ndarray,
    only: Mapping[str, np.ndarray | None],
    per_source: int,
) -> CandidateBatch:
    """The candidates of ``users`` from each source's ``(len(users), n_items)`` scores
    (``full``): its top ``per_source`` items that are not ``excluded`` (and, for a source with
    an ``only`` mask, among those items). Every source at once (one top-k and one pass of sums
    over a sources x users x items array: per source, numpy's per-call cost was most of a
    request's)."""
    names = list(full)
    n_users, n_items = excluded.shape
    scores = np.stack([full[name] for name in names])  # sources x users x items
    eligible = np.broadcast_to(~excluded, scores.shape).copy()
    for s, name in enumerate(names):
        mask = only.get(name)
        if mask is not None:
            eligible[s] &= mask[None, :]
    # A NaN score (none should come) would count as ineligible, never as a candidate.
    ranked = np.where(eligible & ~np.isnan(scores), scores, -np.inf).reshape(-1, n_items)
    columns, keep = top_rows(ranked, per_source)
    k = columns.shape[1]
    rows = np.repeat(np.arange(len(ranked)), k)
    flat = np.full((len(ranked), n_items), np.nan, dtype=np.float32)
    places = np.tile(np.arange(1, k + 1, dtype=np.float32), len(ranked))
    flat[rows[keep.ravel()], columns[keep]] = places[keep.ravel()]
    rank = flat.reshape(len(names), n_users, n_items)
    position, items = np.nonzero((~np.isnan(rank)).any(axis=0))
    # The eligible items' mean and standard deviation, in float64 (not nanmean and nanstd: a third
    # of a request's time).
    count = np.maximum((~excluded).sum(axis=1), 1)
    kept = np.where(excluded[None], 0.0, scores.astype(np.float64))
    mean = kept.sum(axis=2) / count
    std = np.sqrt(np.maximum((kept * kept).sum(axis=2) / count - mean * mean, 0.0))
    picked = scores[:, position, items]
    z = ((picked - mean[:, position]) / np.maximum(std[:, position], 1e-9)).astype(np.float32)
    ranks = rank[:, position, items]
    return CandidateBatch(
        users, position, items, {n: picked[s] for s, n in enumerate(names)},
        {n: z[s] for s, n in enumerate(names)}, {n: ranks[s] for s, n in enumerate(names)},
    )  # fmt: skip
