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
    an ``only`` mask, among those items)."""
    n_users, n_items = excluded.shape
    proposed = np.zeros((n_users, n_items), dtype=bool)
    rank_of: dict[str, np.ndarray] = {}
    for name, scores in full.items():
        mask = only.get(name)
        eligible = ~excluded if mask is None else ~excluded & mask[None, :]
        # A NaN score (none should come) would count as ineligible, never as a candidate.
        columns, keep = top_rows(np.where(eligible & ~np.isnan(scores), scores, -np.inf), per_source)
        k = columns.shape[1]
        rows = np.repeat(np.arange(n_users), k).reshape(n_users, k)
        rank = np.full((n_users, n_items), np.nan, dtype=np.float32)
        rank[rows[keep], columns[keep]] = np.tile(np.arange(1, k + 1, dtype=np.float32), (n_users, 1))[keep]
        proposed[rows[keep], columns[keep]] = True
        rank_of[name] = rank
    position, items = np.nonzero(proposed)
    out_scores, out_z, out_ranks = {}, {}, {}
    for name, scores in full.items():
        masked = np.where(excluded, np.nan, scores)
        mean = np.nanmean(masked, axis=1)
        std = np.nanstd(masked, axis=1)
        picked = scores[position, items]
        out_scores[name] = picked
        out_z[name] = ((picked - mean[position]) / np.maximum(std[position], 1e-9)).astype(np.float32)
        out_ranks[name] = rank_of[name][position, items]
    return CandidateBatch(users, position, items, out_scores, out_z, out_ranks)
