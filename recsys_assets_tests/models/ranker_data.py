"""Data and inputs for the ranker's tests: users who like their own group's items, a retriever
that knows it, one that is noise, an item-item one read with a use of order, content, times."""

from __future__ import annotations

import numpy as np
import pandas as pd
import scipy.sparse as sp

from recsys_assets.core.io.sparse import Csr
from recsys_assets.core.models import training
from recsys_assets.core.models.ranker.export import ranker_files
from recsys_assets.core.models.ranker.inputs import RankerInputs
from recsys_assets.core.models.ranker.timeline import timeline
from recsys_assets.core.models.recency import ORDER_FREE, Order
from recsys_assets.core.models.scoring import Scorable
from recsys_assets.core.models.training_data import TrainingData
from recsys_assets.settings.models import RankerConfig


def taste_data(seed: int, n_users: int = 120, n_items: int = 40) -> TrainingData:
    """Users who like the items of their own group (item % 4 == user % 4), in time order."""
    rng = np.random.default_rng(seed)
    parts: dict[str, list[tuple[int, int]]] = {"train": [], "val": [], "test": []}
    for u in range(n_users):
        liked = rng.permutation([i for i in range(n_items) if i % 4 == u % 4])[:8]
        for k, item in enumerate(liked):
            parts["train" if k < 6 else "val" if k == 6 else "test"].append((u, int(item)))
    csr = {}
    for name, pairs in parts.items():
        rows, items = np.array(pairs).T
        values = np.tile(np.linspace(0, 1, 6), n_users) if name == "train" else None
        csr[name] = Csr.from_pairs(rows, items, n_users, values)
    seen = np.array(parts["train"] + parts["val"]).T
    test_history = Csr.from_pairs(seen[0], seen[1], n_users, np.zeros(seen.shape[1]))
    return TrainingData(csr["train"], csr["val"], csr["test"], n_items, test_history)


def ranker_inputs(data: TrainingData, n_items: int = 40) -> RankerInputs:
    group = np.eye(4, dtype=np.float32)[np.arange(n_items) % 4]
    users = np.eye(4, dtype=np.float32)[np.arange(data.n_users) % 4]
    rng = np.random.default_rng(5)
    noisy = Scorable(
        rng.normal(size=(data.n_users, 4)).astype(np.float32),
        rng.normal(size=(n_items, 4)).astype(np.float32),
    )
    taste = Scorable(users, group + 0.01 * rng.normal(size=group.shape).astype(np.float32))
    return RankerInputs({"taste": (taste, ORDER_FREE), "noise": (noisy, ORDER_FREE)}, {"fused": group})


CONFIG = RankerConfig(per_source=8, folds=3, max_rounds=30, patience=10, threads=1, content=("fused",),
                      grid=({"learning_rate": 0.1, "num_leaves": 4, "min_data_in_leaf": 5},))  # fmt: skip


def with_times_and_neighbours(data: TrainingData) -> RankerInputs:
    """The taste inputs, plus an item-item retriever read with a use of order and the timeline."""
    base = ranker_inputs(data)
    rng = np.random.default_rng(3)
    neighbours = sp.random(data.n_items, data.n_items, density=0.2, random_state=4, dtype=np.float32).tocsr()
    knn = Scorable(neighbours=neighbours)
    users, items, split, days = [], [], [], []
    for name, csr, day in (("train", data.train, None), ("val", data.val, 30.0), ("test", data.test, 31.0)):
        position, item = csr.pairs(np.arange(data.n_users))
        users.append(position)
        items.append(item)
        split.append(np.full(len(item), name))
        # Train days spread over a month by the history's order, with some noise.
        spread = csr.values * 25 + rng.uniform(0, 3, len(item)) if day is None else None
        days.append(spread if spread is not None else np.full(len(item), day))
    ts = pd.Series(pd.to_datetime(np.concatenate(days), unit="D"))
    line = timeline(np.concatenate(users), np.concatenate(items), np.concatenate(split), ts, data.n_users,
                    data.n_items)  # fmt: skip
    models = {**base.models, "knn": (knn, Order(decay=2.0))}
    return RankerInputs(models, base.content, line)


def trained_ranker(seed: int = 0) -> tuple[TrainingData, RankerInputs, dict[str, bytes]]:
    """The taste data, its inputs (times and neighbours too), and the ranker's serving files."""
    data = taste_data(seed)
    inputs = with_times_and_neighbours(data)
    trained = training.train("ranker", data, CONFIG, training.Fitting(ranker=inputs))
    assert trained.checkpoint is not None
    return data, inputs, ranker_files(inputs, CONFIG, data, trained.checkpoint)
