"""Recommendations over a loaded serving version: pure functions, no web framework.

Strategies, in order: a known user is scored from their own history (an embedding model: their
vector; an item-item model: their weighted history times the neighbour lists); an unknown
user with recent items known to the version is scored from those (the normalised mean of
their vectors, or the sum of their neighbour lists); anyone else gets the most popular items.
A user's train history, their recent items and the items they exclude are never recommended.

A request is planned (``plan``: strategy, query vector or scored candidates, exclusions), then
``ranking`` asks for the searches it needs (the API batches those of concurrent requests,
``serving.search_batcher``) and filters their hits (``take``). Item-item models need no
search: their candidates are every item some history item votes for, scored in the plan;
when fewer than ``k`` of them have a positive score, popular items fill the list (score 0).

A ranker version (two stages) ranks a known user's candidates in the plan
(``core/ranking/online.py``: every retriever's candidates, their features, LightGBM) and says
which retrievers proposed each item; everything else is answered by its fallback retriever's
files as above.
"""

from __future__ import annotations

from collections.abc import Generator, Iterable
from dataclasses import dataclass, field
from typing import Final, Literal

import numpy as np

from recsys_assets.core.ranking.online import TwoStage
from recsys_assets.core.serving.bundle import Bundle

Strategy = Literal["user", "recent_items", "popular"]
USER: Final = "user"
RECENT: Final = "recent_items"
POPULAR: Final = "popular"
#: (scores, rows) of one query, best first, as ``faiss.Index.search`` returns them for one row.
Hits = tuple[np.ndarray, np.ndarray]


@dataclass
class Plan:
    strategy: Strategy
    #: The query vector (float32, 1-d); None for the popularity fallback.
    query: np.ndarray | None
    excluded: set[int]
    k: int
    #: Ids the request named that the version does not know (reported, never silently dropped).
    unknown_items: list[str] = field(default_factory=list)
    #: Item-item models: every candidate's score, best first (no search needed).
    candidates: Hits | None = None
    #: A ranker version's ranked candidates (no search needed).
    two_stage: TwoStage | None = None

    def first_fetch(self) -> int:
        return self.k + len(self.excluded)


@dataclass
class Ranked:
    items: list[int]
    scores: list[float]
    strategy: Strategy
    unknown_items: list[str] = field(default_factory=list)
    #: Two stages: the retrievers that proposed each item (popular fill-ins: none).
    sources: list[list[str]] | None = None


def _known(bundle: Bundle, ids: Iterable[str]) -> tuple[list[int], list[str]]:
    known, unknown = [], []
    for item_id in ids:
        index = bundle.item_index.get(item_id)
        if index is None:
            unknown.append(item_id)
        else:
            known.append(index)
    return known, unknown


def neighbour_hits(bundle: Bundle, rows: np.ndarray, weights: np.ndarray) -> Hits:
    """Every item the given history items vote for, with the summed weighted votes, best
    first (ties by item index)."""
    neighbours = bundle.neighbours
    assert neighbours is not None
    starts, ends = neighbours.indptr[rows], neighbours.indptr[rows + 1]
    counts = ends - starts
    total = int(counts.sum())
    positions = np.repeat(starts - (np.cumsum(counts) - counts), counts) + np.arange(total)
    items, inverse = np.unique(neighbours.indices[positions], return_inverse=True)
    votes = neighbours.data[positions] * np.repeat(weights.astype(np.float32), counts)
    scores = np.bincount(inverse, weights=votes, minlength=len(items))
    order = np.lexsort((items, -scores))
    return scores[order].astype(np.float32), items[order].astype(np.int64)


def plan(bundle: Bundle, user_id: str, k: int, recent_items: list[str], exclude_items: list[str]) -> Plan:
    recent, unknown_recent = _known(bundle, recent_items)
    exclude, unknown_exclude = _known(bundle, exclude_items)
    excluded = set(recent) | set(exclude)
    unknown = unknown_recent + unknown_exclude
    user = bundle.user_index.get(user_id)
    if bundle.ranker is not None and user is not None:
        excluded.update(bundle.history(user).tolist())
        return Plan(USER, None, excluded, k, unknown, two_stage=bundle.ranker.rank(user, excluded))
    if bundle.neighbours is not None:
        return _neighbour_plan(bundle, user, recent, excluded, k, unknown)
    return _vector_plan(bundle, user, recent, excluded, k, unknown)


def _neighbour_plan(
    bundle: Bundle, user: int | None, recent: list[int], excluded: set[int], k: int, unknown: list[str]
) -> Plan:
    if user is not None:
        rows, weights = bundle.weighted_history(user)
        excluded.update(rows.tolist())
        return Plan(USER, None, excluded, k, unknown, neighbour_hits(bundle, rows, weights))
    if recent:
        rows = np.array(recent, dtype=np.int64)
        return Plan(RECENT, None, excluded, k, unknown, neighbour_hits(bundle, rows, np.ones(len(rows))))
    return Plan(POPULAR, None, excluded, k, unknown)


def _vector_plan(
    bundle: Bundle, user: int | None, recent: list[int], excluded: set[int], k: int, unknown: list[str]
) -> Plan:
    assert bundle.users is not None
    assert bundle.items is not None
    if user is not None:
        excluded.update(bundle.history(user).tolist())
        return Plan(USER, bundle.users[user], excluded, k, unknown)
    if recent:
        # A cold user's query: the normalised mean of their recent items' vectors
        # (normalising the sum gives the same vector, with less numpy overhead).
        total = np.add.reduce(bundle.items[recent], dtype=np.float32)
        norm = float(np.sqrt(total @ total))
        if norm > 0:
            total /= norm
            return Plan(RECENT, total, excluded, k, unknown)
    return Plan(POPULAR, None, excluded, k, unknown)


def take(hits: Hits, k: int, excluded: set[int]) -> tuple[list[int], list[float]]:
    """The first ``k`` hits not excluded."""
    items, kept = [], []
    # Scores rounded to 6 places for the response, vectorised (``round`` per item cost more
    # than the rest of the response).
    scores = hits[0].astype(np.float64).round(6).tolist()
    for row, score in zip(hits[1].tolist(), scores, strict=True):
        if row >= 0 and row not in excluded:
            items.append(row)
            kept.append(score)
            if len(items) == k:
                break
    return items, kept


def popular(bundle: Bundle, k: int, excluded: set[int]) -> tuple[list[int], list[float]]:
    items: list[int] = []
    for row in bundle.popular[: k + len(excluded)].tolist():
        if row not in excluded:
            items.append(row)
            if len(items) == k:
                break
    return items, [float(bundle.popularity[row]) for row in items]


def scored_candidates(bundle: Bundle, planned: Plan) -> tuple[list[int], list[float]]:
    """An item-item plan's first ``k`` candidates with a positive score, then popular items."""
    assert planned.candidates is not None
    scores, rows = planned.candidates
    positive = int(np.searchsorted(-scores, 0.0, side="left"))
    items, kept = take((scores[:positive], rows[:positive]), planned.k, planned.excluded)
    if len(items) < planned.k:
        fill, _ = popular(bundle, planned.k - len(items), planned.excluded | set(items))
        items, kept = items + fill, kept + [0.0] * len(fill)
    return items, kept


def two_stage_ranked(bundle: Bundle, planned: Plan, ranked: TwoStage) -> Ranked:
    """The ranker's first ``k`` candidates (its order; they exclude what the plan excludes), then
    popular items when there are fewer candidates than ``k`` (score 0, no source)."""
    n = min(planned.k, len(ranked.items))
    items = ranked.items[:n].tolist()
    scores = ranked.scores[:n].astype(np.float64).round(6).tolist()
    sources = ranked.sources(range(n))
    if n < planned.k:
        fill, _ = popular(bundle, planned.k - n, planned.excluded | set(items))
        items, scores, sources = items + fill, scores + [0.0] * len(fill), sources + [[] for _ in fill]
    return Ranked(items, scores, planned.strategy, planned.unknown_items, sources)


#: ``ranking`` yields (query, n) searches and is sent their hits; it returns the result.
Ranking = Generator[tuple[np.ndarray, int], Hits, Ranked]


def ranking(bundle: Bundle, planned: Plan) -> Ranking:
    """Search until ``k`` items survive the exclusions (or the catalogue is exhausted); the
    caller runs each search it yields, in whatever way suits it (the API batches them)."""
    if planned.two_stage is not None:
        return two_stage_ranked(bundle, planned, planned.two_stage)
    if planned.candidates is not None:
        return Ranked(*scored_candidates(bundle, planned), planned.strategy, planned.unknown_items)
    if planned.query is None:
        return Ranked(*popular(bundle, planned.k, planned.excluded), planned.strategy, planned.unknown_items)
    total, fetch = bundle.index.ntotal, planned.first_fetch()
    while True:
        n = min(fetch, total)
        items, scores = take((yield planned.query, n), planned.k, planned.excluded)
        if len(items) == planned.k or n >= total:
            return Ranked(items, scores, planned.strategy, planned.unknown_items)
        fetch *= 2


def similar_plan(bundle: Bundle, item: int, k: int) -> Plan:
    """The item's nearest items: by vector, or the items its neighbour list votes for."""
    if bundle.neighbours is not None:
        return Plan(USER, None, {item}, k, candidates=neighbour_hits(bundle, np.array([item]), np.ones(1)))
    assert bundle.items is not None
    return Plan(USER, bundle.items[item], {item}, k)
