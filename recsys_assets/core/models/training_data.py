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


def training_data(splits: pd.DataFrame, maps: NodeMaps, source: str = "interaction_splits") -> TrainingData:
    """``splits`` (``user_id, item_id, split``) on the node indices of ``maps``.

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
        name: Csr.from_pairs(users[split == name], items[split == name], n_users)
        for name in ("train", "val", "test")
    }
    return TrainingData(parts["train"], parts["val"], parts["test"], n_items)


def load_training_data(splits_uri: str, node_maps_uri: str) -> TrainingData:
    """``training_data`` from the ``interaction_splits`` and ``node_maps`` artifacts."""
    maps = NodeMaps.from_json(read_json(node_maps_uri))
    splits = read_parquet(splits_uri, columns=["user_id", "item_id", "split"])
    return training_data(splits, maps, splits_uri)
