"""Ranking metrics against hand-computed values."""

from __future__ import annotations

import math

import numpy as np
import pytest

from recsys_assets.core.io.sparse import Csr
from recsys_assets.core.models.metrics import (
    coverage,
    popularity_tertiles,
    ranking_metrics,
    restrict,
    top_k,
)
from recsys_assets_tests.models.taste import dense

# 2 users, 6 items. User 0 trained on item 0 and holds out items 2 and 5;
# user 1 trained on items 1, 2 and holds out item 3.
TRAIN = Csr.from_pairs(np.array([0, 1, 1]), np.array([0, 1, 2]), 2)
TEST = Csr.from_pairs(np.array([0, 0, 1]), np.array([5, 2, 3]), 2)
SCORES = np.array(
    [
        [9.0, 8.0, 1.0, 7.0, 6.0, 5.0],  # without item 0: 1, 3, 4, 5, 2
        [0.0, 9.0, 8.0, 1.0, 2.0, 2.0],  # without 1, 2: 4, 5 (tie -> index order), 3, 0
    ]
)


def _top(k: int) -> np.ndarray:
    return top_k(lambda rows: SCORES[rows], np.array([0, 1]), [TRAIN], k)


def test_csr_and_top_k_exclude_train_items_and_break_ties_by_index() -> None:
    assert TRAIN.row(1).tolist() == [1, 2] and TEST.row(0).tolist() == [2, 5]
    assert _top(5).tolist() == [[1, 3, 4, 5, 2], [4, 5, 3, 0, 2]]
    assert _top(3).tolist() == [[1, 3, 4], [4, 5, 3]]


def test_metrics_by_hand() -> None:
    top = _top(5)
    m = ranking_metrics(top, np.array([0, 1]), TEST, 6, ks=[2, 4])
    log2 = math.log2
    # K=2: user 0 top [1, 3] no hit; user 1 top [4, 5] no hit.
    assert m["recall@2"] == 0.0 and m["ndcg@2"] == 0.0 and m["hit@2"] == 0.0 and m["mrr@2"] == 0.0
    # K=4: user 0 top [1, 3, 4, 5]: hit at rank 4 of 2 targets; user 1 [4, 5, 3, 0]: hit at rank 3.
    assert m["recall@4"] == pytest.approx((1 / 2 + 1 / 1) / 2)
    ndcg0 = (1 / log2(5)) / (1 / log2(2) + 1 / log2(3))
    ndcg1 = (1 / log2(4)) / (1 / log2(2))
    assert m["ndcg@4"] == pytest.approx((ndcg0 + ndcg1) / 2)
    assert m["hit@4"] == 1.0
    assert m["mrr@4"] == pytest.approx((1 / 4 + 1 / 3) / 2)
    assert m["users"] == 2


def test_users_without_targets_are_not_averaged() -> None:
    targets = Csr.from_pairs(np.array([1]), np.array([3]), 2)
    m = ranking_metrics(_top(5), np.array([0, 1]), targets, 6, ks=[3])
    assert m["users"] == 1 and m["recall@3"] == 1.0 and m["ndcg@3"] == pytest.approx(1 / math.log2(4))
    with pytest.raises(ValueError, match="no user has a held-out item"):
        ranking_metrics(_top(5)[:1], np.array([0]), targets, 6, ks=[3])
    with pytest.raises(ValueError, match="top has 2 rows for 1 users"):
        ranking_metrics(_top(5), np.array([0]), targets, 6, ks=[3])
    with pytest.raises(ValueError, match="K=9 exceeds the 5 ranked items"):
        ranking_metrics(_top(5), np.array([0, 1]), TEST, 6, ks=[9])


def test_validation_items_can_be_excluded_too() -> None:
    val = Csr.from_pairs(np.array([0]), np.array([1]), 2)
    top = top_k(lambda rows: SCORES[rows], np.array([0, 1]), [TRAIN, val], 2)
    assert top.tolist() == [[3, 4], [4, 5]]


def test_coverage_slices_and_tertiles() -> None:
    top = _top(5)
    assert coverage(top, 6, 2) == pytest.approx(4 / 6)  # items 1, 3, 4, 5
    cold = np.array([False, False, False, True, False, False])
    sliced = restrict(TEST, cold)
    assert sliced.row(0).tolist() == [] and sliced.row(1).tolist() == [3]
    m = ranking_metrics(top, np.array([0, 1]), sliced, 6, ks=[4])
    assert m["users"] == 1 and m["recall@4"] == 1.0
    tertile = popularity_tertiles(np.array([5, 0, 9, 1, 1, 3]))
    # Most popular first, by the interactions before each (of 19): 2 (0) | 0 (9) | 5 (14), 3, 4, 1.
    assert tertile.tolist() == [1, 2, 0, 2, 2, 2]
    # Thirds of the interactions, not of the items: ten equal items split 4 / 3 / 3.
    assert np.bincount(popularity_tertiles(np.ones(10, dtype=int))).tolist() == [4, 3, 3]


def test_batching_does_not_change_the_ranking() -> None:
    rng = np.random.default_rng(0)
    scores = rng.normal(size=(50, 40))
    train = Csr.from_pairs(rng.integers(0, 50, 100), rng.integers(0, 40, 100), 50)
    users = np.arange(50)
    one = top_k(lambda rows: scores[rows], users, [train], 10, batch=50)
    many = top_k(lambda rows: scores[rows], users, [train], 10, batch=7)
    assert (one == many).all()
    expected = np.argsort(-np.where(dense(train, 50, 40), -np.inf, scores), axis=1, kind="stable")[:, :10]
    assert (one == expected).all()
