"""Drift metrics on crafted data, against values computed by hand."""

from __future__ import annotations

import math

import numpy as np
import pytest

from recsys_assets.core.monitoring import drift
from recsys_assets.settings.monitoring import METRICS


def test_psi_matches_the_formula() -> None:
    # Shares 0.5/0.5 -> 0.8/0.2: 0.3 ln(0.8/0.5) + (-0.3) ln(0.2/0.5).
    want = 0.3 * math.log(0.8 / 0.5) - 0.3 * math.log(0.2 / 0.5)
    assert drift.psi(np.array([50, 50]), np.array([80, 20])) == pytest.approx(want, abs=1e-12)
    assert want == pytest.approx(0.415888, abs=1e-6)
    assert drift.psi(np.array([3, 7]), np.array([30, 70])) == pytest.approx(0.0, abs=1e-12)
    # An empty bin is floored at 1e-4, not infinite.
    floored = (1 - 0.5) * math.log(1 / 0.5) + (1e-4 - 0.5) * math.log(1e-4 / 0.5)
    assert drift.psi(np.array([1, 1]), np.array([5, 0])) == pytest.approx(floored, rel=1e-12)
    with pytest.raises(ValueError, match="psi: 2 expected bins but 3 actual bins"):
        drift.psi(np.array([1, 1]), np.array([1, 1, 1]))


def test_category_psi_over_the_union_of_categories() -> None:
    value, details = drift.category_psi(["A"] * 50 + ["B"] * 50, ["A"] * 80 + ["B"] * 20)
    assert value == pytest.approx(0.415888, abs=1e-6)
    assert details["bins"] == 2 and details["largest_moves"][0] == ["A", 0.5, 0.8]
    # A category the training window never had counts against a floored share.
    value, details = drift.category_psi(["A"] * 10, ["A"] * 5 + ["C"] * 5)
    want = (0.5 - 1.0) * math.log(0.5 / 1.0) + (0.5 - 1e-4) * math.log(0.5 / 1e-4)
    assert value == pytest.approx(want, rel=1e-9) and details["bins"] == 2


def test_popularity_bins_hold_a_tenth_of_the_interactions_each() -> None:
    # Sorted: item 0 (10), 2 (5), 3 (3), 4 (2); shares before each: 0, .5, .75, .9.
    bins = drift.popularity_bins(np.array([10, 0, 5, 3, 2]))
    assert bins.tolist() == [0, 10, 5, 7, 9]
    # 100 equally popular items: ten per bin.
    assert np.bincount(drift.popularity_bins(np.ones(100))).tolist() == [10] * 10


def test_popularity_psi_counts_unseen_items_in_their_own_bin() -> None:
    counts = np.ones(10)  # ten items, one interaction each: item i in bin i
    train_items = np.arange(10)
    value, details = drift.popularity_psi(counts, train_items, train_items)
    assert value == pytest.approx(0.0, abs=1e-12) and details["day_shares"][:10] == [0.1] * 10
    # Half the day on item 0, half on unseen items (-1).
    value, details = drift.popularity_psi(counts, train_items, np.array([0] * 5 + [-1] * 5))
    expected = np.array([0.1] * 10 + [0.0])
    actual = np.array([0.5] + [0.0] * 9 + [0.5])
    e, a = np.maximum(expected, 1e-4), np.maximum(actual, 1e-4)
    assert value == pytest.approx(float(np.sum((a - e) * np.log(a / e))), rel=1e-9)
    assert details["day_shares"][10] == 0.5


def test_unseen_share_and_no_data() -> None:
    assert drift.unseen_share(np.array([True, False, False, True])) == 0.5
    assert drift.unseen_share(np.array([], dtype=bool)) is None
    assert drift.status(METRICS["unseen_item_share"], None) == "no_data"
    assert drift.status(METRICS["unseen_item_share"], 0.31) == "breach"
    assert drift.status(METRICS["catalogue_coverage"], 0.005) == "breach"  # a floor, not a ceiling
    assert drift.status(METRICS["catalogue_coverage"], 0.5) == "ok"


def test_centroid_distance() -> None:
    train = np.array([[2.0, 0.0], [0.0, 3.0]])  # normalised: the centroid points at 45 degrees
    assert drift.centroid_distance(train, np.array([[1.0, 0.0]])) == pytest.approx(1 - math.sqrt(0.5))
    assert drift.centroid_distance(train, np.array([[1.0, 1.0]])) == pytest.approx(0.0, abs=1e-7)
    assert drift.centroid_distance(train, np.zeros((0, 2))) is None


def test_nearest_neighbour_similarity_ks() -> None:
    train = np.eye(6)  # every training item's nearest other item: similarity 0
    # New items equal to training items: similarity 1 each, fully separated from 0.
    value, details = drift.nn_similarity_ks(train, np.eye(6)[:3])
    assert value == pytest.approx(1.0) and details["new_median"] == pytest.approx(1.0)
    assert details["train_median"] == pytest.approx(0.0) and details["p_value"] < 0.05
    # In 7 dimensions, new items along the 7th axis: similarity 0, training's distribution.
    train7 = np.eye(7)[:6]
    value, details = drift.nn_similarity_ks(train7, np.repeat(np.eye(7)[6:], 3, axis=0))
    assert value == pytest.approx(0.0) and details["p_value"] == pytest.approx(1.0)
    assert drift.nn_similarity_ks(train, np.zeros((0, 6)))[0] is None
