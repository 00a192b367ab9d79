"""Order in the GAT's training: each train edge's sequence context.

For a train edge (user ``u``, item ``i``) at place ``r_i`` in ``u``'s history (0 first, 1
last, the ``recency`` edge attribute), its context is the (at most ``window``) items ``u``
reviewed just before ``i``, each weighted ``exp(decay * (r_j - r_i))``. The GAT scores the
edge with ``user + w * (weighted mean of the context's item states)``, ``w`` learned, so it is
trained to predict each next item from the ones before it; at inference the same readout over
the user's last items (``r_i = 1``: the next one) is the history readout of
``core/models/recency.py`` with this decay, so serving needs nothing new.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import torch
from torch import nn


@dataclass
class SequenceContext:
    #: (edges, window) item indices of each edge's context (0 where padded).
    items: torch.Tensor
    #: (edges, window) their weights (0 where padded).
    weights: torch.Tensor


def sequence_context(
    users: np.ndarray, items: np.ndarray, recency: np.ndarray, window: int, decay: float
) -> SequenceContext:
    """The context of every train edge (edges in any order; ties in time by edge order)."""
    n = len(users)
    order = np.lexsort((np.arange(n), recency, users))
    sorted_users = users[order]
    starts = np.flatnonzero(np.r_[True, sorted_users[1:] != sorted_users[:-1]])
    counts = np.diff(np.r_[starts, n])
    rank = np.arange(n) - np.repeat(starts, counts)  # place in the user's sequence
    context_items = np.zeros((n, window), dtype=np.int64)
    context_weights = np.zeros((n, window), dtype=np.float32)
    for lag in range(1, window + 1):
        has = rank >= lag
        target = order[has]  # the edges whose sequence has an item ``lag`` places before
        source = order[np.flatnonzero(has) - lag]
        context_items[target, lag - 1] = items[source]
        context_weights[target, lag - 1] = np.exp(decay * (recency[source] - recency[target]))
    return SequenceContext(torch.from_numpy(context_items), torch.from_numpy(context_weights))


def with_context(
    users: torch.Tensor,
    item_states: torch.Tensor,
    items: torch.Tensor,
    weights: torch.Tensor,
    weight: torch.Tensor,
) -> torch.Tensor:
    """``users + weight * (the weighted mean of the context items' states)``; users without a
    context (their first item) are left as they are."""
    share = weights / weights.sum(1, keepdim=True).clamp_min(1e-12)
    # A weighted bag: never materializes the (edges, window, hidden) gather, nor its gradient
    # (8x faster a step than gathering at 50k edges x 20 items).
    pooled = nn.functional.embedding_bag(items, item_states, per_sample_weights=share, mode="sum")
    return users + weight * pooled
