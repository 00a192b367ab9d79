"""The GAT's checkpoint (``models/gat.pt``): weights, config and graph sizes, enough to rebuild
the module and embed again (new items, a grown graph) without retraining."""

from __future__ import annotations

import io

import torch

from recsys_assets.core.models.gat.graph import Graph, with_next_edges
from recsys_assets.core.models.gat.model import GATRecommender
from recsys_assets.settings.models import GATConfig


def checkpoint_bytes(model: GATRecommender, graph: Graph, feature_dim: int) -> bytes:
    if model.config.next_edges:  # the relations the model was trained over
        graph = with_next_edges(graph)
    buffer = io.BytesIO()
    torch.save(
        {
            "state_dict": model.state_dict(),
            "config": model.config.to_dict(),
            "n_users": graph.n_users,
            "n_items": graph.n_items,
            "feature_dim": feature_dim,
            "edge_dims": {"/".join(r): d for r, d in graph.edge_dims().items()},
        },
        buffer,
    )
    return buffer.getvalue()


def load_checkpoint(data: bytes) -> GATRecommender:
    """The module the checkpoint holds, weights loaded (``weights_only``: no pickled code)."""
    saved = torch.load(io.BytesIO(data), weights_only=True)
    edge_dims = {tuple(name.split("/")): dim for name, dim in saved["edge_dims"].items()}
    model = GATRecommender(
        saved["n_users"],
        saved["n_items"],
        saved["feature_dim"],
        GATConfig(**saved["config"]),
        edge_dims,
    )
    model.load_state_dict(saved["state_dict"])
    return model
