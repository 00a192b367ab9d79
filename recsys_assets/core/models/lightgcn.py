"""LightGCN (PyG's ``LightGCN``) trained with BPR, the graph baseline every GNN must beat.

Nodes are users ``0..U-1`` followed by items ``U..U+I-1``; the train user-item edges are
used in both directions. Training follows PyG's ``examples/lightgcn.py`` (full-graph
propagation per batch of train edges, one uniform random negative item per edge, BPR with
L2 on the batch's base embeddings), which needs no sampler extension. Validation NDCG@20
(full ranking) picks the best epoch; training stops after ``patience`` evaluations
without improvement. Seeded and deterministic on CPU.
"""

from __future__ import annotations

from collections.abc import Callable

import torch

from recsys_assets.core.models.early_stopping import (
    EarlyStopping,
    FitResult,
    deterministic_torch,
    seeded_pairs,
)
from recsys_assets.core.models.metrics import Csr
from recsys_assets.settings.models import LightGCNConfig


@deterministic_torch()
def train_lightgcn(
    train: Csr,
    val: Csr,
    n_items: int,
    config: LightGCNConfig,
    progress: Callable[[dict[str, float]], None] | None = None,
) -> FitResult:
    from torch_geometric.nn import LightGCN

    n_users = len(train.indptr) - 1
    generator, users, items = seeded_pairs(train, config.seed, "LightGCN")
    items = items + n_users
    edge_index = torch.stack([torch.cat([users, items]), torch.cat([items, users])])
    model = LightGCN(n_users + n_items, config.dim, config.layers)
    optimizer = torch.optim.Adam(model.parameters(), lr=config.learning_rate)
    stopping = EarlyStopping(train, val, config.patience, progress)
    for epoch in range(1, config.epochs + 1):
        model.train()
        order = torch.randperm(len(users), generator=generator)
        total = 0.0
        for lo in range(0, len(order), config.batch_size):
            batch = order[lo : lo + config.batch_size]
            negatives = torch.randint(0, n_items, (len(batch),), generator=generator) + n_users
            label_index = torch.stack(
                [torch.cat([users[batch], users[batch]]), torch.cat([items[batch], negatives])]
            )
            positive, negative = model(edge_index, label_index).chunk(2)
            loss = model.recommendation_loss(
                positive, negative, node_id=label_index.unique(), lambda_reg=config.l2
            )
            optimizer.zero_grad()
            loss.backward()
            optimizer.step()
            total += float(loss.detach()) * len(batch)
        if epoch % config.eval_every:
            continue
        model.eval()
        with torch.no_grad():
            embedding = model.get_embedding(edge_index).numpy()
        if stopping.evaluate(epoch, total / len(order), embedding[:n_users], embedding[n_users:]):
            break
    return stopping.result()
