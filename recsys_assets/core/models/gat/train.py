"""Training the GAT: batches of train edges with sampled negatives, BPR / BCE / sampled-softmax
loss, validation NDCG@20 per epoch (with the recency readout chosen on it), early stopping."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import numpy as np
import torch
from torch import nn

from recsys_assets.core.io.sparse import Csr
from recsys_assets.core.models.early_stopping import (
    EarlyStopping,
    FitResult,
    deterministic_torch,
    step_batches,
    validation_ndcg20,
)
from recsys_assets.core.models.gat.graph import RATES, Graph, with_next_edges
from recsys_assets.core.models.gat.model import (
    CHUNK_EDGES,
    GATRecommender,
    embed,
    recent_item_mean,
    with_readout,
)
from recsys_assets.core.models.gat.sampling import InEdges, Relation, in_edges, sample_subgraph
from recsys_assets.core.models.gat.sequence import SequenceContext, sequence_context, with_context
from recsys_assets.core.models.metrics import sample_rows
from recsys_assets.settings.models import GATConfig

if TYPE_CHECKING:
    import optuna


def _loss(
    out: dict[str, torch.Tensor],
    x0: dict[str, torch.Tensor],
    u: torch.Tensor,
    i: torch.Tensor,
    j: torch.Tensor,
    config: GATConfig,
    context: tuple[torch.Tensor, torch.Tensor, torch.Tensor] | None = None,
) -> torch.Tensor:
    """The batch's loss; ``context`` (items, weights, learned weight): each edge's user read
    out with the items reviewed just before it (``sequence.py``)."""
    eu = out["user"][u]
    if context is not None:
        eu = with_context(eu, out["item"], *context)
        if config.loss == "softmax":
            eu = nn.functional.normalize(eu, dim=1)
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
    # With a sequence context the weight is learned: it is the one the readout uses.
    learned = model.sequence_weight
    weights = (float(learned.detach()),) if learned is not None else config.recency_readout
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


def fanouts_for(graph: Graph, config: GATConfig) -> tuple[int, ...]:
    """The neighbours sampled per hop (empty: every step over the whole graph)."""
    if config.fanouts or graph.n_edges() <= config.full_graph_edges:
        return config.fanouts
    return (10,) + (5,) * (config.layers - 1)


def validation_schedule(config: GATConfig, fanouts: tuple[int, ...]) -> tuple[int, int]:
    """(epochs between validations, validations without improvement before stopping): with
    ``eval_every`` 0, every epoch over the whole graph, every 2nd on sampled neighbourhoods
    with ``patience`` halved, so training stops after as many epochs either way."""
    if config.eval_every:
        return config.eval_every, config.patience
    if not fanouts:
        return 1, config.patience
    return 2, -(-config.patience // 2)


def _batch_loss(
    model: GATRecommender,
    x: torch.Tensor,
    graph: Graph,
    index: dict[Relation, InEdges] | None,
    sequence: SequenceContext | None,
    batch: torch.Tensor,
    generator: torch.Generator,
    fanouts: tuple[int, ...],
    pool: torch.Tensor,
) -> torch.Tensor:
    """The loss of one batch of train edges, with negatives drawn from ``pool``: over the whole
    graph, or over the neighbourhoods sampled (``fanouts``) around the batch's nodes (``index``)."""
    config = model.config
    pair_users, pair_items = graph.edges[RATES]
    u, i = pair_users[batch], pair_items[batch]
    shape = (config.negatives,) if config.loss == "softmax" else (len(batch), config.negatives)
    j = pool[torch.randint(0, len(pool), shape, generator=generator)]
    context_items = sequence.items[batch] if sequence is not None else None
    if index is None:
        x0, out = model(x, graph)
    else:
        extra = [context_items.reshape(-1)] if context_items is not None else []
        seeds = {"user": u, "item": torch.cat([i, j.reshape(-1), *extra])}
        sub = sample_subgraph(graph, index, seeds, fanouts, generator)
        x0, out = model(x, sub.graph, sub.nodes)
        u, i, j = sub.local("user", u), sub.local("item", i), sub.local("item", j)
        if context_items is not None:
            context_items = sub.local("item", context_items)
    context = None
    if sequence is not None and context_items is not None and model.sequence_weight is not None:
        context = (context_items, sequence.weights[batch], model.sequence_weight)
    return _loss(out, x0, u, i, j, config, context)


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
    torch.manual_seed(config.seed)
    generator = torch.Generator().manual_seed(config.seed)
    if config.next_edges:
        graph = with_next_edges(graph)
    x = torch.from_numpy(np.ascontiguousarray(features, dtype=np.float32))
    model = GATRecommender(n_users, n_items, x.shape[1], config, graph.edge_dims())
    model.set_seen(graph)
    optimizer = torch.optim.Adam(model.parameters(), lr=config.learning_rate)
    pair_users, pair_items = graph.edges[RATES]
    # Grouped by destination once: the sampler and chunked inference both read it.
    fanouts = fanouts_for(graph, config)
    grouped = in_edges(graph) if fanouts or graph.n_edges() > CHUNK_EDGES else None
    index = grouped if fanouts else None
    # Negatives come from the items with train interactions: an item nobody reviewed would only
    # ever be a negative, and its content would learn to point away from every user.
    pool = torch.nonzero(model.seen[:, 0] > 0).squeeze(1)
    every, patience = validation_schedule(config, fanouts)
    stopping = EarlyStopping(
        train, sample_rows(val, config.val_users, config.seed), patience, progress, config.epochs
    )
    sequence = (
        sequence_context(pair_users.numpy(), pair_items.numpy(), graph.attributes[RATES][:, 1].numpy(),
                         config.sequence_window, config.recency_decay)
        if config.sequence
        else None
    )  # fmt: skip
    best_state: dict[str, torch.Tensor] = {}
    for epoch in range(1, config.epochs + 1):
        model.train()
        order = torch.randperm(len(pair_users), generator=generator)
        total = 0.0
        batches = step_batches(order, config.batch_size, config.max_steps)
        for step, batch in enumerate(batches, 1):
            loss = _batch_loss(model, x, graph, index, sequence, batch, generator, fanouts, pool)
            optimizer.zero_grad()
            loss.backward()
            optimizer.step()
            total += float(loss.detach()) * len(batch)
            if step_progress:
                step_progress(step, len(batches))
        if epoch % every and epoch != config.epochs:
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


def search_space(trial: optuna.trial.BaseTrial) -> dict[str, Any]:
    """A search trial's overrides of ``GATConfig`` (``core/models/search.py``)."""
    return {
        # The loss matters most and differs by data set (softmax wins on MovieLens-100k, BPR on
        # the synthetic default); negatives 0 takes the loss's own default count.
        "loss": trial.suggest_categorical("loss", ["softmax", "bpr"]),
        "negatives": 0,
        "learning_rate": trial.suggest_float("learning_rate", 1e-3, 3e-2, log=True),
        "temperature": trial.suggest_float("temperature", 0.05, 0.5, log=True),
        "l2": trial.suggest_float("l2", 1e-6, 1e-3, log=True),
        "hidden": trial.suggest_categorical("hidden", [32, 64, 128]),
        "layers": trial.suggest_int("layers", 1, 3),
        "dropout": trial.suggest_float("dropout", 0.0, 0.3),
        "recency_decay": trial.suggest_float("recency_decay", 2.0, 50.0, log=True),
    }
