"""The multi-modal GAT recommender: PyG GATv2 over the user-item-item graph, content-fed items.

Graph (heterogeneous, node types ``user`` and ``item``):

* ``(user, rates, item)`` and ``(item, rated_by, user)``: the train user-item edges, both ways;
* ``(item, similar, item)``: the item-item kNN edges (content neighbours), so that an item
  nobody reviewed still receives messages and gets a useful vector.

Inputs: an item starts from its content embedding (fused or text) through a linear
projection, plus (optionally) a learned id embedding; a user starts from a learned
embedding. Each layer is a ``HeteroConv`` of one ``GATv2Conv`` per relation (no self loops:
the relations are bipartite, and each layer adds its input back as a residual), summed over
relations. With ``edge_features`` the attention also reads each edge's attributes: a
user-item edge's rating weight and its recency in the user's history (so a user's state can
lean on what they reviewed last), an item-item edge's similarity. The output is the mean
of every layer's node states (as LightGCN averages its layers), and a user's score for an
item is the dot product of the two.

Training: each step takes a batch of train (user, item) edges, draws ``negatives`` uniform
random items per edge, runs the whole graph (full batch; or, with ``fanouts``, the batch's
sampled neighbourhood, ``core/gat_sampling.py``) and minimises BPR, BCE, or a sampled
softmax (the positive against ``negatives`` items shared by the batch, over cosine scores
divided by ``temperature``; the exported vectors are then unit length), with an L2 penalty
on the batch's input vectors. Validation NDCG@20 (full ranking) picks the best
epoch; training stops after ``patience`` evaluations without improvement. Seeded and
deterministic on CPU.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import asdict, dataclass
from typing import TYPE_CHECKING, Any, Literal

import numpy as np
import torch
from torch import nn

from recsys_assets.core.early_stopping import (
    EarlyStopping,
    FitResult,
    deterministic_torch,
    validation_ndcg20,
)
from recsys_assets.core.metrics import Csr

if TYPE_CHECKING:
    from recsys_assets.core.gat_sampling import InEdges, Relation

RATES = ("user", "rates", "item")
RATED_BY = ("item", "rated_by", "user")
SIMILAR = ("item", "similar", "item")
LOSSES = ("bpr", "bce", "softmax")


@dataclass(frozen=True)
class GATConfig:
    hidden: int = 64
    heads: int = 1
    layers: int = 2
    #: Dropout on the attention coefficients.
    dropout: float = 0.0
    id_embedding: bool = True
    item_item: bool = True
    #: Edge attributes (rating weight, recency; kNN similarity) feed the attention.
    edge_features: bool = True
    #: A learned per-item bias, exported as one more dimension (user side 1).
    item_bias: bool = False
    #: Recency readout (inference only): a user's exported vector adds ``w`` times the mean of
    #: the output vectors of the items they rated, each weighted by
    #: exp(recency_decay * (recency - 1)), so their last reviews count most. The training loss
    #: has no notion of order, so ``w`` is chosen on validation at every evaluation among these
    #: weights (0: off; on MovieLens-100k's per-user temporal split it adds ~15%, on the
    #: order-free synthetic data it costs, so validation decides).
    recency_readout: tuple[float, ...] = (0.0, 1.0, 2.0)
    recency_decay: float = 20.0
    #: Neighbours sampled per node, relation and hop (one entry per layer); empty: full batch.
    fanouts: tuple[int, ...] = ()
    #: Early stopping on a fixed random sample of this many validation users (0: all).
    val_users: int = 0
    #: The sampled softmax won on validation on MovieLens-100k and the synthetic default
    #: (benchmarks/RESULTS.md); BPR and BCE remain a setting away.
    loss: Literal["bpr", "bce", "softmax"] = "softmax"
    #: Negatives per positive (bpr, bce), or shared by the whole batch (softmax); 0: 16 for
    #: bpr and bce (BPR with 16 rather than 1: synthetic test NDCG@20 0.081 -> 0.113,
    #: MovieLens-100k 0.112 -> 0.130), 512 for softmax.
    negatives: int = 0
    #: Softmax temperature over cosine scores (softmax loss only).
    temperature: float = 0.2
    learning_rate: float = 1e-2
    l2: float = 1e-4
    batch_size: int = 8192
    epochs: int = 200
    eval_every: int = 1
    patience: int = 20
    seed: int = 0

    def __post_init__(self) -> None:
        object.__setattr__(self, "fanouts", tuple(int(f) for f in self.fanouts))  # JSON gives a list
        object.__setattr__(self, "recency_readout", tuple(float(w) for w in self.recency_readout))
        if not self.recency_readout or min(self.recency_readout) < 0:
            raise ValueError(f"GAT recency_readout {list(self.recency_readout)}: expected weights >= 0")
        if self.fanouts and len(self.fanouts) != self.layers:
            raise ValueError(f"GAT fanouts {list(self.fanouts)}: expected one per layer ({self.layers})")
        if self.loss not in LOSSES:
            raise ValueError(f"GAT loss {self.loss!r}: expected one of {', '.join(LOSSES)}")
        if self.negatives == 0:
            object.__setattr__(self, "negatives", 512 if self.loss == "softmax" else 16)
        for name in ("hidden", "heads", "layers", "negatives", "batch_size", "epochs"):
            if getattr(self, name) < 1:
                raise ValueError(f"GAT {name} must be >= 1, got {getattr(self, name)}")

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


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
        self.item_bias = nn.Parameter(torch.zeros(n_items, 1)) if config.item_bias else None
        #: The recency readout weight chosen on validation (saved with the weights).
        self.readout: torch.Tensor
        self.register_buffer("readout", torch.tensor(0.0))
        relations = [RATES, RATED_BY] + ([SIMILAR] if config.item_item else [])
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
        if nodes is None:
            item = self.item_projection(features)
            return {
                "user": self.user.weight,
                "item": item if self.item_id is None else item + self.item_id.weight,
            }
        item = self.item_projection(features[nodes["item"]])
        return {
            "user": self.user(nodes["user"]),
            "item": item if self.item_id is None else item + self.item_id(nodes["item"]),
        }

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
        destination nodes (grouped by ``index``, see ``gat_sampling.in_edges``) in chunks of
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


def _loss(
    out: dict[str, torch.Tensor],
    x0: dict[str, torch.Tensor],
    u: torch.Tensor,
    i: torch.Tensor,
    j: torch.Tensor,
    config: GATConfig,
) -> torch.Tensor:
    eu = out["user"][u]
    positive = (eu * out["item"][i]).sum(-1)
    if config.loss == "softmax":
        # Sampled softmax: the positive against the batch's shared negatives, over cosine / T.
        logits = torch.cat([positive.unsqueeze(1), eu @ out["item"][j].T], 1) / config.temperature
        loss = nn.functional.cross_entropy(logits, torch.zeros(len(u), dtype=torch.long))
        penalty = x0["user"][u].pow(2).sum() + x0["item"][i].pow(2).sum()
        return loss + config.l2 * penalty / len(u)
    negative = (eu.unsqueeze(1) * out["item"][j]).sum(-1)  # (batch, negatives)
    if config.loss == "bpr":
        loss = -nn.functional.logsigmoid(positive.unsqueeze(1) - negative).mean()
    else:
        loss = nn.functional.binary_cross_entropy_with_logits(
            positive, torch.ones_like(positive)
        ) + nn.functional.binary_cross_entropy_with_logits(negative, torch.zeros_like(negative))
    penalty = x0["user"][u].pow(2).sum() + x0["item"][i].pow(2).sum() + x0["item"][j].pow(2).sum()
    return loss + config.l2 * penalty / len(u)


#: Above this many edges, inference runs layer by layer in chunks (``forward_chunked``).
CHUNK_EDGES = 2_000_000


def embed(
    model: GATRecommender,
    features: torch.Tensor,
    graph: Graph,
    max_edges: int = CHUNK_EDGES,
    index: dict[Relation, InEdges] | None = None,
    readout: bool = True,
) -> tuple[np.ndarray, np.ndarray]:
    """Final user and item vectors (no dropout; with the chosen recency readout unless
    ``readout`` is off); ``index`` (``gat_sampling.in_edges``), when the caller already has
    it, spares regrouping the edges of a chunked pass."""
    from recsys_assets.core.gat_sampling import in_edges

    model.eval()
    with torch.no_grad():
        if graph.n_edges() > max_edges:
            out = model.forward_chunked(features, graph, max_edges, index or in_edges(graph), readout)
        else:
            _, out = model(features, graph, readout=readout)
    return out["user"].numpy().copy(), out["item"].numpy().copy()


def _val_sample(val: Csr, config: GATConfig) -> Csr:
    """``val`` restricted to ``config.val_users`` random users with validation items (seeded)."""
    users = np.flatnonzero(val.lengths() > 0)
    if not config.val_users or len(users) <= config.val_users:
        return val
    keep = np.zeros(len(val.indptr) - 1, dtype=bool)
    keep[np.random.default_rng(config.seed).choice(users, config.val_users, replace=False)] = True
    rows = np.repeat(np.arange(len(keep)), val.lengths())
    mask = keep[rows]
    return Csr.from_pairs(rows[mask], val.indices[mask], len(keep))


def _readout_on_validation(
    model: GATRecommender,
    x: torch.Tensor,
    graph: Graph,
    index: dict[Relation, InEdges] | None,
    train: Csr,
    val: Csr,
) -> tuple[np.ndarray, np.ndarray, float | None]:
    """The model's vectors with the recency readout weight that scores best on ``val``
    (stored in ``model.readout``), and that score (None when only 0 is tried: not computed);
    one forward pass for all the weights tried."""
    config = model.config
    users, items = embed(model, x, graph, index=index, readout=False)
    weights = config.recency_readout
    if weights == (0.0,):
        model.readout.fill_(0.0)
        return users, items, None
    pooled = recent_item_mean(torch.from_numpy(items), graph, config.recency_decay)
    candidates = []
    for weight in weights:
        scored = with_readout(torch.from_numpy(users), pooled, weight, config.loss == "softmax").numpy()
        candidates.append((validation_ndcg20(scored, items, train, val), -weight, scored))
    best = max(candidates, key=lambda c: c[:2])  # ties: the smaller weight
    model.readout.fill_(-best[1])
    return best[2], items, best[0]


@dataclass
class GATFit(FitResult):
    model: GATRecommender | None = None
    #: The recency readout weight chosen on validation at the best epoch.
    readout: float = 0.0


@deterministic_torch()
def train_gat(
    train: Csr,
    val: Csr,
    features: np.ndarray,
    graph: Graph,
    config: GATConfig,
    progress: Callable[[dict[str, float]], None] | None = None,
    step_progress: Callable[[int, int], None] | None = None,
) -> GATFit:
    """Fit on the graph's user-item edges (``train`` names the items to exclude when
    validating); the returned model holds the weights of the best epoch. ``progress`` gets
    each epoch's record, ``step_progress(done, total)`` the steps within an epoch."""
    n_users, n_items = graph.n_users, graph.n_items
    if len(train.indices) == 0:
        raise ValueError("no train interactions to fit the GAT on")
    if features.shape[0] != n_items:
        raise ValueError(f"item features have {features.shape[0]} rows for {n_items} items")
    from recsys_assets.core.gat_sampling import in_edges, sample_subgraph

    torch.manual_seed(config.seed)
    generator = torch.Generator().manual_seed(config.seed)
    x = torch.from_numpy(np.ascontiguousarray(features, dtype=np.float32))
    model = GATRecommender(n_users, n_items, x.shape[1], config, graph.edge_dims())
    optimizer = torch.optim.Adam(model.parameters(), lr=config.learning_rate)
    pair_users, pair_items = graph.edges[RATES]
    # Grouped by destination once: the sampler and chunked inference both read it.
    grouped = in_edges(graph) if config.fanouts or graph.n_edges() > CHUNK_EDGES else None
    index = grouped if config.fanouts else None
    stopping = EarlyStopping(train, _val_sample(val, config), config.patience, progress)
    best_state: dict[str, torch.Tensor] = {}
    for epoch in range(1, config.epochs + 1):
        model.train()
        order = torch.randperm(len(pair_users), generator=generator)
        total = 0.0
        for lo in range(0, len(order), config.batch_size):
            batch = order[lo : lo + config.batch_size]
            u, i = pair_users[batch], pair_items[batch]
            shape = (config.negatives,) if config.loss == "softmax" else (len(batch), config.negatives)
            j = torch.randint(0, n_items, shape, generator=generator)
            if index is None:
                x0, out = model(x, graph)
            else:
                seeds = {"user": u, "item": torch.cat([i, j.reshape(-1)])}
                sub = sample_subgraph(graph, index, seeds, config.fanouts, generator)
                x0, out = model(x, sub.graph, sub.nodes)
                u, i, j = sub.local("user", u), sub.local("item", i), sub.local("item", j)
            loss = _loss(out, x0, u, i, j, config)
            optimizer.zero_grad()
            loss.backward()
            optimizer.step()
            total += float(loss.detach()) * len(batch)
            if step_progress:
                step_progress(lo // config.batch_size + 1, -(-len(order) // config.batch_size))
        if epoch % config.eval_every:
            continue
        users, items, ndcg = _readout_on_validation(model, x, graph, grouped, train, stopping.val)
        previous_best = stopping.best.best_epoch
        stop = stopping.evaluate(epoch, total / len(order), users, items, ndcg)
        if stopping.best.best_epoch != previous_best:
            best_state = {k: v.clone() for k, v in model.state_dict().items()}
        if stop:
            break
    model.load_state_dict(best_state)
    result = stopping.result()
    return GATFit(**vars(result), model=model, readout=float(model.readout))
