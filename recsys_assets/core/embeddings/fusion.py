"""Fuse text and image embeddings into one 128-d item space shaped by co-review.

Input per item: ``concat(text, image or zeros, has_image)``; model: ``Linear -> ReLU ->
Linear`` (hidden 256) -> 128-d, L2-normalised.

Objective (why this one): the fused space feeds item-item kNN edges and the recommender,
so "close" should mean "reviewed by the same people", not "described with the same
words". The MLP is trained with a symmetric in-batch InfoNCE loss on pairs of items that
one user reviewed close together in time (within ``pair_window`` reviews), using only the
``train`` rows of ``interaction_splits``, as every learned part does: validation and test
interactions never reach it (its record and blocking check, ``core/leakage.py``). It sees
content only, never item ids,
so it applies unchanged to the items nobody reviewed (most of a real catalogue). In-batch
negatives are logQ-corrected for popularity: without that correction popular items are pushed
away from everything, and the fused space agreed with co-review worse than text alone. Image
inputs are dropped at random during training (``image_dropout``) so items without an image
land in the same space as items with one.

``neighbour_agreement`` measures the result on the split's validation rows: the share of
(the user's last train item, a validation item of theirs) pairs where the validation item is
among the anchor's ``k`` nearest neighbours.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import numpy as np
import torch

from recsys_assets.core.io.sparse import Csr
from recsys_assets.core.models.training_data import TrainingData
from recsys_assets.core.outcomes import CheckOutcome
from recsys_assets.settings.embeddings import FusionConfig


def fusion_inputs(text: np.ndarray, image: np.ndarray, image_rows: np.ndarray) -> np.ndarray:
    """``(n_items, d_text + d_image + 1)``: text, image (zeros where none), has-image flag.

    ``image_rows[j]`` is the item row of ``image[j]``.
    """
    n = len(text)
    x = np.zeros((n, text.shape[1] + image.shape[1] + 1), dtype=np.float32)
    x[:, : text.shape[1]] = text
    if len(image_rows):
        x[image_rows, text.shape[1] : -1] = image
        x[image_rows, -1] = 1.0
    return x


def _time_ordered(train: Csr) -> tuple[np.ndarray, np.ndarray]:
    """(user, item) of every train interaction, by user and then in time (``train.values``)."""
    users = np.repeat(np.arange(len(train.indptr) - 1), train.lengths())
    if train.values is None:
        raise ValueError("the train interactions carry no positions in time; rematerialize the splits")
    order = np.lexsort((train.values, users))
    return users[order], train.indices[order]


def co_review_pairs(train: Csr, window: int) -> np.ndarray:
    """``(n, 2)`` item pairs reviewed by one user at most ``window`` train reviews apart."""
    users, items = _time_ordered(train)
    pairs = []
    for gap in range(1, window + 1):
        same = users[gap:] == users[:-gap]
        a, b = items[:-gap][same], items[gap:][same]
        keep = a != b
        pairs.append(np.stack([a[keep], b[keep]], axis=1))
    return np.concatenate(pairs) if pairs else np.zeros((0, 2), dtype=np.int64)


def heldout_pairs(train: Csr, val: Csr) -> np.ndarray:
    """``(n, 2)``: (each user's last train item, each of their validation items)."""
    users, items = _time_ordered(train)
    last = np.full(len(train.indptr) - 1, -1, dtype=np.int64)
    last[users] = items  # in time order, so the last write per user is their latest item
    rows = np.repeat(np.arange(len(val.indptr) - 1), val.lengths())
    anchors = last[rows]
    keep = (anchors >= 0) & (anchors != val.indices)
    return np.stack([anchors[keep], val.indices[keep]], axis=1).astype(np.int64)


class FusionMLP(torch.nn.Module):
    def __init__(self, in_dim: int, hidden: int, out_dim: int):
        super().__init__()
        self.out_dim = out_dim
        self.net = torch.nn.Sequential(
            torch.nn.Linear(in_dim, hidden), torch.nn.ReLU(), torch.nn.Linear(hidden, out_dim)
        )

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return torch.nn.functional.normalize(self.net(x), dim=-1)


@dataclass
class FusionResult:
    model: FusionMLP
    losses: list[float]
    seconds: float
    pairs: int
    #: Pairs each epoch trained on (all of ``pairs``, or a fresh sample of them).
    pairs_per_epoch: int


def epoch_pairs(n_pairs: int, config: FusionConfig) -> int:
    """Co-review pairs each epoch trains on: all, or ``pairs_per_epoch`` of them."""
    return min(n_pairs, config.pairs_per_epoch or n_pairs)


def train_fusion(
    x: np.ndarray,
    pairs: np.ndarray,
    text_dim: int,
    config: FusionConfig,
    progress: Callable[[int, float], None] | None = None,
) -> FusionResult:
    """Train ``FusionMLP`` on co-review ``pairs`` (rows of ``x``); mean loss per epoch."""
    if len(pairs) == 0:
        raise ValueError("no co-review pairs in the training window: cannot train the fusion MLP")
    torch.manual_seed(config.seed)
    generator = torch.Generator().manual_seed(config.seed)
    features = torch.from_numpy(x)
    model = FusionMLP(x.shape[1], config.hidden, config.out_dim)
    optimizer = torch.optim.AdamW(
        model.parameters(), lr=config.learning_rate, weight_decay=config.weight_decay
    )
    pair_tensor = torch.from_numpy(pairs.astype(np.int64))
    # logQ correction (Yi et al., RecSys 2019): in-batch negatives are drawn in proportion
    # to how often an item appears in pairs, so popular items would be pushed away from
    # everything; subtracting log q from each column's logit undoes that sampling bias.
    frequency = np.bincount(pairs.ravel(), minlength=len(x)).astype(np.float64)
    log_q = torch.from_numpy(np.log(np.maximum(frequency, 1.0) / frequency.sum()).astype(np.float32))
    per_epoch = epoch_pairs(len(pairs), config)
    losses: list[float] = []
    start = time.perf_counter()
    for epoch in range(config.epochs):
        order = torch.randperm(len(pair_tensor), generator=generator)[:per_epoch]
        total, batches = 0.0, 0
        for lo in range(0, len(order), config.batch_size):
            batch = pair_tensor[order[lo : lo + config.batch_size]]
            if len(batch) < 2:
                continue
            za = model(_drop_image(features[batch[:, 0]], text_dim, config.image_dropout, generator))
            zb = model(_drop_image(features[batch[:, 1]], text_dim, config.image_dropout, generator))
            logits = za @ zb.T / config.temperature
            target = torch.arange(len(batch))
            loss = (
                torch.nn.functional.cross_entropy(logits - log_q[batch[:, 1]][None, :], target)
                + torch.nn.functional.cross_entropy(logits.T - log_q[batch[:, 0]][None, :], target)
            ) / 2
            optimizer.zero_grad()
            loss.backward()
            optimizer.step()
            total += float(loss.detach())
            batches += 1
        losses.append(total / max(batches, 1))
        if progress:
            progress(epoch + 1, losses[-1])
    return FusionResult(model.eval(), losses, time.perf_counter() - start, len(pairs), per_epoch)


def _drop_image(x: torch.Tensor, text_dim: int, rate: float, generator: torch.Generator) -> torch.Tensor:
    if rate <= 0:
        return x
    drop = torch.rand(len(x), generator=generator) < rate
    x = x.clone()
    x[drop, text_dim:] = 0.0
    return x


@torch.inference_mode()
def embed(model: FusionMLP, x: np.ndarray, batch_size: int = 65_536) -> np.ndarray:
    out = [model(torch.from_numpy(x[lo : lo + batch_size])) for lo in range(0, len(x), batch_size)]
    return torch.cat(out).numpy().astype(np.float32) if out else np.zeros((0, model.out_dim), np.float32)


def neighbour_agreement(embeddings: np.ndarray, pairs: np.ndarray, k: int, chunk: int = 1024) -> float:
    """Share of ``(anchor, target)`` pairs whose target is among the anchor's k nearest items.

    ``embeddings`` are L2-normalised rows; the anchor itself is not its own neighbour.
    """
    if len(pairs) == 0:
        raise ValueError("no held-out pairs to measure neighbour agreement on")
    table = torch.from_numpy(np.ascontiguousarray(embeddings, dtype=np.float32))
    hits = 0
    for lo in range(0, len(pairs), chunk):
        anchors = torch.from_numpy(pairs[lo : lo + chunk, 0])
        targets = torch.from_numpy(pairs[lo : lo + chunk, 1])
        scores = table[anchors] @ table.T
        scores[torch.arange(len(anchors)), anchors] = -torch.inf
        top = scores.topk(min(k, len(table) - 1), dim=1).indices
        hits += int((top == targets[:, None]).any(dim=1).sum())
    return hits / len(pairs)


@dataclass
class FusionFit:
    result: FusionResult
    fused: np.ndarray
    #: Held-out co-review pairs found among the k nearest neighbours, by embedding (text, fused).
    agreement: dict[str, float]
    #: What ``fusion_config.json`` holds.
    summary: dict[str, Any]


def fit_fusion(
    text: np.ndarray,
    image: np.ndarray,
    image_rows: np.ndarray,
    data: TrainingData,
    config: FusionConfig,
    log: Callable[[str], None] = lambda _: None,
) -> FusionFit:
    """Train on the co-review pairs of the train rows (``data``: item nodes are items rows),
    embed every item, and measure neighbour agreement with the validation rows for text and
    fused vectors alike."""
    if len(text) != data.n_items:
        raise ValueError(f"{len(text)} text rows for {data.n_items} item nodes; rematerialize the embeddings")
    pairs = co_review_pairs(data.train, config.pair_window)
    eval_pairs = heldout_pairs(data.train, data.val)
    rng = np.random.default_rng(config.seed)
    if len(eval_pairs) > config.eval_pairs:
        eval_pairs = eval_pairs[rng.choice(len(eval_pairs), config.eval_pairs, replace=False)]
    x = fusion_inputs(text, image, image_rows)
    per_epoch = epoch_pairs(len(pairs), config)
    log(
        f"training fusion MLP {x.shape[1]} -> {config.hidden} -> {config.out_dim} on {len(pairs):,} "
        f"co-review pairs, {per_epoch:,} an epoch ({len(text):,} items, {len(image_rows):,} with an image)"
    )
    result = train_fusion(
        x, pairs, text.shape[1], config, progress=lambda e, loss: log(f"epoch {e}: loss {loss:.4f}")
    )
    fused = embed(result.model, x)
    agreement = {
        "text": neighbour_agreement(text, eval_pairs, config.k),
        "fused": neighbour_agreement(fused, eval_pairs, config.k),
    }
    summary = {
        "config": config.to_dict(),
        "train_interactions": len(data.train.indices),
        "val_interactions": len(data.val.indices),
        "input_dim": int(x.shape[1]),
        "text_dim": int(text.shape[1]),
        "image_dim": int(image.shape[1]),
        "items": len(text),
        "items_with_image": len(image_rows),
        "train_pairs": result.pairs,
        "pairs_per_epoch": result.pairs_per_epoch,
        "eval_pairs": len(eval_pairs),
        "losses": [round(v, 5) for v in result.losses],
        "train_seconds": round(result.seconds, 3),
        f"neighbour_agreement_at_{config.k}": {k: round(v, 5) for k, v in agreement.items()},
    }
    return FusionFit(result, fused, agreement, summary)


def agreement_outcome(fit: FusionFit, k: int) -> CheckOutcome:
    """Fused neighbours agree with validation co-review at least as often as text neighbours."""
    fused, text = fit.agreement["fused"], fit.agreement["text"]
    return CheckOutcome(
        fused >= text,
        f"(last train item, validation item) pairs in the top-{k}: fused {fused:.2%} vs text {text:.2%}",
        fused,
        text,
        metadata={"agreement_fused": fused, "agreement_text": text},
    )
