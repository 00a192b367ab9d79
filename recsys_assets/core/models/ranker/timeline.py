"""When things happened, for the ranker's time features: each user's "now" on a split (the time
of their first held-out interaction there, as a request would come at that moment) and the
interactions known by then (train for validation; train and validation for test, the history
rule of ``evaluation.py``), per item and per user, in days."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pandas as pd

from recsys_assets.core.leakage import timestamps_ns
from recsys_assets.core.ranking.known import Known

DAY_NS = 86_400 * 10**9


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
