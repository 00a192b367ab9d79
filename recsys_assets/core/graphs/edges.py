"""User-item edges, and the structural checks every edge list must pass."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pandas as pd

from recsys_assets.core.graphs.node_maps import NodeMaps
from recsys_assets.core.graphs.splits import history_positions
from recsys_assets.core.leakage import timestamps_ns


def ui_edges(train: pd.DataFrame, maps: NodeMaps) -> dict[str, np.ndarray]:
    """Train user -> item edges with two attributes.

    * ``weight = rating / (the user's mean train rating)``: dividing by the user's own mean
      puts every user on one scale (a user's weights average 1), so a harsh rater's 4 counts
      as much as a generous rater's 5, and weights stay positive, as attention expects.
    * ``recency``: where the review falls in the user's train history, from 0 (first) to 1
      (latest; also a user's only review), by ``ts`` with ties in row order. The next
      thing a user reviews resembles the last ones more than the first ones; the GAT's
      attention reads this.
    """
    user = maps.user_index(train["user_id"])
    item = maps.item_index(train["item_id"])
    rating = train["rating"].to_numpy(dtype=np.float64)
    mean = pd.Series(rating).groupby(user).transform("mean").to_numpy()
    recency = (
        history_positions(user, timestamps_ns(train["ts"])) if "ts" in train.columns else np.ones(len(user))
    )
    # The split holds one row per (user, item) (``splits.py``), so each train row is one edge;
    # a repeat here would be a stale split, and ``ui_edges_valid`` names it.
    edges = pd.DataFrame({"src": user, "dst": item, "weight": rating / mean, "recency": recency}).sort_values(
        ["src", "dst"], kind="stable"
    )
    return {
        "src": edges["src"].to_numpy(np.int32),
        "dst": edges["dst"].to_numpy(np.int32),
        "weight": edges["weight"].to_numpy(np.float32),
        "recency": edges["recency"].to_numpy(np.float32),
        "num_nodes": np.array([len(maps.users), len(maps.items)], dtype=np.int64),
    }


@dataclass
class EdgeProblems:
    self_loops: int
    duplicates: int
    out_of_range: int

    @property
    def ok(self) -> bool:
        return self.self_loops == self.duplicates == self.out_of_range == 0


def edge_problems(src: np.ndarray, dst: np.ndarray, n_src: int, n_dst: int, same_kind: bool) -> EdgeProblems:
    """Counts of self loops (for item-item edges), repeated (src, dst) pairs and bad indices."""
    out_of_range = int(((src < 0) | (src >= n_src) | (dst < 0) | (dst >= n_dst)).sum())
    pairs = src.astype(np.int64) * max(n_dst, 1) + dst.astype(np.int64)
    duplicates = len(pairs) - len(np.unique(pairs))
    self_loops = int((src == dst).sum()) if same_kind else 0
    return EdgeProblems(self_loops, duplicates, out_of_range)


def degree_histogram(degrees: np.ndarray) -> list[tuple[str, int]]:
    """Counts of nodes per degree bucket: 0, 1, 2-4, 5-9, 10-19, ... (powers of two after)."""
    edges = [0, 1, 2, 5, 10, 20, 50, 100, 200, 500, 1000]
    out = []
    for lo, hi in zip(edges, [*edges[1:], None], strict=True):
        mask = degrees >= lo if hi is None else (degrees >= lo) & (degrees < hi)
        label = f">={lo}" if hi is None else (str(lo) if hi == lo + 1 else f"{lo}-{hi - 1}")
        out.append((label, int(mask.sum())))
    return out
