"""Example recommendations, for a person reading ``eval_report``: a few test users, the last
items of their history (train and validation) and the model's top items for them, by display
name, with the items they went on to interact with in the test period marked.

The users are a seeded sample of those with both train and test interactions, so the same
users appear run after run and models can be compared by eye; the ranking is the one the test
metrics use (train and validation items excluded)."""

from __future__ import annotations

import numpy as np

from recsys_assets.core.markdown import Markdown, markdown_table
from recsys_assets.core.models.metrics import Score, top_k
from recsys_assets.core.models.training_data import TrainingData

EXAMPLE_USERS = 5
#: Recommended items shown per user, and the last history items shown beside them.
SHOWN, RECENT = 5, 3


def example_users(data: TrainingData, n: int = EXAMPLE_USERS, seed: int = 0) -> np.ndarray:
    """``n`` users (sorted) with at least one train and one test interaction."""
    train_sizes, test_sizes = np.diff(data.train.indptr), np.diff(data.test.indptr)
    eligible = np.flatnonzero((train_sizes > 0) & (test_sizes > 0))
    rng = np.random.default_rng(seed)
    return np.sort(rng.choice(eligible, size=min(n, len(eligible)), replace=False))


def _row(csr_indptr: np.ndarray, user: int) -> slice:
    return slice(int(csr_indptr[user]), int(csr_indptr[user + 1]))


def examples_table(
    score: Score, data: TrainingData, users: np.ndarray, user_ids: list[str], names: list[str]
) -> Markdown:
    """A markdown table: user, the last items of the history the model read when tested (train
    and validation, most recent first) and the model's top items, those in the user's test
    items marked ✓."""
    exclude = [data.train, data.val]
    top = top_k(score, users, exclude, SHOWN)
    read = data.history("test")
    rows = []
    for user, ranked in zip(users, top, strict=True):
        span = _row(read.indptr, int(user))
        history = read.indices[span]
        # Values place each item in the user's history in time; without them, stored order.
        when = read.values[span] if read.values is not None else np.arange(len(history))
        recent = history[np.argsort(-when, kind="stable")][:RECENT]
        tested = set(data.test.indices[_row(data.test.indptr, int(user))].tolist())
        # A tiny catalogue leaves fewer than SHOWN unseen items: top_k then fills with seen ones.
        seen = set(history.tolist()) | set(data.val.indices[_row(data.val.indptr, int(user))].tolist())
        items = [int(i) for i in ranked if int(i) not in seen]
        shown = "; ".join(names[i] for i in recent)
        picks = "; ".join(f"{'✓ ' if i in tested else ''}{names[i]}" for i in items)
        rows.append([user_ids[user], f"{shown} (of {len(history)})", picks])
    return markdown_table(["user", "last in their history", "recommended (✓: in their test items)"], rows)
