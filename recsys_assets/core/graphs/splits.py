"""The train / validation / test split every model and metric in this project uses.

The rule, exactly (so results compare with other systems):

* every review is an implicit positive;
* per user, interactions are ordered by ``(ts, item_id)`` ascending, item ids compared as
  integers when every id is an integer, as strings otherwise;
* a user with ``n >= 3`` interactions gets ``n_test = n_val = max(1, floor(n / 10))``: the
  last ``n_test`` are test, the ``n_val`` before them validation, the rest train; a user with
  ``n < 3`` goes wholly to train.

A later review of an already reviewed ``(user, item)`` pair stays its own row (so it can
land in a later split than the first one). The staged Amazon data has no such repeats: a
blocking check on ``interactions`` rejects duplicate events, and the 5-core dumps hold one
review per pair; ``split_interactions`` reports how many repeats it saw.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pandas as pd

SPLITS = ("train", "val", "test")
REQUIRED = ("user_id", "item_id", "ts")


@dataclass
class SplitResult:
    frame: pd.DataFrame
    #: Rows whose (user, item) pair appeared earlier for the same user.
    repeated_pairs: int
    item_order: str


def item_sort_key(item_ids: pd.Series) -> tuple[pd.Series, str]:
    """Integers when every id is an integer string, else the strings themselves."""
    as_text = item_ids.astype(str)
    if len(as_text) and as_text.str.fullmatch(r"-?\d+").all():
        return as_text.astype(np.int64), "integer"
    return as_text, "string"


def split_interactions(interactions: pd.DataFrame) -> SplitResult:
    """``interactions`` with a ``split`` column, rows ordered by user then (ts, item)."""
    missing = [c for c in REQUIRED if c not in interactions.columns]
    if missing:
        raise ValueError(f"interactions lack column(s) {missing}; have {list(interactions.columns)}")
    key, item_order = item_sort_key(interactions["item_id"])
    ordered = (
        interactions.assign(_item_key=key.to_numpy())
        .sort_values(["user_id", "ts", "_item_key"], kind="stable")
        .drop(columns="_item_key")
        .reset_index(drop=True)
    )
    users = ordered["user_id"]
    rank = ordered.groupby(users, sort=False).cumcount().to_numpy()
    n = users.map(users.value_counts()).to_numpy()
    held = np.where(n >= 3, np.maximum(1, n // 10), 0)
    split = np.full(len(ordered), "train", dtype=object)
    split[rank >= n - 2 * held] = "val"
    split[rank >= n - held] = "test"
    ordered["split"] = pd.Categorical(split, categories=list(SPLITS))
    repeated = int(ordered.duplicated(["user_id", "item_id"]).sum())
    return SplitResult(ordered, repeated, item_order)
