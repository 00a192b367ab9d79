"""Node maps: user and item ids <-> node indices, shared by every graph, model and export."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pandas as pd


@dataclass
class NodeMaps:
    """Node index = position in these lists. Items follow ``items`` row order, which is also
    the row order of every item embedding; users are the train users, sorted by id."""

    users: list[str]
    items: list[str]

    def to_json(self) -> dict[str, list[str]]:
        return {"users": self.users, "items": self.items}

    @classmethod
    def from_json(cls, data: dict[str, list[str]]) -> NodeMaps:
        return cls(list(data["users"]), list(data["items"]))

    def user_index(self, ids: pd.Series) -> np.ndarray:
        return _index(self.users, ids, "user_id")

    def item_index(self, ids: pd.Series) -> np.ndarray:
        return _index(self.items, ids, "item_id")


def _index(names: list[str], ids: pd.Series, field: str) -> np.ndarray:
    lookup = pd.Index(names)
    positions = lookup.get_indexer(pd.Index(ids))
    if (positions < 0).any():
        bad = ids[positions < 0].iloc[0]
        raise KeyError(f"{field} {bad!r} has no node ({int((positions < 0).sum())} such rows)")
    return positions.astype(np.int32)


def build_node_maps(item_ids: pd.Series, train: pd.DataFrame) -> NodeMaps:
    if item_ids.duplicated().any():
        raise ValueError(f"items: item_id {item_ids[item_ids.duplicated()].iloc[0]!r} appears twice")
    return NodeMaps(sorted(train["user_id"].astype(str).unique()), item_ids.astype(str).tolist())
