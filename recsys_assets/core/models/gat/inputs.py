"""The GAT's inputs read from their artifacts and checked against the training data: the item
features, the train user-item edges and the item-item edges."""

from __future__ import annotations

import numpy as np

from recsys_assets.core.graphs.edges import edge_problems
from recsys_assets.core.io.codecs import read_npy, read_npz
from recsys_assets.core.models.gat.graph import Graph, build_graph
from recsys_assets.core.models.training_data import TrainingData


def load_gat_inputs(
    features_uri: str, ui_edges_uri: str, ii_edges_uri: str | None, data: TrainingData
) -> tuple[np.ndarray, Graph]:
    """(item features, graph); a stale artifact (rows or edges that do not fit the training
    data's nodes) is named with what to rematerialize."""
    features = read_npy(features_uri)
    if features.shape[0] != data.n_items:
        raise ValueError(
            f"{features_uri}: {features.shape[0]} rows but node_maps has {data.n_items} items; "
            "rematerialize the embeddings"
        )
    ii = read_npz(ii_edges_uri) if ii_edges_uri else None
    return features, gat_graph(read_npz(ui_edges_uri), ii, data, ui_edges_uri, ii_edges_uri or "")


def gat_graph(
    ui: dict[str, np.ndarray],
    ii: dict[str, np.ndarray] | None,
    data: TrainingData,
    ui_edges_uri: str,
    ii_edges_uri: str,
) -> Graph:
    """The GAT's graph from its edges, checked against the training data's nodes and train pairs."""
    for uri, edges, n_src in ((ui_edges_uri, ui, data.n_users), (ii_edges_uri, ii, data.n_items)):
        if (
            edges is not None
            and edge_problems(edges["src"], edges["dst"], n_src, data.n_items, False).out_of_range
        ):
            raise ValueError(f"{uri}: node index out of range for {n_src} x {data.n_items} nodes")
    check_train_edges(ui, data, ui_edges_uri)
    return build_graph(ui, data.n_users, data.n_items, ii)


def check_train_edges(ui: dict[str, np.ndarray], data: TrainingData, uri: str) -> None:
    """The user-item edges are exactly the split's train pairs: the GAT passes messages over
    them, so an edge of a validation or test pair would be a leak the model's record of its
    train rows could not show."""
    n = max(data.n_items, 1)
    edges = np.sort(ui["src"].astype(np.int64) * n + ui["dst"])
    rows = np.repeat(np.arange(data.n_users, dtype=np.int64), data.train.lengths())
    train = np.sort(rows * n + data.train.indices)
    if len(edges) == len(train) and np.array_equal(edges, train):
        return
    extra = np.setdiff1d(edges, train)
    raise ValueError(
        f"{uri}: {len(edges):,} edges but the split has {len(train):,} train interactions, {len(extra):,} "
        f"edge(s) not a train pair"
        + (f" (e.g. user node {extra[0] // n}, item node {extra[0] % n})" if len(extra) else "")
        + "; rematerialize ui_edges"
    )
