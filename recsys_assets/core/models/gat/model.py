"""The GATv2 recommender module: inputs, layers, the recency readout, and inference."""

from __future__ import annotations

from typing import Any

import numpy as np
import torch
from torch import nn

from recsys_assets.core.models.gat.graph import (
    NEXT,
    RATED_BY,
    RATES,
    SIMILAR,
    Graph,
    Relation,
    with_next_edges,
)
from recsys_assets.core.models.gat.sampling import InEdges, in_edges
from recsys_assets.settings.models import GATConfig

#: Above this many edges, inference runs layer by layer in chunks (``forward_chunked``).
CHUNK_EDGES = 2_000_000


def recent_item_mean(items: torch.Tensor, graph: Graph, decay: float) -> torch.Tensor:
    """Per user, the mean of the vectors of the items they rated, each weighted by
    exp(decay * (recency - 1)) (zeros for a user without edges); summed over edge chunks so
    memory follows the chunk."""
    item_rows, users = graph.edges[RATED_BY]
    weight = torch.exp(decay * (graph.attributes[RATED_BY][:, 1] - 1.0))
    pooled = torch.zeros(graph.n_users, items.shape[1])
    norm = torch.zeros(graph.n_users, 1).index_add_(0, users, weight[:, None])
    for lo in range(0, len(users), CHUNK_EDGES):
        hi = lo + CHUNK_EDGES
        pooled.index_add_(0, users[lo:hi], items[item_rows[lo:hi]] * weight[lo:hi, None])
    return pooled / norm.clamp_min(1e-12)


def with_readout(users: torch.Tensor, pooled: torch.Tensor, weight: float, unit: bool) -> torch.Tensor:
    """Users' vectors plus ``weight`` times their recency-weighted item mean (unit length again
    when the model is trained on cosine scores)."""
    users = users + weight * pooled
    return nn.functional.normalize(users, dim=1) if unit else users


class GATRecommender(nn.Module):
    def __init__(
        self,
        n_users: int,
        n_items: int,
        feature_dim: int,
        config: GATConfig,
        edge_dims: dict[tuple[str, str, str], int] | None = None,
    ):
        from torch_geometric.nn import GATv2Conv, HeteroConv

        super().__init__()
        self.config = config
        self.user = nn.Embedding(n_users, config.hidden)
        nn.init.normal_(self.user.weight, std=0.1)
        self.item_projection = nn.Linear(feature_dim, config.hidden, bias=False)
        self.item_id: nn.Embedding | None = None
        if config.id_embedding:
            self.item_id = nn.Embedding(n_items, config.hidden)
            nn.init.normal_(self.item_id.weight, std=0.1)
        #: 1 for items with train interactions, 0 for the others: an item nobody reviewed has no
        #: id embedding worth the name (only negatives ever moved it), so it enters by its content
        #: alone. Set from the train graph (``set_seen``) and saved with the weights.
        self.seen: torch.Tensor
        self.register_buffer("seen", torch.ones(n_items, 1))
        self.item_bias = nn.Parameter(torch.zeros(n_items, 1)) if config.item_bias else None
        #: The recency readout weight chosen on validation (saved with the weights).
        self.readout: torch.Tensor
        self.register_buffer("readout", torch.tensor(0.0))
        #: With a sequence context, the weight of the context's item states (learned).
        self.sequence_weight = nn.Parameter(torch.tensor(1.0)) if config.sequence else None
        relations = (
            [RATES, RATED_BY]
            + ([SIMILAR] if config.item_item else [])
            + ([NEXT] if config.next_edges else [])
        )
        self.relations = relations
        self.convs = nn.ModuleList(
            HeteroConv(
                {
                    relation: GATv2Conv(
                        config.hidden,
                        config.hidden,
                        heads=config.heads,
                        concat=False,
                        dropout=config.dropout,
                        add_self_loops=False,
                        edge_dim=(edge_dims or {}).get(relation) if config.edge_features else None,
                    )
                    for relation in relations
                },
                aggr="sum",
            )
            for _ in range(config.layers)
        )

    def inputs(
        self, features: torch.Tensor, nodes: dict[str, torch.Tensor] | None
    ) -> dict[str, torch.Tensor]:
        items = None if nodes is None else nodes["item"]
        item = self.item_projection(features if items is None else features[items])
        users = self.user.weight if nodes is None else self.user(nodes["user"])
        if self.item_id is None:
            return {"user": users, "item": item}
        ids = self.item_id.weight if items is None else self.item_id(items)
        keep = self.seen if items is None else self.seen[items]
        if self.training and self.config.id_dropout:
            # Some warm items enter by content alone in each step, as cold items always do, so
            # the content path learns to stand on its own (DropoutNet, Volkovs et al. 2017).
            keep = keep * (torch.rand_like(keep) >= self.config.id_dropout)
        return {"user": users, "item": item + ids * keep}

    def set_seen(self, graph: Graph) -> None:
        """Mark the items with train edges in ``graph`` (the others enter by content alone)."""
        counts = torch.bincount(graph.edges[RATES][1], minlength=self.seen.shape[0])
        self.seen.copy_((counts > 0).float().unsqueeze(1))

    def forward(
        self,
        features: torch.Tensor,
        graph: Graph,
        nodes: dict[str, torch.Tensor] | None = None,
        readout: bool = False,
    ) -> tuple[dict[str, torch.Tensor], dict[str, torch.Tensor]]:
        """(input states, final states) per node type; over a sampled subgraph when ``nodes``
        names its nodes' global ids; with ``readout``, users get the recency readout."""
        x = x0 = self.inputs(features, nodes)
        total = dict(x0)
        for conv in self.convs:
            edges = {r: graph.edges[r] for r in self.relations if r in graph.edges}
            if self.config.edge_features:
                h = conv(x, edges, edge_attr_dict={r: graph.attributes[r] for r in edges})
            else:
                h = conv(x, edges)
            x = {kind: x[kind] + h[kind] if kind in h else x[kind] for kind in x}
            total = {kind: total[kind] + x[kind] for kind in x}
        return x0, self._output(total, nodes, graph, readout)

    def _output(
        self,
        total: dict[str, torch.Tensor],
        nodes: dict[str, torch.Tensor] | None,
        graph: Graph,
        readout: bool,
    ) -> dict[str, torch.Tensor]:
        """The mean of the layers' states plus the recency readout, normalised for softmax,
        with the bias column."""
        out = {kind: v / (len(self.convs) + 1) for kind, v in total.items()}
        unit = self.config.loss == "softmax"
        if unit:
            # Trained on cosine scores, so the exported vectors are unit length (dot = cosine).
            out = {kind: nn.functional.normalize(v, dim=1) for kind, v in out.items()}
        if readout and float(self.readout):
            pooled = recent_item_mean(out["item"], graph, self.config.recency_decay)
            out["user"] = with_readout(out["user"], pooled, float(self.readout), unit)
        if self.item_bias is not None:
            # score = u . i + b_i, as a dot product of [u, 1] and [i, b_i]: served like the rest.
            out["user"] = torch.cat([out["user"], torch.ones_like(out["user"][:, :1])], 1)
            bias = self.item_bias if nodes is None else self.item_bias[nodes["item"]]
            out["item"] = torch.cat([out["item"], bias], 1)
        return out

    def forward_chunked(
        self,
        features: torch.Tensor,
        graph: Graph,
        max_edges: int,
        index: dict[Relation, InEdges],
        readout: bool = True,
    ) -> dict[str, torch.Tensor]:
        """``forward``'s final states over the whole graph, layer by layer, each relation's
        destination nodes (grouped by ``index``, see ``sampling.in_edges``) in chunks of
        at most ``max_edges`` incoming edges, so memory follows the chunk rather than the
        graph (no autograd: for inference)."""
        x = x0 = self.inputs(features, None)
        total = dict(x0)
        for conv in self.convs:
            h = {kind: torch.zeros_like(v) for kind, v in x.items()}
            touched = set()
            for relation in self.relations:
                if relation not in graph.edges:
                    continue
                src_kind, _, dst_kind = relation
                layer: Any = conv.convs[relation]  # type: ignore[index]  # PyG's ModuleDict takes edge types
                incoming = index[relation]
                n_dst, start = x[dst_kind].shape[0], 0
                while start < n_dst:
                    limit = incoming.indptr[start] + max_edges
                    end = min(
                        n_dst, max(start + 1, int(torch.searchsorted(incoming.indptr, limit, right=True)) - 1)
                    )
                    lo, hi = int(incoming.indptr[start]), int(incoming.indptr[end])
                    degrees = incoming.indptr[start + 1 : end + 1] - incoming.indptr[start:end]
                    dst = torch.repeat_interleave(torch.arange(end - start), degrees)
                    edge_index = torch.stack([incoming.src[lo:hi], dst])
                    extra = {}
                    if self.config.edge_features:
                        extra["edge_attr"] = graph.attributes[relation][incoming.edge_id[lo:hi]]
                    h[dst_kind][start:end] += layer(
                        (x[src_kind], x[dst_kind][start:end]), edge_index, **extra
                    )
                    start = end
                touched.add(dst_kind)
            x = {kind: x[kind] + h[kind] if kind in touched else x[kind] for kind in x}
            total = {kind: total[kind] + x[kind] for kind in x}
        return self._output(total, None, graph, readout)


def embed(
    model: GATRecommender,
    features: torch.Tensor,
    graph: Graph,
    max_edges: int = CHUNK_EDGES,
    index: dict[Relation, InEdges] | None = None,
    readout: bool = True,
) -> tuple[np.ndarray, np.ndarray]:
    """Final user and item vectors (no dropout; with the chosen recency readout unless
    ``readout`` is off); ``index`` (``sampling.in_edges``), when the caller already has
    it, spares regrouping the edges of a chunked pass."""
    model.eval()
    if model.config.next_edges:
        graph = with_next_edges(graph)
    with torch.no_grad():
        if graph.n_edges() > max_edges:
            out = model.forward_chunked(features, graph, max_edges, index or in_edges(graph), readout)
        else:
            _, out = model(features, graph, readout=readout)
    return out["user"].numpy().copy(), out["item"].numpy().copy()
