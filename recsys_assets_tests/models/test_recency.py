"""Order-awareness shared by every model: history positions, the weighting, the grid, the
choice on validation, the readout; and that it wins where taste drifts and stays off where
order carries nothing."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from recsys_assets.core.graphs.node_maps import NodeMaps
from recsys_assets.core.io.sparse import Csr
from recsys_assets.core.models import training
from recsys_assets.core.models.recency import ORDER_FREE, Order, choose, history_matrix, order_grid, readout
from recsys_assets.core.models.scoring import Scorable
from recsys_assets.core.models.training_data import TrainingData, history_positions, training_data
from recsys_assets.settings.models import EASEConfig, ItemKNNConfig, OrderConfig


def test_history_positions_follow_time_with_ties_in_row_order() -> None:
    users = np.array([1, 0, 1, 1, 0, 2])
    ts = np.array([30, 5, 10, 10, 1, 7])
    # User 1: ts 10 (row 2), 10 (row 3), 30 (row 0) -> 0, 0.5, 1; user 0: row 4 then row 1; user 2 alone: 1.
    np.testing.assert_allclose(history_positions(users, ts), [1.0, 1.0, 0.0, 0.5, 0.0, 1.0])
    np.testing.assert_allclose(history_positions(users, None), [0.0, 0.0, 0.5, 1.0, 1.0, 1.0])


def test_training_data_carries_each_train_items_place_in_time() -> None:
    splits = pd.DataFrame(
        {
            "user_id": ["u", "u", "u", "u", "u"],
            "item_id": ["c", "a", "b", "d", "e"],
            "ts": pd.to_datetime(["2020-03-01", "2020-01-01", "2020-02-01", "2020-04-01", "2020-05-01"]),
            "split": ["train", "train", "train", "val", "test"],
        }
    )
    data = training_data(splits, NodeMaps(["u"], ["a", "b", "c", "d", "e"]))
    # Train items a, b, c in time order: 0, 0.5, 1 (the CSR holds them by item index).
    assert data.train.indices.tolist() == [0, 1, 2]
    assert data.train.values is not None
    np.testing.assert_allclose(data.train.values, [0.0, 0.5, 1.0])


def test_order_weights_and_history_matrix() -> None:
    order = Order(decay=2.0, floor=0.1)
    np.testing.assert_allclose(order.weights(np.array([0.0, 1.0])), [0.1 + np.exp(-2.0), 1.1])
    train = Csr.from_pairs(np.array([0, 0, 1]), np.array([2, 0, 1]), 2, values=np.array([1.0, 0.0, 1.0]))
    weighted = history_matrix(train, 3, order).toarray()
    np.testing.assert_allclose(weighted, [[0.1 + np.exp(-2.0), 0, 1.1], [0, 1.1, 0]], rtol=1e-6)
    np.testing.assert_array_equal(history_matrix(train, 3, ORDER_FREE).toarray(), [[1, 0, 1], [0, 1, 0]])
    with pytest.raises(ValueError, match="no history positions"):
        history_matrix(Csr(train.indptr, train.indices), 3, order)
    assert ORDER_FREE.order_free and not order.order_free
    assert order.label() == "decay 2, floor 0.1, readout 0" and ORDER_FREE.label() == "order-free, readout 0"


def test_order_grid_has_each_distinct_use_once() -> None:
    item_item = order_grid((0.0, 5.0), (0.0, 0.5))
    assert item_item == [Order(0, 0), Order(5, 0), Order(5, 0.5)]
    embedding = order_grid((0.0, 5.0), (0.0,), (0.0, 1.0))
    assert embedding == [Order(0, 0, 0), Order(0, 0, 1), Order(5, 0, 1)]


def test_choose_takes_the_best_and_reports_order_off_for_the_same_parameters() -> None:
    scores = {(1.0, 0.0): 0.10, (1.0, 5.0): 0.12, (2.0, 0.0): 0.11, (2.0, 5.0): 0.15}
    grid = [Order(0, 0), Order(5, 0)]
    candidates = [{"l2": 1.0}, {"l2": 2.0}]
    choice = choose(candidates, grid, lambda i, o: scores[(candidates[i]["l2"], o.decay)])
    assert choice.best.params == {"l2": 2.0} and choice.best.order == Order(5, 0)
    assert choice.order_free.params == {"l2": 2.0} and choice.order_free.val_ndcg20 == 0.11
    first = {"l2": 1.0, "decay": 0.0, "floor": 0.0, "readout": 0.0, "val_ndcg@20": 0.1}
    assert len(choice.table()) == 4 and choice.table()[0] == first
    # Ties: the earlier (simpler) combination.
    tie = choose([{}], grid, lambda i, o: 0.2)
    assert tie.best.order == Order(0, 0)
    with pytest.raises(ValueError, match="needs an order-free entry"):
        choose([{}], [Order(5, 0)], lambda i, o: 0.0)


def test_readout_adds_the_weighted_item_mean_and_keeps_a_bias_column() -> None:
    users = np.array([[1.0, 0.0], [0.0, 1.0]])
    items = np.array([[0.0, 2.0], [4.0, 0.0]])
    history = history_matrix(
        Csr.from_pairs(np.array([0, 0]), np.array([0, 1]), 2, values=np.array([0.0, 1.0])), 2, ORDER_FREE
    )
    np.testing.assert_allclose(readout(users, items, history, 0.5, unit=False), [[2.0, 0.5], [0.0, 1.0]])
    unit = readout(users, items, history, 0.5, unit=True)
    np.testing.assert_allclose(np.linalg.norm(unit, axis=1), 1.0)
    model = Scorable(np.c_[users, np.ones(2)], np.c_[items, [7.0, 9.0]], bias_column=True)
    train = Csr.from_pairs(np.array([0, 0]), np.array([0, 1]), 2, values=np.array([0.0, 1.0]))
    read = model.user_vectors(train, 2, Order(0, 0, 0.5))
    np.testing.assert_allclose(read, [[2.0, 0.5, 1.0], [0.0, 1.0, 1.0]])


def drifting_taste(n_users: int, groups: int, per_group: int, seed: int) -> TrainingData:
    """Users whose taste moves from one group to the next: 8 early items of group g, then 4
    late items and the validation and test items of group g + 1."""
    rng = np.random.default_rng(seed)
    rows, items, positions, val, test = [], [], [], [], []
    for user in range(n_users):
        early, late = user % groups, (user + 1) % groups
        a = rng.choice(np.arange(early * per_group, (early + 1) * per_group), 8, replace=False)
        b = rng.choice(np.arange(late * per_group, (late + 1) * per_group), 6, replace=False)
        history = np.r_[a, b[:4]]
        rows += [user] * 12
        items += history.tolist()
        positions += (np.arange(12) / 11).tolist()
        val.append(b[4])
        test.append(b[5])
    users = np.arange(n_users)
    n_items = groups * per_group
    return TrainingData(
        Csr.from_pairs(np.array(rows), np.array(items), n_users, np.array(positions)),
        Csr.from_pairs(users, np.array(val), n_users),
        Csr.from_pairs(users, np.array(test), n_users),
        n_items,
    )


ORDER = OrderConfig(decays=(0.0, 2.0, 10.0), floors=(0.0,), readout=(0.0, 1.0), val_users=0)


def test_item_item_models_choose_order_where_taste_drifts() -> None:
    data = drifting_taste(300, 6, 20, seed=0)
    for trained in (
        training.fit_ease(data, EASEConfig(l2=(10.0, 100.0)), training.Fitting(order=ORDER)),
        training.fit_itemknn(
            data, ItemKNNConfig(neighbours=(20,), shrink=(0.0,)), training.Fitting(order=ORDER)
        ),
    ):
        choice = trained.choice
        assert choice is not None and trained.model.kind == "item_item"
        assert trained.order.decay > 0
        assert choice.best.val_ndcg20 > 1.3 * choice.order_free.val_ndcg20
        assert choice.order_free.params == choice.best.params == trained.extra["chosen"]


def test_order_switched_off_by_its_settings() -> None:
    data = drifting_taste(120, 4, 15, seed=1)
    off = OrderConfig(decays=(0.0,), readout=(0.0,), val_users=0)
    trained = training.with_order(training.fit_popularity(data), data, ORDER)
    # Popularity ignores the user: only the order-free entry is tried.
    assert trained.choice is not None and [t.order for t in trained.choice.tried] == [ORDER_FREE]
    ease = training.fit_ease(data, EASEConfig(l2=(10.0,)), training.Fitting(order=off))
    assert ease.order == ORDER_FREE and ease.choice is not None and len(ease.choice.tried) == 1
