"""The popularity baseline: every user gets the items with the most train interactions."""

from __future__ import annotations

import numpy as np


def popularity_scores(train_items: np.ndarray, n_items: int) -> np.ndarray:
    """Train popularity per item; ties broken towards the lower item index.

    With items indexed in ascending id order (integers compared as integers), this is the
    popularity baseline of RecBole and most papers: its test NDCG@20 on MovieLens-100k with
    this project's split is 0.0782, as RecBole reports (``benchmarks/movielens.py``).
    """
    counts = np.bincount(train_items, minlength=n_items).astype(np.float64)
    # A tie-break smaller than any count difference (counts are integers).
    return counts - np.arange(n_items) / (2.0 * n_items)


def popularity_vectors(train_items: np.ndarray, n_users: int, n_items: int) -> tuple[np.ndarray, np.ndarray]:
    """Popularity as one-dimensional user and item vectors, so it is scored (dot product),
    stored and evaluated like every embedding model: users all 1, items their scores."""
    return np.ones((n_users, 1), dtype=np.float64), popularity_scores(train_items, n_items)[:, None]
