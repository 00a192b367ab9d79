"""Intervals over users and paired tests, by hand and against a plain loop."""

from __future__ import annotations

import numpy as np
import pytest
from scipy import stats

from recsys_assets.core.models.evaluation import SplitScores
from recsys_assets.core.models.uncertainty import (
    Column,
    Resampled,
    column,
    compare_pairs,
    describe,
    holm,
    paired_p_value,
    percentile_interval,
    resample_means,
    split_columns,
)


def test_resampled_means_are_those_of_resampled_users() -> None:
    rng = np.random.default_rng(1)
    values = rng.random((40, 3))
    weights = np.ones((40, 3))
    weights[::3, 2] = 0  # the third column averages two users in three (a slice)
    draws = resample_means(values, weights, resamples=7, seed=5, chunk=3)
    # The same draws as a loop over resamples, each a vector of user indices with replacement.
    loop = np.random.default_rng(5)
    for b in range(7):
        users = loop.integers(0, 40, 40)
        picked, w = values[users], weights[users]
        np.testing.assert_allclose(draws[b], (picked * w).sum(axis=0) / w.sum(axis=0))
    # The chunk size changes nothing.
    np.testing.assert_allclose(
        draws, resample_means(values, weights, resamples=7, seed=5, chunk=32), rtol=1e-12
    )
    with pytest.raises(ValueError, match="differ in shape"):
        resample_means(values, weights[:, :2], 3, 0)


def test_percentile_interval_holm_and_the_paired_test_by_hand() -> None:
    assert percentile_interval(np.arange(101, dtype=float), 0.9) == pytest.approx([5.0, 95.0])
    assert percentile_interval(np.array([]), 0.95) is None  # intervals switched off
    # Holm: sorted 0.01, 0.03, 0.04 -> x3, x2, x1 = 0.03, 0.06, 0.04 -> running max 0.03, 0.06, 0.06.
    assert holm([0.01, 0.04, 0.03]) == pytest.approx([0.03, 0.06, 0.06])
    assert holm([0.5, 0.9]) == pytest.approx([1.0, 1.0])
    a, b = np.array([0.1, 0.3, 0.2, 0.5]), np.array([0.0, 0.25, 0.2, 0.3])
    assert paired_p_value(a, b) == pytest.approx(stats.ttest_rel(a, b).pvalue)
    assert paired_p_value(a, a) == 1.0


def test_a_paired_interval_sees_a_small_consistent_gain_that_separate_intervals_cannot() -> None:
    # Users differ a lot; model b is model a plus 0.01 for every user, give or take a little.
    rng = np.random.default_rng(0)
    a = rng.random(2_000)
    b = a + 0.01 + rng.normal(0, 0.005, 2_000)
    ones = np.ones(2_000)
    resampled = Resampled.of({"a": Column(a, ones), "b": Column(b, ones)}, 500, 0, 0.95)
    interval_a, interval_b = resampled.interval("a"), resampled.interval("b")
    assert interval_a and interval_b and interval_b[0] < interval_a[1]  # the intervals overlap...
    (paired,) = compare_pairs(resampled, [("b", "a")])
    # ...but every resample of the same users sees b ahead: the paired interval excludes 0.
    assert paired["difference"] == pytest.approx(b.mean() - a.mean())
    assert paired["relative"] == pytest.approx(b.mean() / a.mean() - 1)
    assert 0 < paired["difference_ci"][0] < paired["difference"] < paired["difference_ci"][1]
    assert paired["relative_ci"][0] > 0 and paired["p"] < 1e-6 and paired["significant"]
    text = describe("b", "a", paired, "test NDCG@20", 0.95)
    assert text.startswith(f"b vs a: {paired['relative']:+.1%} test NDCG@20, 95% CI ")
    assert text.endswith("p = <0.001, significant")


def test_holm_corrects_across_the_pairs_compared() -> None:
    rng = np.random.default_rng(3)
    base = rng.random(300)
    ones = np.ones(300)
    # Two models a little and noisily above the base: each p-value is multiplied up.
    columns = {
        "base": Column(base, ones),
        "x": Column(base + rng.normal(0.004, 0.05, 300), ones),
        "y": Column(base + rng.normal(0.006, 0.05, 300), ones),
    }
    resampled = Resampled.of(columns, 200, 0, 0.95)
    found = compare_pairs(resampled, [("x", "base"), ("y", "base")])
    assert [c["p_holm"] for c in found] == pytest.approx(holm([c["p"] for c in found]))
    for comparison in found:
        assert comparison["significant"] == (comparison["p_holm"] < 0.05)
    text = describe("x", "base", found[0], "val NDCG@20", 0.95)
    assert ("not significant" in text) == (not found[0]["significant"])


def test_split_columns_pair_models_over_the_same_users_and_slices_over_their_own() -> None:
    users = np.array([0, 2, 3])
    has = np.array([True, False, True])
    values = {m: np.array([0.1, 0.2, 0.3]) for m in ("ndcg@20", "recall@20", "ndcg@10", "recall@10")}
    scores = {"a": SplitScores(users, values, {"tail": (has, np.array([0.5, 0.0, 0.1]))})}
    columns = split_columns({**scores, "b": SplitScores(users, values)})
    assert columns[column("a", "slice:tail")].mean() == pytest.approx(0.3)  # (0.5 + 0.1) / 2
    assert columns[column("b", "ndcg@20")].mean() == pytest.approx(0.2)
    with pytest.raises(ValueError, match="b was evaluated on other users"):
        split_columns({**scores, "b": SplitScores(np.array([0, 1, 3]), values)})
    # With intervals off (no resamples) the comparison still has its p-value.
    resampled = Resampled.of(columns, 0, 0, 0.95)
    assert resampled.interval(column("a", "ndcg@20")) is None
    (same,) = compare_pairs(resampled, [(column("a", "ndcg@20"), column("b", "ndcg@20"))])
    assert same["relative_ci"] is None and same["p"] == 1.0 and not same["significant"]


def test_every_pair_of_models_is_compared_once_and_corrected_as_one_family() -> None:
    from recsys_assets.core.models.report import pairwise

    rng = np.random.default_rng(7)
    ones = np.ones(500)
    models = {"a": {}, "b": {}, "c": {}}
    columns = {
        column(m, "ndcg@20"): Column(rng.random(500) * (1 + k / 10), ones) for k, m in enumerate(models)
    }
    resampled = {"test": Resampled.of(columns, 100, 0, 0.95)}
    found = pairwise(models, resampled)["test"]
    assert list(found) == ["a vs b", "a vs c", "b vs c"]
    raw = [resampled["test"].compare(column(x, "ndcg@20"), column(y, "ndcg@20"))["p"] for x, y in
           (("a", "b"), ("a", "c"), ("b", "c"))]  # fmt: skip
    assert [found[k]["p_holm"] for k in found] == pytest.approx(holm(raw))
    assert found["a vs c"]["relative"] == pytest.approx(
        columns["a|ndcg@20"].mean() / columns["c|ndcg@20"].mean() - 1
    )
