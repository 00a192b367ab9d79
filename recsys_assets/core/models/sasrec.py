"""SASRec (Kang and McAuley, "Self-Attentive Sequential Recommendation", ICDM 2018): causal
self-attention over each user's items in time order, trained to predict every next item.

The order-aware peer the GAT is measured against. As in the paper: item embeddings (shared
with the output layer) plus learned positions, ``layers`` pre-norm Transformer blocks under a
causal mask, padding zeroed; a user's vector is the last position's state, so a score is a dot
product with the item embeddings and serving is one FAISS search like any embedding model.
Unlike the paper's one sampled negative with binary cross-entropy, each position is trained
with a softmax over the target and ``negatives`` items shared by the batch (the full catalogue
when it is smaller), which Petrov and Macdonald (gSASRec, RecSys 2023) show trains better.

A user's vector depends on the history it reads: validation encodes the train history, test
the train and validation history (``evaluation.py``), through the encoder its checkpoint holds
(``load_encoder``). Early-stopped on validation NDCG@20 and deterministic on CPU for a seed.
"""

from __future__ import annotations

import io
import math
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

import numpy as np
import torch
from torch import nn

from recsys_assets.core.io.sparse import Csr
from recsys_assets.core.models.early_stopping import EarlyStopping, FitResult, deterministic_torch
from recsys_assets.core.models.scoring import Scorable
from recsys_assets.core.models.training import Fitting, Trained
from recsys_assets.core.models.training_data import TrainingData
from recsys_assets.settings.models import SASRecConfig

if TYPE_CHECKING:
    import optuna

#: Users encoded per forward pass when scoring.
ENCODE_BATCH = 1024


def sequences(history: Csr, length: int) -> np.ndarray:
    """``(users, length)`` item ids + 1 (0 pads): each user's latest ``length`` items in time
    order (``history.values``, ``recency.py``; item order where it has none), left-padded so the
    last column is the latest item."""
    n_users = len(history.indptr) - 1
    counts = history.lengths()
    rows = np.repeat(np.arange(n_users), counts)
    when = history.values if history.values is not None else np.zeros(len(rows))
    order = np.lexsort((when, rows))  # rows stay in their own ranges, sorted in time within
    items, rows = history.indices[order], rows[order]
    from_end = np.repeat(history.indptr[1:], counts) - 1 - np.arange(len(rows))
    kept = from_end < length
    out = np.zeros((n_users, length), dtype=np.int64)
    out[rows[kept], length - 1 - from_end[kept]] = items[kept] + 1
    return out


class SASRec(nn.Module):
    causal: torch.Tensor

    def __init__(self, n_items: int, config: SASRecConfig):
        super().__init__()
        self.dim, self.length = config.dim, config.max_length
        self.items = nn.Embedding(n_items + 1, config.dim, padding_idx=0)
        self.positions = nn.Embedding(config.max_length, config.dim)
        layer = nn.TransformerEncoderLayer(
            config.dim, config.heads, dim_feedforward=config.dim, dropout=config.dropout,
            batch_first=True, norm_first=True,
        )  # fmt: skip
        self.blocks = nn.TransformerEncoder(layer, config.layers, enable_nested_tensor=False)
        self.norm = nn.LayerNorm(config.dim)
        self.dropout = nn.Dropout(config.dropout)
        nn.init.normal_(self.items.weight, std=1.0 / math.sqrt(config.dim))
        with torch.no_grad():
            self.items.weight[0].zero_()
        self.register_buffer(
            "causal", nn.Transformer.generate_square_subsequent_mask(config.max_length), persistent=False
        )

    def forward(self, seq: torch.Tensor) -> torch.Tensor:
        """``(b, length)`` padded sequences -> ``(b, length, dim)`` states, each position reading
        only itself and earlier ones (padding reads as zeros, as in the paper)."""
        real = (seq != 0).unsqueeze(-1)
        x = self.items(seq) * math.sqrt(self.dim) + self.positions.weight[: seq.shape[1]]
        x = self.dropout(x) * real
        length = seq.shape[1]
        h = self.blocks(x, mask=self.causal[:length, :length], is_causal=True)
        return self.norm(h) * real

    def item_vectors(self) -> torch.Tensor:
        return self.items.weight[1:]

    def encode(self, history: Csr) -> np.ndarray:
        """Each user's vector: the state after the latest item of ``history``."""
        return self.encode_sequences(torch.from_numpy(sequences(history, self.length)))

    @torch.no_grad()
    def encode_sequences(self, seqs: torch.Tensor) -> np.ndarray:
        """``encode`` of ``sequences``' padded rows."""
        was = self.training
        self.eval()
        out = [self(seqs[lo : lo + ENCODE_BATCH])[:, -1] for lo in range(0, len(seqs), ENCODE_BATCH)]
        self.train(was)
        return torch.cat(out).numpy() if out else np.zeros((0, self.dim), np.float32)


def _loss(
    model: SASRec, batch: torch.Tensor, n_items: int, negatives: int, generator: torch.Generator
) -> Any:
    """Softmax cross-entropy of every next item against shared negatives (every item when there
    are no more than ``negatives``)."""
    inputs, targets = batch[:, :-1], batch[:, 1:]
    states = model(inputs)[inputs != 0]
    target = targets[inputs != 0] - 1
    items = model.item_vectors()
    if n_items <= negatives:
        return nn.functional.cross_entropy(states @ items.T, target)
    sampled = torch.randint(0, n_items, (negatives,), generator=generator)
    positive = (states * items[target]).sum(-1, keepdim=True)
    negative = (states @ items[sampled].T).masked_fill(sampled[None, :] == target[:, None], -torch.inf)
    logits = torch.cat([positive, negative], dim=1)
    return nn.functional.cross_entropy(logits, torch.zeros(len(logits), dtype=torch.long))


@deterministic_torch()
def train_sasrec(
    train: Csr,
    val: Csr,
    n_items: int,
    config: SASRecConfig,
    progress: Callable[[dict[str, float]], None] | None = None,
) -> tuple[FitResult, SASRec]:
    """The fit with the best validation NDCG@20, and the model at its best epoch."""
    torch.manual_seed(config.seed)
    generator = torch.Generator().manual_seed(config.seed)
    # One training sequence per user with at least two items: each position predicts the next.
    seqs = torch.from_numpy(sequences(train, config.max_length + 1))
    seqs = seqs[(seqs != 0).sum(1) >= 2]
    # Every user's train history as validation reads it, built once for all the epochs.
    histories = torch.from_numpy(sequences(train, config.max_length))
    if len(seqs) == 0:
        raise ValueError("no user has two train interactions to fit SASRec on")
    model = SASRec(n_items, config)
    optimizer = torch.optim.Adam(model.parameters(), lr=config.learning_rate, weight_decay=config.l2)
    stopping = EarlyStopping(train, val, config.patience, progress, config.epochs)
    best_state: dict[str, torch.Tensor] = {}
    for epoch in range(1, config.epochs + 1):
        order = torch.randperm(len(seqs), generator=generator)
        total = 0.0
        for batch in order.split(config.batch_size):
            loss = _loss(model, seqs[batch], n_items, config.negatives, generator)
            optimizer.zero_grad()
            loss.backward()
            optimizer.step()
            total += float(loss.detach()) * len(batch)
        if epoch % config.eval_every:
            continue
        users, items = model.encode_sequences(histories), model.item_vectors().detach().numpy()
        stop = stopping.evaluate(epoch, total / len(seqs), users, items)
        if stopping.best.best_epoch == epoch:
            best_state = {k: v.clone() for k, v in model.state_dict().items()}
        if stop:
            break
    model.load_state_dict(best_state)
    return stopping.result(), model


def checkpoint(model: SASRec, n_items: int, config: SASRecConfig) -> bytes:
    buffer = io.BytesIO()
    torch.save({"n_items": n_items, "config": config.to_dict(), "state": model.state_dict()}, buffer)
    return buffer.getvalue()


def load_encoder(data: bytes) -> Callable[[Csr], np.ndarray]:
    """The user encoder a checkpoint holds (``ModelSpec.encoder``)."""
    saved = torch.load(io.BytesIO(data), weights_only=True)
    model = SASRec(int(saved["n_items"]), SASRecConfig.model_validate(saved["config"]))
    model.load_state_dict(saved["state"])
    return model.encode


def fit(data: TrainingData, config: SASRecConfig, fitting: Fitting) -> Trained:
    """SASRec on the train rows, early-stopped on validation; its user vectors read the history
    they are given (``Scorable.encoder``)."""
    result, model = train_sasrec(data.train, data.val, data.n_items, config, fitting.progress)
    scorable = Scorable(result.users, result.items, encoder=model.encode)
    return Trained(scorable, config.to_dict(), result, checkpoint(model, data.n_items, config))


def search_space(trial: optuna.trial.BaseTrial) -> dict[str, Any]:
    """A search trial's overrides of ``SASRecConfig`` (``core/models/search.py``)."""
    return {
        "learning_rate": trial.suggest_float("learning_rate", 3e-4, 1e-2, log=True),
        "dropout": trial.suggest_float("dropout", 0.0, 0.5),
        "layers": trial.suggest_int("layers", 1, 3),
        "dim": trial.suggest_categorical("dim", [32, 64, 128]),
        "max_length": trial.suggest_categorical("max_length", [20, 50, 100, 200]),
    }
