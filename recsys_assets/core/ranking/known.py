"""What the ranker's time features read: the interactions known at some moment, per item and per
user, in days (``core/models/ranker/timeline.py`` makes them for each split; a serving version
stores those of its history)."""

from __future__ import annotations

from dataclasses import dataclass
from functools import cached_property

import numpy as np
import pandas as pd


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
        keys, span, base = self._keys
        a = items * (span + 2.0) + np.clip(start - base, -1.0, span + 1.0)
        b = items * (span + 2.0) + np.clip(end - base, -1.0, span + 1.0)
        count = np.searchsorted(keys, b, side="left") - np.searchsorted(keys, a, side="left")
        return np.clip(count, 0, hi - lo).astype(np.float32)

    @cached_property
    def _keys(self) -> tuple[np.ndarray, float, float]:
        """Every known day shifted into its item's own range, so that one searchsorted covers
        every item; made once (per request it was a pass over every interaction)."""
        span = (np.nanmax(self.item_days) - np.nanmin(self.item_days) + 1.0) if len(self.item_days) else 1.0
        base = np.nanmin(self.item_days) if len(self.item_days) else 0.0
        item_of = np.repeat(np.arange(len(self.item_indptr) - 1), np.diff(self.item_indptr))
        return item_of * (span + 2.0) + (self.item_days - base), float(span), float(base)

    def item_first(self, items: np.ndarray) -> np.ndarray:
        """The day of each item's first known interaction (NaN: none)."""
        lo, hi = self.item_indptr[items], self.item_indptr[items + 1]
        first = np.full(len(items), np.nan)
        has = hi > lo
        first[has] = self.item_days[lo[has]]
        return first
