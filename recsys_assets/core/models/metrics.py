"""Ranking metrics as pure functions: full ranking over all items, batched.

For each evaluated user every item is scored, the items to exclude (the user's train
items; and validation items when testing) are removed, and the top ``K`` are compared with
the user's held-out items:

* Recall@K = hits / |held-out items of the user|;
* NDCG@K = DCG / IDCG with binary relevance, DCG = sum over hits at rank r of 1/log2(r + 1),
  IDCG over min(|held-out items|, K) hits;
* Hit@K = 1 if any hit; MRR@K = 1 / rank of the first hit (0 without one);

each averaged over users with at least one held-out item. Coverage@K is the share of the
catalogue that appears in at least one user's top K. Slices restrict the held-out items
(cold-start items, popularity tertiles) and average over users with at least one of them;
the ranking itself is unchanged.

Ties: within the top K, equal scores are ordered by item index ascending; at the K-th
place itself a tie may fall either way, so models whose scores tie (popularity) break
ties in their scores.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence

import numpy as np
import torch

from recsys_assets.core.io.sparse import Csr

#: A model's scores of every item for a batch of users: ``score(users)`` -> ``(len(users), n_items)``.
Score = Callable[[np.ndarray], np.ndarray]


def top_k(
    score: Score,
    users: np.ndarray,
    exclude: Sequence[Csr],
    k: int,
    batch: int = 1024,
) -> np.ndarray:
    """``(len(users), k)`` item indices, best first; ``score(user_batch)`` -> ``(b, n_items)``."""
    out = np.empty((len(users), k), dtype=np.int64)
    for lo in range(0, len(users), batch):
        rows = users[lo : lo + batch]
        scores = np.array(score(rows), dtype=np.float32, copy=True)
        for csr in exclude:
            position, items = csr.pairs(rows)
            scores[position, items] = -np.inf
        # torch.topk (multi-threaded) selects the k best several times faster than np.argpartition
        # over a large catalogue; the candidates are then ordered by score, ties by item index.
        values, chosen = torch.topk(torch.from_numpy(scores), k, dim=1)
        part, part_scores = chosen.numpy(), values.numpy()
        order = np.lexsort((part, -part_scores), axis=1)
        out[lo : lo + len(rows)] = np.take_along_axis(part, order, axis=1)
    return out


def dot_scorer(users: np.ndarray, items: np.ndarray) -> Score:
    """``score`` for ``top_k`` from user and item embeddings: their dot products."""

    def score(rows: np.ndarray) -> np.ndarray:
        return users[rows] @ items.T

    return score


def sample_rows(csr: Csr, n: int, seed: int) -> Csr:
    """``csr`` restricted to ``n`` random rows with items (seeded); all of it when ``n`` is 0
    or covers every such row."""
    rows_with_items = np.flatnonzero(csr.lengths() > 0)
    if not n or len(rows_with_items) <= n:
        return csr
    keep = np.zeros(len(csr.indptr) - 1, dtype=bool)
    keep[np.random.default_rng(seed).choice(rows_with_items, n, replace=False)] = True
    rows = np.repeat(np.arange(len(keep)), csr.lengths())
    mask = keep[rows]
    return Csr.from_pairs(rows[mask], csr.indices[mask], len(keep))


#: Scores of one user batch stay under this many floats (256 MB), whatever the catalogue.
SCORE_BUDGET = 64 * 1024 * 1024


def user_batch(n_items: int) -> int:
    """Users scored at once over ``n_items`` items, within ``SCORE_BUDGET``."""
    return int(min(4096, max(16, SCORE_BUDGET // max(n_items, 1))))


def validation_ndcg(score: Score, train: Csr, val: Csr, n_items: int) -> float:
    """Full-ranking NDCG@20 on ``val``'s users, their train items excluded."""
    users = np.flatnonzero(val.lengths() > 0)
    top = top_k(score, users, [train], 20, batch=user_batch(n_items))
    return ranking_metrics(top, users, val, n_items, [20])["ndcg@20"]


def _hits(top: np.ndarray, users: np.ndarray, targets: Csr, n_items: int) -> np.ndarray:
    position, items = targets.pairs(users)
    target_keys = position.astype(np.int64) * n_items + items
    top_keys = np.arange(len(users))[:, None].astype(np.int64) * n_items + top
    return np.isin(top_keys, target_keys)


def per_user_metrics(
    top: np.ndarray, users: np.ndarray, targets: Csr, n_items: int, ks: Sequence[int]
) -> dict[str, np.ndarray]:
    """Recall, NDCG, Hit and MRR at each K for each of ``users`` (0 for a user without a
    target), and ``has_targets``: which users have at least one target (the users averaged)."""
    if len(top) != len(users):
        raise ValueError(f"top has {len(top)} rows for {len(users)} users")
    n_targets = targets.lengths()[users]
    has = n_targets > 0
    hits = _hits(top, users, targets, n_items) & has[:, None]
    discounts = 1.0 / np.log2(np.arange(2, top.shape[1] + 2))
    safe = np.maximum(n_targets, 1)
    out: dict[str, np.ndarray] = {"has_targets": has}
    for k in ks:
        if k > top.shape[1]:
            raise ValueError(f"K={k} exceeds the {top.shape[1]} ranked items")
        h = hits[:, :k]
        dcg = (h * discounts[:k]).sum(axis=1)
        ideal = np.cumsum(discounts[:k])[np.minimum(safe, k) - 1]
        first = np.where(h.any(axis=1), h.argmax(axis=1) + 1, np.inf)
        out[f"recall@{k}"] = h.sum(axis=1) / safe
        out[f"ndcg@{k}"] = dcg / ideal
        out[f"hit@{k}"] = h.any(axis=1).astype(np.float64)
        out[f"mrr@{k}"] = 1.0 / first
    return out


def ranking_metrics(
    top: np.ndarray, users: np.ndarray, targets: Csr, n_items: int, ks: Sequence[int]
) -> dict[str, float]:
    """Recall, NDCG, Hit and MRR at each K, averaged over the users with at least one target."""
    per_user = per_user_metrics(top, users, targets, n_items, ks)
    has = per_user.pop("has_targets")
    if not has.any():
        raise ValueError("no user has a held-out item: nothing to evaluate")
    return {"users": float(has.sum()), **{name: float(v[has].mean()) for name, v in per_user.items()}}


def coverage(top: np.ndarray, n_items: int, k: int) -> float:
    return len(np.unique(top[:, :k])) / n_items


def restrict(targets: Csr, keep_item: np.ndarray) -> Csr:
    """``targets`` with only the items where ``keep_item`` is true (a slice)."""
    rows = np.repeat(np.arange(len(targets.indptr) - 1), targets.lengths())
    mask = keep_item[targets.indices]
    return Csr.from_pairs(rows[mask], targets.indices[mask], len(targets.indptr) - 1)


def popularity_tertiles(train_counts: np.ndarray) -> np.ndarray:
    """0 (head), 1 (torso), 2 (tail): items ordered by train popularity (ties by item index) and
    cut where a third and two thirds of the train interactions are reached, so that each slice
    holds a third of the interactions, and so of the held-out ones (by item count, the tail
    third would hold the never-reviewed items and no held-out interaction at all). Items
    without train interactions are tail."""
    order = np.lexsort((np.arange(len(train_counts)), -train_counts))
    total = max(int(train_counts.sum()), 1)
    before = np.cumsum(train_counts[order]) - train_counts[order]
    tertile = np.empty(len(train_counts), dtype=np.int64)
    tertile[order] = np.minimum(3 * before // total, 2)
    return tertile
