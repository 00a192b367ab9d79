"""When things happened, for the ranker's time features: each user's "now" on a split (the time
of their first held-out interaction there, as a request would come at that moment) and the
interactions known by then (train for validation; train and validation for test, the history
rule of ``evaluation.py``), per item and per user, in days."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pandas as pd

from recsys_assets.core.leakage import timestamps_ns

DAY_NS = 86_400 * 10**9


@dataclass(frozen=True)
class Known:
    """The interactions known on one split: per item its days sorted (``item_indptr`` over
    ``item_days``), per user the day of their last one, and each user's now."""

    item_indptr: np.ndarray
    item_days: np.ndarray
    user_last: np.ndarray
    now: np.ndarray

    @classmethod
    def of(
        cls, users: np.ndarray, items: np.ndarray, days: np.ndarray, now: np.ndarray, n_items: int
    ) -> Known:
        order = np.lexsort((days, items))
        indptr = np.zeros(n_items + 1, dtype=np.int64)
        np.add.at(indptr, items + 1, 1)
        user_last = np.full(len(now), np.nan)
        if len(users):
            frame = pd.DataFrame({"u": users, "d": days}).groupby("u")["d"].max()
            user_last[frame.index.to_numpy()] = frame.to_numpy()
        return cls(np.cumsum(indptr), days[order], user_last, now)

    def item_count_between(self, items: np.ndarray, start: np.ndarray, end: np.ndarray) -> np.ndarray:
        """Per (item, window), how many known interactions of the item fall in ``[start, end)``
        (days). Vectorised: each item's days are one sorted segment, searched by offset."""
        lo, hi = self.item_indptr[items], self.item_indptr[items + 1]
        # Shift each segment into its own range so one searchsorted covers every item.
        span = (np.nanmax(self.item_days) - np.nanmin(self.item_days) + 1.0) if len(self.item_days) else 1.0
        base = np.nanmin(self.item_days) if len(self.item_days) else 0.0
        item_of = np.repeat(np.arange(len(self.item_indptr) - 1), np.diff(self.item_indptr))
        keys = item_of * (span + 2.0) + (self.item_days - base)
        a = items * (span + 2.0) + np.clip(start - base, -1.0, span + 1.0)
        b = items * (span + 2.0) + np.clip(end - base, -1.0, span + 1.0)
        count = np.searchsorted(keys, b, side="left") - np.searchsorted(keys, a, side="left")
        return np.clip(count, 0, hi - lo).astype(np.float32)

    def item_first(self, items: np.ndarray) -> np.ndarray:
        """The day of each item's first known interaction (NaN: none)."""
        lo, hi = self.item_indptr[items], self.item_indptr[items + 1]
        first = np.full(len(items), np.nan)
        has = hi > lo
        first[has] = self.item_days[lo[has]]
        return first


@dataclass(frozen=True)
class Timeline:
    """``Known`` for validation and test."""

    val: Known
    test: Known

    def split(self, name: str) -> Known:
        return self.val if name == "val" else self.test


def timeline(users: np.ndarray, items: np.ndarray, split: np.ndarray, ts: pd.Series, n_users: int,
             n_items: int) -> Timeline:  # fmt: skip
    """Each split's known interactions and users' now from the split rows (node indices)."""
    days = timestamps_ns(ts).astype(np.float64) / DAY_NS
    known = {}
    for name, seen in (("val", split == "train"), ("test", (split == "train") | (split == "val"))):
        now = np.full(n_users, np.nan)
        held = split == name
        if held.any():
            first = pd.DataFrame({"u": users[held], "d": days[held]}).groupby("u")["d"].min()
            now[first.index.to_numpy()] = first.to_numpy()
        known[name] = Known.of(users[seen], items[seen], days[seen], now, n_items)
    return Timeline(known["val"], known["test"])
