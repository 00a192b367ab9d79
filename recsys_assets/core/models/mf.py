"""Matrix factorisation trained with BPR: the classic collaborative-filtering baseline.

Each step takes a batch of train (user, item) pairs, draws one uniformly random item per
pair as the negative, and minimises ``-log sigmoid(s(u, i) - s(u, j))`` plus an L2 penalty
on the embeddings used in the batch. Validation NDCG@20 (full ranking, train items
excluded) is measured every ``eval_every`` epochs; the best embeddings are kept and
training stops after ``patience`` evaluations without improvement. Seeded: two runs with
one seed give identical embeddings on CPU.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import TYPE_CHECKING, Any

import torch

from recsys_assets.core.io.sparse import Csr
from recsys_assets.core.models.early_stopping import (
    EarlyStopping,
    FitResult,
    deterministic_torch,
    seeded_pairs,
)
from recsys_assets.settings.models import MFConfig

if TYPE_CHECKING:
    import optuna


@deterministic_torch()
def train_mf_bpr(
    train: Csr,
    val: Csr,
    n_items: int,
    config: MFConfig,
    progress: Callable[[dict[str, float]], None] | None = None,
) -> FitResult:
    n_users = len(train.indptr) - 1
    generator, pair_users, pair_items = seeded_pairs(train, config.seed, "MF-BPR")
    user_emb = torch.nn.Embedding(n_users, config.dim)
    item_emb = torch.nn.Embedding(n_items, config.dim)
    torch.nn.init.normal_(user_emb.weight, std=0.1)
    torch.nn.init.normal_(item_emb.weight, std=0.1)
    optimizer = torch.optim.Adam([*user_emb.parameters(), *item_emb.parameters()], lr=config.learning_rate)
    stopping = EarlyStopping(train, val, config.patience, progress, config.epochs)
    for epoch in range(1, config.epochs + 1):
        order = torch.randperm(len(pair_users), generator=generator)
        total = 0.0
        for lo in range(0, len(order), config.batch_size):
            batch = order[lo : lo + config.batch_size]
            u, i = pair_users[batch], pair_items[batch]
            j = torch.randint(0, n_items, (len(batch),), generator=generator)
            eu, ei, ej = user_emb(u), item_emb(i), item_emb(j)
            diff = (eu * ei).sum(1) - (eu * ej).sum(1)
            loss = -torch.nn.functional.logsigmoid(diff).mean()
            loss = loss + config.l2 * (eu.pow(2).sum() + ei.pow(2).sum() + ej.pow(2).sum()) / len(batch)
            optimizer.zero_grad()
            loss.backward()
            optimizer.step()
            total += float(loss.detach()) * len(batch)
        if epoch % config.eval_every:
            continue
        users, items = user_emb.weight.detach().numpy(), item_emb.weight.detach().numpy()
        if stopping.evaluate(epoch, total / len(order), users, items):
            break
    return stopping.result()


def search_space(trial: optuna.trial.BaseTrial) -> dict[str, Any]:
    """A search trial's overrides of ``MFConfig`` (``core/models/search.py``)."""
    return {
        "learning_rate": trial.suggest_float("learning_rate", 1e-3, 3e-2, log=True),
        "l2": trial.suggest_float("l2", 1e-5, 1e-1, log=True),
        "dim": trial.suggest_categorical("dim", [32, 64, 128]),
    }
