"""The GAT's heterogeneous graph: users and items, with user-item edges both ways and
item-item kNN edges, as torch tensors with per-edge attributes."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import torch

from recsys_assets.core.io.sparse import Csr

Relation = tuple[str, str, str]
RATES: Relation = ("user", "rates", "item")
RATED_BY: Relation = ("item", "rated_by", "user")
SIMILAR: Relation = ("item", "similar", "item")
#: Items reviewed one after the other by a user, both ways (``with_next_edges``).
NEXT: Relation = ("item", "next", "item")


@dataclass
class Graph:
    """Edge indices per relation as ``(2, E)`` int64 tensors (source row, target row), and
    per-edge attributes as ``(E, d)`` float32 tensors."""

    n_users: int
    n_items: int
    edges: dict[tuple[str, str, str], torch.Tensor]
    attributes: dict[tuple[str, str, str], torch.Tensor]

    def n_edges(self) -> int:
        return sum(int(e.shape[1]) for e in self.edges.values())

    def edge_dims(self) -> dict[tuple[str, str, str], int]:
        return {r: int(a.shape[1]) for r, a in self.attributes.items()}


def _column(values: np.ndarray | None, n: int, default: float) -> np.ndarray:
    return np.full(n, default, np.float32) if values is None else np.asarray(values, np.float32)


def build_graph(
    ui: dict[str, np.ndarray], n_users: int, n_items: int, ii: dict[str, np.ndarray] | None = None
) -> Graph:
    """The train user-item edges both ways (``src`` user, ``dst`` item, optional ``weight``
    and ``recency``, as ``ui_edges.npz`` holds them), plus item-item edges when given
    (``src``, ``dst``, optional ``weight`` = similarity)."""
    users = torch.from_numpy(np.asarray(ui["src"], np.int64))
    items = torch.from_numpy(np.asarray(ui["dst"], np.int64))
    ui_attr = torch.from_numpy(
        np.stack([_column(ui.get("weight"), len(users), 1.0), _column(ui.get("recency"), len(users), 1.0)], 1)
    )
    edges = {RATES: torch.stack([users, items]), RATED_BY: torch.stack([items, users])}
    attributes = {RATES: ui_attr, RATED_BY: ui_attr}
    if ii is not None:
        edges[SIMILAR] = torch.from_numpy(np.stack([ii["src"], ii["dst"]]).astype(np.int64))
        attributes[SIMILAR] = torch.from_numpy(_column(ii.get("weight"), len(ii["src"]), 1.0)[:, None])
    return Graph(n_users, n_items, edges, attributes)


def csr_edges(train: Csr) -> dict[str, np.ndarray]:
    """``build_graph``'s user-item input from per-user train item lists (no attributes)."""
    return {"src": np.repeat(np.arange(len(train.indptr) - 1), train.lengths()), "dst": train.indices}


def with_next_edges(graph: Graph) -> Graph:
    """``graph`` plus the ``NEXT`` relation: an edge between two items a user reviewed one right
    after the other in their train history (by the ``recency`` attribute), both ways, weighted
    log(1 + the number of users who did). Unchanged if it has them already."""
    if NEXT in graph.edges:
        return graph
    users, items = (t.numpy() for t in graph.edges[RATES])
    recency = graph.attributes[RATES][:, 1].numpy()
    order = np.lexsort((np.arange(len(users)), recency, users))
    same = users[order[1:]] == users[order[:-1]]
    before, after = items[order[:-1]][same], items[order[1:]][same]
    keep = before != after
    pairs = np.concatenate(
        [before[keep] * graph.n_items + after[keep], after[keep] * graph.n_items + before[keep]]
    )
    unique, counts = np.unique(pairs, return_counts=True)
    edges = torch.from_numpy(np.stack([unique // graph.n_items, unique % graph.n_items]).astype(np.int64))
    weight = torch.from_numpy(np.log1p(counts).astype(np.float32)[:, None])
    return Graph(
        graph.n_users, graph.n_items, {**graph.edges, NEXT: edges}, {**graph.attributes, NEXT: weight}
    )


def without_items(graph: Graph, held: np.ndarray) -> Graph:
    """``graph`` without the user-item edges of the items where ``held`` is true (their
    item-item edges stay: an item's content is known before anyone reviews it)."""
    mask = torch.from_numpy(~held)
    edges, attributes = dict(graph.edges), dict(graph.attributes)
    for relation, item_row in ((RATES, 1), (RATED_BY, 0)):
        keep = mask[graph.edges[relation][item_row]]
        edges[relation] = graph.edges[relation][:, keep]
        attributes[relation] = graph.attributes[relation][keep]
    return Graph(graph.n_users, graph.n_items, edges, attributes)
