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
    ui = read_npz(ui_edges_uri)
    if len(ui["src"]) != len(data.train.indices):
        raise ValueError(
            f"{ui_edges_uri}: {len(ui['src'])} edges but the split has {len(data.train.indices)} "
            "train interactions; rematerialize ui_edges"
        )
    ii = read_npz(ii_edges_uri) if ii_edges_uri else None
    for uri, edges, n_src in ((ui_edges_uri, ui, data.n_users), (ii_edges_uri, ii, data.n_items)):
        if (
            edges is not None
            and edge_problems(edges["src"], edges["dst"], n_src, data.n_items, False).out_of_range
        ):
            raise ValueError(f"{uri}: node index out of range for {n_src} x {data.n_items} nodes")
    return features, build_graph(ui, data.n_users, data.n_items, ii)
