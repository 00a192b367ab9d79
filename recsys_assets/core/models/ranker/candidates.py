"""Candidates for the two-stage ranker: for each user, the union of the top ``N`` items of every
retriever, with every retriever's score of every candidate.

A retriever (``Source``) scores the whole catalogue for a batch of users from the history it is
given, exactly as a model is evaluated (``Scorable.scoring``): the train history when the
ranker learns from validation, train and validation when it is tested or serves. The user's
own items (the history, and whatever else is excluded) are never candidates. A source may be
restricted to some items (``only``: the items with few or no train interactions, reached by
content).
"""

from __future__ import annotations

from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass

import numpy as np
import torch

from recsys_assets.core.models.metrics import SCORE_BUDGET, Csr, Score

#: A source's scorer for whichever history it is given (``evaluation.ScoreFor``).
ScoreFor = Callable[[Csr], Score]


@dataclass(frozen=True)
class Source:
    """One retriever: its name, its scorer and the items it may propose (None: any)."""

    name: str
    score_for: ScoreFor
    only: np.ndarray | None = None


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


def candidate_batch_size(n_items: int, n_sources: int) -> int:
    """Users per batch so that every source's scores of the batch stay within ``SCORE_BUDGET``."""
    return int(min(2048, max(8, SCORE_BUDGET // max(n_items * (n_sources + 1), 1))))


def candidates(
    sources: Sequence[Source],
    history: Csr,
    users: np.ndarray,
    exclude: Sequence[Csr],
    per_source: int,
    n_items: int,
) -> Iterator[CandidateBatch]:
    """The candidates of ``users`` in batches: every source reads ``history``; the items of
    ``exclude`` (the user's own) are never proposed."""
    if not sources:
        raise ValueError("no candidate source")
    scorers = [(s, s.score_for(history)) for s in sources]
    batch = candidate_batch_size(n_items, len(sources))
    for lo in range(0, len(users), batch):
        rows = users[lo : lo + batch]
        excluded = np.zeros((len(rows), n_items), dtype=bool)
        for csr in exclude:
            position, items = csr.pairs(rows)
            excluded[position, items] = True
        full: dict[str, np.ndarray] = {}
        proposed = np.zeros((len(rows), n_items), dtype=bool)
        rank_of: dict[str, np.ndarray] = {}
        for source, score in scorers:
            scores = np.array(score(rows), dtype=np.float32, copy=True)
            if scores.shape != (len(rows), n_items):
                raise ValueError(
                    f"candidate source {source.name}: scored {list(scores.shape)} for {len(rows)} users x "
                    f"{n_items} items"
                )
            full[source.name] = scores
            eligible = ~excluded if source.only is None else ~excluded & source.only[None, :]
            ranked = np.where(eligible, scores, -np.inf)
            k = min(per_source, n_items)
            values, chosen = torch.topk(torch.from_numpy(ranked), k, dim=1)
            chosen_np, keep = chosen.numpy(), np.isfinite(values.numpy())
            rank = np.full((len(rows), n_items), np.nan, dtype=np.float32)
            rows_idx = np.repeat(np.arange(len(rows)), k).reshape(len(rows), k)
            rank[rows_idx[keep], chosen_np[keep]] = np.tile(
                np.arange(1, k + 1, dtype=np.float32), (len(rows), 1)
            )[keep]
            proposed[rows_idx[keep], chosen_np[keep]] = True
            rank_of[source.name] = rank
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
        yield CandidateBatch(rows, position, items, out_scores, out_z, out_ranks)
