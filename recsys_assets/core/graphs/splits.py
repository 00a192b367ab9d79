"""The train / validation / test split every learned component and metric in this project uses.

The rule, exactly (so results compare with other systems):

* every review is an implicit positive;
* **repeated (user, item) interactions collapse to the first**: a user who reviews (or buys)
  an item again later keeps one row for the pair, at the time and with the rating of the first
  event, with ``events`` (how many there were) and ``last_ts`` (the latest) beside it. The
  task evaluated and served is recommending items a user has not had yet (a user's own items
  are excluded from their rankings), so a later event of a pair the user already has could
  never be a hit: kept as its own row it would be a target no model can reach, and one more
  training pair for some models than for others. Collapsed, the split, the user-item edges,
  every model and the fused embeddings see one and the same set of pairs;
* per user, the pairs are ordered by ``(ts, item_id)`` ascending, item ids compared as
  integers when every id is an integer, as strings otherwise;
* a user with ``n >= 3`` pairs gets ``n_test = n_val = max(1, floor(n / 10))``: the last
  ``n_test`` are test, the ``n_val`` before them validation, the rest train; a user with
  ``n < 3`` goes wholly to train.
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
    #: Later events of a (user, item) pair the user already had, folded into its first row.
    repeated_pairs: int
    item_order: str


def history_positions(users: np.ndarray, order_key: np.ndarray | None) -> np.ndarray:
    """Per row, its place in its user's history, scaled to [0, 1]: 0 for the first, 1 for the
    last and for a user's only row; ordered by ``order_key`` (timestamps), ties and a missing
    key in row order."""
    rows = np.arange(len(users))
    order = np.lexsort((rows, users) if order_key is None else (rows, order_key, users))
    sorted_users = users[order]
    starts = np.flatnonzero(np.r_[True, sorted_users[1:] != sorted_users[:-1]])
    counts = np.diff(np.r_[starts, len(users)])
    rank = rows - np.repeat(starts, counts)
    size = np.repeat(counts, counts)
    position = np.empty(len(users), dtype=np.float64)
    position[order] = np.where(size > 1, rank / np.maximum(size - 1, 1), 1.0)
    return position


def item_sort_key(item_ids: pd.Series) -> tuple[pd.Series, str]:
    """Integers when every id is an integer string, else the strings themselves."""
    as_text = item_ids.astype(str)
    if len(as_text) and as_text.str.fullmatch(r"-?\d+").all():
        return as_text.astype(np.int64), "integer"
    return as_text, "string"


def collapse_repeats(ordered: pd.DataFrame) -> pd.DataFrame:
    """``ordered`` (sorted by user, then time) with one row per (user, item): the first, plus
    ``events`` and ``last_ts``."""
    pair = ordered.groupby(["user_id", "item_id"], sort=False, observed=True)
    events = pair["ts"].transform("size").to_numpy()
    last_ts = pair["ts"].transform("max")
    first = ~ordered.duplicated(["user_id", "item_id"], keep="first").to_numpy()
    out = ordered.assign(events=events.astype(np.int32), last_ts=last_ts)
    return out[first].reset_index(drop=True)


def split_interactions(interactions: pd.DataFrame) -> SplitResult:
    """``interactions`` with repeated pairs collapsed and a ``split`` column, rows ordered by
    user then (ts, item)."""
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
    collapsed = collapse_repeats(ordered)
    users = collapsed["user_id"]
    rank = collapsed.groupby(users, sort=False).cumcount().to_numpy()
    n = users.map(users.value_counts()).to_numpy()
    held = np.where(n >= 3, np.maximum(1, n // 10), 0)
    split = np.full(len(collapsed), "train", dtype=object)
    split[rank >= n - 2 * held] = "val"
    split[rank >= n - held] = "test"
    collapsed["split"] = pd.Categorical(split, categories=list(SPLITS))
    return SplitResult(collapsed, len(ordered) - len(collapsed), item_order)
