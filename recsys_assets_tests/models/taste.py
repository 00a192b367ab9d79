"""Synthetic training data whose structure a model must learn: users in taste groups."""

from __future__ import annotations

import numpy as np

from recsys_assets.core.io.sparse import Csr


def dense(csr: Csr, n_rows: int, n_cols: int) -> np.ndarray:
    out = np.zeros((n_rows, n_cols), dtype=bool)
    for r in range(n_rows):
        out[r, csr.row(r)] = True
    return out


def taste_groups(n_users: int, groups: int, per_group: int, seed: int) -> tuple[Csr, Csr]:
    """Users in taste groups, each reviewing 12 of its group's items: 10 train, 2 held out."""
    rng = np.random.default_rng(seed)
    rows, items, val_rows, val_items = [], [], [], []
    for user in range(n_users):
        group = user % groups
        picks = rng.choice(np.arange(group * per_group, (group + 1) * per_group), size=12, replace=False)
        rows += [user] * 10
        items += picks[:10].tolist()
        val_rows += [user] * 2
        val_items += picks[10:].tolist()
    return (
        Csr.from_pairs(np.array(rows), np.array(items), n_users),
        Csr.from_pairs(np.array(val_rows), np.array(val_items), n_users),
    )
