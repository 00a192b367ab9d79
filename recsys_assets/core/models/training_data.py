"""The split interactions as per-user item lists over node indices: what every model trains
and is evaluated on."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pandas as pd

from recsys_assets.core.graphs.node_maps import NodeMaps
from recsys_assets.core.io.codecs import read_json, read_parquet
from recsys_assets.core.models.metrics import Csr

#: Cold-start slice: held-out interactions whose item had at most this many train interactions.
COLD_START_MAX_TRAIN = 2


@dataclass
class TrainingData:
    #: Each user's train items; ``train.values``: where each falls in the user's train history
    #: in time, from 0 (first) to 1 (last; also a user's only item), ``recency.py``.
    train: Csr
    val: Csr
    test: Csr
    n_items: int

    @property
    def n_users(self) -> int:
        return len(self.train.indptr) - 1

    def train_counts(self) -> np.ndarray:
        """Train interactions per item."""
        return np.bincount(self.train.indices, minlength=self.n_items)

    def summary(self) -> dict[str, int]:
        return {
            "users": self.n_users,
            "items": self.n_items,
            "train": len(self.train.indices),
            "val": len(self.val.indices),
            "test": len(self.test.indices),
            "items_with_train_interactions": int((self.train_counts() > 0).sum()),
        }


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


def training_data(splits: pd.DataFrame, maps: NodeMaps, source: str = "interaction_splits") -> TrainingData:
    """``splits`` (``user_id, item_id, split``, and ``ts`` for the order of each user's
    history) on the node indices of ``maps``.

    Every validation and test user must be a train user (the split rule guarantees it), and
    every item must have a node; anything else is a stale artifact and is named.
    """
    missing = [c for c in ("user_id", "item_id", "split") if c not in splits.columns]
    if missing:
        raise ValueError(f"{source}: missing column(s) {missing}")
    try:
        users = maps.user_index(splits["user_id"].astype(str))
        items = maps.item_index(splits["item_id"].astype(str))
    except KeyError as exc:
        raise ValueError(f"{source}: {exc.args[0]}; rematerialize node_maps") from exc
    split = splits["split"].astype(str).to_numpy()
    n_users, n_items = len(maps.users), len(maps.items)
    parts = {
        name: Csr.from_pairs(users[split == name], items[split == name], n_users) for name in ("val", "test")
    }
    train = split == "train"
    ts = (
        pd.to_datetime(splits["ts"], utc=True).to_numpy(dtype="datetime64[ns]").astype(np.int64)[train]
        if "ts" in splits.columns
        else None
    )
    positions = history_positions(users[train], ts)
    parts["train"] = Csr.from_pairs(users[train], items[train], n_users, positions)
    return TrainingData(parts["train"], parts["val"], parts["test"], n_items)


def load_training_data(splits_uri: str, node_maps_uri: str) -> TrainingData:
    """``training_data`` from the ``interaction_splits`` and ``node_maps`` artifacts."""
    maps = NodeMaps.from_json(read_json(node_maps_uri))
    splits = read_parquet(splits_uri, columns=["user_id", "item_id", "ts", "split"])
    return training_data(splits, maps, splits_uri)
