"""The split interactions as per-user item lists over node indices: what every model trains
and is evaluated on."""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np
import pandas as pd

from recsys_assets.core.graphs.node_maps import NodeMaps
from recsys_assets.core.graphs.splits import history_positions
from recsys_assets.core.io.codecs import read_json, read_parquet
from recsys_assets.core.io.sparse import Csr
from recsys_assets.core.leakage import TrainedOn, timestamps_ns

#: Cold-start slice: held-out interactions whose item had at most this many train interactions.
COLD_START_MAX_TRAIN = 2


@dataclass
class TrainingData:
    """Each user's train, validation and test items as node indices.

    ``train.values``: where each train item falls in the user's train history in time, from 0
    (first) to 1 (last; also a user's only item), ``recency.py``. ``test_history``: the train
    and validation items together, positioned in time over both: the history a model reads
    when it is tested, as a deployed model would know it (the models stay fitted on train).
    ``train_rows``: the train rows as read (user, item, ts), from which ``trained_on`` records
    what a component fitted on (``core/leakage.py``); ``val_rows`` likewise, for the ranker
    (it learns from validation).
    """

    train: Csr
    val: Csr
    test: Csr
    n_items: int
    test_history: Csr | None = None
    train_rows: pd.DataFrame | None = field(default=None, repr=False)
    val_rows: pd.DataFrame | None = field(default=None, repr=False)

    @property
    def n_users(self) -> int:
        return len(self.train.indptr) - 1

    def history(self, split: str) -> Csr:
        """The history a model reads when it is scored on ``split``: train for validation,
        ``test_history`` for test (train alone when none was built)."""
        return self.test_history if split == "test" and self.test_history is not None else self.train

    def train_counts(self) -> np.ndarray:
        """Train interactions per item."""
        return np.bincount(self.train.indices, minlength=self.n_items)

    def trained_on(self, with_val: bool = False) -> TrainedOn:
        """The record of this data's train rows (and validation rows: ``with_val``), for a
        component fitted on them."""
        if self.train_rows is None or (with_val and self.val_rows is None):
            raise ValueError("this training data was not read from interaction_splits: no rows to record")
        rows = pd.concat([self.train_rows, self.val_rows]) if with_val else self.train_rows
        return TrainedOn.of_frame(rows)

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
    ts = timestamps_ns(splits["ts"]) if "ts" in splits.columns else None
    train = split == "train"
    parts["train"] = Csr.from_pairs(
        users[train],
        items[train],
        n_users,
        history_positions(users[train], None if ts is None else ts[train]),
    )
    seen = train | (split == "val")
    test_history = Csr.from_pairs(
        users[seen], items[seen], n_users, history_positions(users[seen], None if ts is None else ts[seen])
    )
    rows = {
        name: splits.loc[split == name, ["user_id", "item_id", "ts"]].reset_index(drop=True)
        if ts is not None
        else None
        for name in ("train", "val")
    }
    return TrainingData(
        parts["train"], parts["val"], parts["test"], n_items, test_history, rows["train"], rows["val"]
    )


def load_training_data(splits_uri: str, node_maps_uri: str) -> TrainingData:
    """``training_data`` from the ``interaction_splits`` and ``node_maps`` artifacts."""
    maps = NodeMaps.from_json(read_json(node_maps_uri))
    splits = read_parquet(splits_uri, columns=["user_id", "item_id", "ts", "split"])
    return training_data(splits, maps, splits_uri)
