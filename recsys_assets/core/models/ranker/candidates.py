"""Candidates for the two-stage ranker from the trained models: for each user, the union of the
top ``N`` items of every retriever, with every retriever's score of every candidate
(``core/ranking/candidates.py`` assembles them; the API does the same from a served version).

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

from recsys_assets.core.io.sparse import Csr
from recsys_assets.core.models.metrics import SCORE_BUDGET, Score
from recsys_assets.core.ranking.candidates import CandidateBatch, candidate_batch

#: A source's scorer for whichever history it is given (``evaluation.ScoreFor``).
ScoreFor = Callable[[Csr], Score]


@dataclass(frozen=True)
class Source:
    """One retriever: its name, its scorer and the items it may propose (None: any)."""

    name: str
    score_for: ScoreFor
    only: np.ndarray | None = None


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
    only = {s.name: s.only for s in sources}
    batch = candidate_batch_size(n_items, len(sources))
    for lo in range(0, len(users), batch):
        rows = users[lo : lo + batch]
        excluded = np.zeros((len(rows), n_items), dtype=bool)
        for csr in exclude:
            position, items = csr.pairs(rows)
            excluded[position, items] = True
        full: dict[str, np.ndarray] = {}
        for source, score in scorers:
            scores = np.array(score(rows), dtype=np.float32, copy=True)
            if scores.shape != (len(rows), n_items):
                raise ValueError(
                    f"candidate source {source.name}: scored {list(scores.shape)} for {len(rows)} users x "
                    f"{n_items} items"
                )
            full[source.name] = scores
        yield candidate_batch(rows, full, excluded, only, per_source)
