"""The ranker's features for each (user, candidate): one vectorised implementation that training,
evaluation and serving share. Every feature is named and described in ``FEATURES`` (the docs'
table and the importance table read it).

Per retriever ``s`` (``candidates.py``): ``s_score`` (its score of the candidate, whether or not
it proposed it), ``s_z`` (that score standardised over the user's eligible items) and
``s_rank`` (its rank in ``s``'s list; missing when ``s`` did not propose it). Per content space
``c`` (text, image, fused): the cosine of the candidate to the user's latest items, ``c_max``,
``c_mean`` and ``c_recent`` (weighted towards the latest). The item's and the user's activity,
and, when the interactions carry times, how recent they are.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

import numpy as np

from recsys_assets.core.io.sparse import Csr
from recsys_assets.core.ranking.candidates import CandidateBatch
from recsys_assets.core.ranking.known import Known

#: Per content space, per candidate.
CONTENT = {
    "max": "Highest cosine of the candidate's {space} vector to one of the user's latest items.",
    "mean": "Mean cosine of the candidate's {space} vector to the user's latest items.",
    "recent": "Cosine to the user's latest items, weighted towards the latest (exp(-decay * age rank)).",
}
#: Per retriever, per candidate.
SOURCE = {
    "score": "{source}'s score of the candidate (whether or not it proposed it).",
    "z": "{source}'s score standardised over the user's eligible items (the scale differs by user).",
    "rank": "The candidate's rank in {source}'s list (1 first); missing when {source} did not propose it.",
}
#: Of the item and the user.
ACTIVITY = {
    "item_count": "log(1 + the item's known interactions).",
    "user_count": "log(1 + the user's history length).",
    "sources": "How many retrievers proposed the candidate.",
}
#: When the interactions carry times (``timeline.py``); now is the request's time.
TIMES = {
    "item_recent_count": "log(1 + the item's known interactions in the {window:g} days before now).",
    "item_age_days": "Days from the item's first known interaction to now (missing: none).",
    "user_idle_days": "Days from the user's last known interaction to now.",
}


@dataclass(frozen=True)
class FeatureSpace:
    """What the features are built from: the retrievers' names, the content spaces' unit vectors
    (a NaN row: an item without that content), and the settings that shape them."""

    sources: tuple[str, ...]
    content: Mapping[str, np.ndarray]
    recent_items: int = 20
    recent_decay: float = 0.2
    window_days: float = 30.0
    times: bool = True
    #: Retrievers whose scores come from interactions alone (not content): for an item with at
    #: most ``mask_cold`` known interactions their features are missing, as the item's counts
    #: are (``interaction_columns``); None: never masked.
    interaction_sources: tuple[str, ...] = ()
    mask_cold: int | None = None

    def settings(self) -> dict[str, Any]:
        """Everything but the content vectors, as JSON (a serving version's ``ranker.json``)."""
        fields = {f.name: getattr(self, f.name) for f in dataclasses.fields(self) if f.name != "content"}
        return {**fields, "sources": list(self.sources), "content": list(self.content),
                "interaction_sources": list(self.interaction_sources)}  # fmt: skip

    @classmethod
    def from_settings(cls, settings: Mapping[str, Any], content: Mapping[str, np.ndarray]) -> FeatureSpace:
        """``settings()`` read back, with each named content space's vectors from ``content``."""
        return cls(**{
            **settings, "sources": tuple(settings["sources"]),
            "content": {space: content[space] for space in settings["content"]},
            "interaction_sources": tuple(settings["interaction_sources"]),
        })  # fmt: skip

    @property
    def names(self) -> list[str]:
        out = [f"{s}_{f}" for s in self.sources for f in SOURCE]
        out += [f"{c}_{f}" for c in self.content for f in CONTENT]
        out += list(ACTIVITY)
        out += list(TIMES) if self.times else []
        return out

    def interaction_columns(self) -> np.ndarray:
        """The columns an item's interactions make (masked for cold items and by dropout)."""
        names = self.names
        masked = {f"{s}_{f}" for s in self.interaction_sources for f in SOURCE}
        # How many retrievers proposed it counts the interaction ones too.
        masked |= {"item_count", "sources"} | (
            {"item_recent_count", "item_age_days"} if self.times else set()
        )
        return np.array([k for k, name in enumerate(names) if name in masked], dtype=np.int64)

    def descriptions(self) -> dict[str, str]:
        out = {f"{s}_{f}": text.format(source=s) for s in self.sources for f, text in SOURCE.items()}
        out |= {f"{c}_{f}": text.format(space=c) for c in self.content for f, text in CONTENT.items()}
        out |= ACTIVITY
        if self.times:
            out |= {name: text.format(window=self.window_days) for name, text in TIMES.items()}
        return out


def unit_rows(vectors: np.ndarray) -> np.ndarray:
    """Rows scaled to unit length (a zero row stays zero; NaN rows stay NaN)."""
    norms = np.linalg.norm(vectors, axis=1, keepdims=True)
    return (vectors / np.maximum(norms, 1e-12)).astype(np.float32)


def latest_items(history: Csr, users: np.ndarray, count: int) -> np.ndarray:
    """``(len(users), count)`` each user's latest history items, latest first (-1 pads)."""
    out = np.full((len(users), count), -1, dtype=np.int64)
    lengths = history.lengths()[users]
    flat = (
        np.repeat(history.indptr[users], lengths)
        + np.arange(lengths.sum())
        - np.repeat(np.cumsum(lengths) - lengths, lengths)
    )
    position = np.repeat(np.arange(len(users)), lengths)
    items = history.indices[flat]
    place = np.zeros(len(flat)) if history.values is None else history.values[flat]
    order = np.lexsort((-place, position))
    position, items = position[order], items[order]
    rank = np.arange(len(items)) - np.repeat(np.cumsum(lengths) - lengths, lengths)
    keep = rank < count
    out[position[keep], rank[keep]] = items[keep]
    return out


def content_features(
    unit: np.ndarray, latest: np.ndarray, batch: CandidateBatch, decay: float
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(max, mean, recency-weighted mean) cosine of each candidate to its user's latest items.
    Candidates come user by user (``candidate_batch``'s order), so each user's are compared with
    their latest items in one product (gathering the latest items' vectors per candidate cost
    most of a request)."""
    n = len(batch.items)
    if n and np.any(np.diff(batch.position) < 0):
        raise ValueError("content_features: the candidates must come user by user")
    sims = np.zeros((n, latest.shape[1]), dtype=np.float32)
    bounds = np.searchsorted(batch.position, np.arange(len(batch.users) + 1))
    for p in np.flatnonzero(np.diff(bounds)):
        a, b = bounds[p], bounds[p + 1]
        sims[a:b] = unit[batch.items[a:b]] @ unit[np.maximum(latest[p], 0)].T
    # -1 pads a short history: no similarity there (nor to an item without this content: NaN).
    sims[latest[batch.position] < 0] = np.nan
    weights = np.exp(-decay * np.arange(latest.shape[1], dtype=np.float32))
    valid = ~np.isnan(sims)
    w = np.where(valid, weights[None, :], 0.0)
    filled = np.where(valid, sims, 0.0)
    count = valid.sum(axis=1)
    has = count > 0
    best = np.where(has, np.where(valid, sims, -np.inf).max(axis=1, initial=-np.inf), np.nan)
    mean = np.where(has, filled.sum(axis=1) / np.maximum(count, 1), np.nan)
    recent = np.where(has, (filled * w).sum(axis=1) / np.maximum(w.sum(axis=1), 1e-12), np.nan)
    return best.astype(np.float32), mean.astype(np.float32), recent.astype(np.float32)


def features(
    space: FeatureSpace,
    batch: CandidateBatch,
    history: Csr,
    item_counts: np.ndarray,
    known: Known | None,
) -> np.ndarray:
    """``(candidates, len(space.names))`` float32 features of one batch, in ``space.names``'s order."""
    columns: list[np.ndarray] = []
    for s in space.sources:
        columns += [batch.scores[s], batch.z[s], batch.ranks[s]]
    latest = latest_items(history, batch.users, space.recent_items)
    for unit in space.content.values():
        columns += list(content_features(unit, latest, batch, space.recent_decay))
    user_nodes = batch.user_nodes
    columns.append(np.log1p(item_counts[batch.items]))
    lengths = history.indptr[batch.users + 1] - history.indptr[batch.users]  # the batch's users only
    columns.append(np.log1p(lengths[batch.position]))
    columns.append(np.sum([batch.proposed_by(s) for s in space.sources], axis=0))
    if space.times:
        if known is None:
            raise ValueError("time features need the interactions' times (a Timeline)")
        now = known.now[user_nodes]
        columns.append(np.log1p(known.item_count_between(batch.items, now - space.window_days, now)))
        columns.append(now - known.item_first(batch.items))
        columns.append(now - known.user_last[user_nodes])
    x = np.column_stack([np.asarray(c, dtype=np.float32) for c in columns])
    if space.mask_cold is not None:
        cold = item_counts[batch.items] <= space.mask_cold
        mask_rows(x, space.interaction_columns(), np.flatnonzero(cold))
    return x


def mask_rows(x: np.ndarray, columns: np.ndarray, rows: np.ndarray) -> None:
    """Set ``columns`` of ``rows`` missing, in place: what the ranker knows of an item nobody (or
    hardly anybody) has interacted with is its content (DropoutNet, Volkovs et al. 2017)."""
    if len(rows) and len(columns):
        x[np.ix_(rows, columns)] = np.nan
