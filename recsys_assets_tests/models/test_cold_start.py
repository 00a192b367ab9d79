"""The item-cold-start protocol: held-out items leave training entirely, their interactions
become the cold targets, and the content-only peer ranks them from content alone."""

from __future__ import annotations

import numpy as np
import pytest

from recsys_assets.core.io.sparse import Csr
from recsys_assets.core.models.cold_start import cold_metrics, cold_scores, content_scorer, item_cold_start
from recsys_assets.core.models.popularity import popularity_scores
from recsys_assets.core.models.training_data import TrainingData
from recsys_assets_tests.models.taste import taste_groups

GROUPS, PER_GROUP, USERS = 4, 25, 200


def _data() -> TrainingData:
    train, val = taste_groups(USERS, GROUPS, PER_GROUP, seed=3)
    empty = Csr(np.zeros(USERS + 1, dtype=np.int64), np.zeros(0, dtype=np.int64))
    return TrainingData(train, val, empty, GROUPS * PER_GROUP)


def test_held_out_items_leave_training_and_become_the_targets() -> None:
    data = _data()
    protocol = item_cold_start(data, 0.2, seed=0)
    held = np.concatenate([protocol.val_items, protocol.test_items])
    assert len(held) == 20 and len(np.intersect1d(protocol.val_items, protocol.test_items)) == 0
    # No interaction with a held-out item is left to train or early-stop on.
    for part in (protocol.warm.train, protocol.warm.val):
        assert not np.isin(part.indices, held).any()
    # Every interaction with them, from any split, is a target of exactly one cold split.
    rows = lambda c: np.repeat(np.arange(USERS), c.lengths())  # noqa: E731
    everything = {
        (int(u), int(i))
        for part in (data.train, data.val)
        for u, i in zip(rows(part), part.indices, strict=True)
    }
    cold = {(int(u), int(i)) for part in (protocol.cold_val, protocol.cold_test) for u, i in
            zip(rows(part), part.indices, strict=True)}  # fmt: skip
    assert cold == {(u, i) for u, i in everything if i in set(held.tolist())}
    assert set(protocol.cold_val.indices) <= set(protocol.val_items) and set(
        protocol.cold_test.indices
    ) <= set(protocol.test_items)
    assert len(protocol.warm.train.indices) + len(protocol.warm.val.indices) + len(cold) == len(everything)
    assert protocol.summary()["held_out_items"] == 20
    # Seeded: the same items again.
    np.testing.assert_array_equal(item_cold_start(data, 0.2, seed=0).val_items, protocol.val_items)
    with pytest.raises(ValueError, match="expected a share between 0 and 1"):
        item_cold_start(data, 1.0, seed=0)


def test_content_reaches_cold_items_and_popularity_cannot() -> None:
    data = _data()
    protocol = item_cold_start(data, 0.2, seed=0)
    # Each item's content is its taste group's direction plus noise.
    rng = np.random.default_rng(0)
    group = np.arange(data.n_items) // PER_GROUP
    features = np.eye(GROUPS)[group] * 2 + rng.normal(scale=0.3, size=(data.n_items, GROUPS))
    content = cold_metrics(content_scorer(features, protocol.warm.train), protocol)
    counts = popularity_scores(protocol.warm.train.indices, data.n_items)
    popular = cold_metrics(lambda r: np.broadcast_to(counts, (len(r), data.n_items)), protocol)
    assert popular["test"]["ndcg@20"] == 0.0 and popular["test"]["held_out_share_of_top"] == 0.0
    # The held-out items of the user's group compete with its ~20 warm ones, by content alone.
    assert content["test"]["ndcg@20"] > 0.05 and content["test"]["held_out_share_of_top"] > 0.05
    # The content user is the normalised mean of their train items' unit vectors.
    unit = features / np.linalg.norm(features, axis=1, keepdims=True)
    user = unit[protocol.warm.train.row(0)].mean(0)
    np.testing.assert_allclose(
        content_scorer(features, protocol.warm.train)(np.array([0]))[0],
        unit @ (user / np.linalg.norm(user)),
        rtol=1e-5,
    )


def test_cold_scores_hold_each_users_ndcg_over_the_users_with_a_cold_target() -> None:
    data = _data()
    protocol = item_cold_start(data, 0.2, seed=0)
    rng = np.random.default_rng(1)
    features = rng.normal(size=(data.n_items, 4))
    metrics, per_user = cold_scores(content_scorer(features, protocol.warm.train), protocol)
    for split, targets in (("val", protocol.cold_val), ("test", protocol.cold_test)):
        assert len(per_user[split]) == int((targets.lengths() > 0).sum()) == metrics[split]["users"]
        assert per_user[split].mean() == pytest.approx(metrics[split]["ndcg@20"])
