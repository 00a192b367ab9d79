"""Recommendations over a loaded serving bundle: pure functions, no web framework.

Strategies, in order: a known user is scored with their own vector; an unknown user with
recent items known to the bundle gets the normalised mean of those items' vectors; anyone
else gets the most popular items. A user's train history, their recent items and the items
they exclude are never recommended.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import Final, Literal

import numpy as np

from recsys_assets.core.serving_index import Bundle

Strategy = Literal["user", "recent_items", "popular"]
USER: Final = "user"
RECENT: Final = "recent_items"
POPULAR: Final = "popular"


@dataclass
class Ranked:
    items: list[int]
    scores: list[float]
    strategy: Strategy
    #: Ids the request named that the bundle does not know (reported, never silently dropped).
    unknown_items: list[str] = field(default_factory=list)


def _known(bundle: Bundle, ids: Iterable[str]) -> tuple[list[int], list[str]]:
    known, unknown = [], []
    for item_id in ids:
        index = bundle.item_index.get(item_id)
        if index is None:
            unknown.append(item_id)
        else:
            known.append(index)
    return known, unknown


def search(bundle: Bundle, query: np.ndarray, k: int, excluded: set[int]) -> tuple[list[int], list[float]]:
    """The top ``k`` items by inner product with ``query``, skipping ``excluded``; asks the
    index for more until ``k`` remain (or the catalogue is exhausted)."""
    total = bundle.index.ntotal
    fetch = k + len(excluded)
    query = np.ascontiguousarray(query.reshape(1, -1), dtype=np.float32)
    while True:
        n = min(fetch, total)
        scores, rows = bundle.index.search(query, n)
        items, kept = [], []
        for row, score in zip(rows[0].tolist(), scores[0].tolist(), strict=True):
            if row >= 0 and row not in excluded:
                items.append(row)
                kept.append(score)
                if len(items) == k:
                    return items, kept
        if n >= total:
            return items, kept
        fetch *= 2


def popular(bundle: Bundle, k: int, excluded: set[int]) -> tuple[list[int], list[float]]:
    items: list[int] = []
    for row in bundle.popular.tolist():
        if row not in excluded:
            items.append(row)
            if len(items) == k:
                break
    return items, [float(bundle.popularity[row]) for row in items]


def recommend(
    bundle: Bundle, user_id: str, k: int, recent_items: list[str], exclude_items: list[str]
) -> Ranked:
    recent, unknown_recent = _known(bundle, recent_items)
    exclude, unknown_exclude = _known(bundle, exclude_items)
    excluded = set(recent) | set(exclude)
    user = bundle.user_index.get(user_id)
    unknown = unknown_recent + unknown_exclude
    if user is not None:
        excluded.update(bundle.history(user).tolist())
        return Ranked(*search(bundle, bundle.users[user], k, excluded), USER, unknown)
    if recent:
        # The source project's cold-user approach: the normalised mean of their items' vectors.
        mean = bundle.items[recent].mean(axis=0)
        norm = float(np.linalg.norm(mean))
        if norm > 0:
            return Ranked(*search(bundle, mean / norm, k, excluded), RECENT, unknown)
    return Ranked(*popular(bundle, k, excluded), POPULAR, unknown)


def similar(bundle: Bundle, item: int, k: int) -> tuple[list[int], list[float]]:
    return search(bundle, bundle.items[item], k, {item})
