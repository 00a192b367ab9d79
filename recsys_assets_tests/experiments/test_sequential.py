"""The experiment statistics hold their error rates: an A/A test checked after every batch
rejects no more often than alpha, a real difference is found, and the sign test's sample size
and p-values are the textbook ones."""

from __future__ import annotations

import math

import numpy as np
import pytest
from scipy import stats

from recsys_assets.core.experiments.sequential import (
    Counts,
    always_valid,
    msprt,
    sign_test,
    sign_test_sample_size,
)

ALPHA, TAU = 0.05, 0.02


def _looks(
    rng: np.random.Generator, p_control: float, p_treatment: float, looks: int, per_look: int
) -> list[tuple[Counts, Counts]]:
    clicks_c = np.cumsum(rng.binomial(per_look, p_control, looks))
    clicks_t = np.cumsum(rng.binomial(per_look, p_treatment, looks))
    n = per_look * np.arange(1, looks + 1)
    return [
        (Counts(int(m), int(c)), Counts(int(m), int(t)))
        for m, c, t in zip(n, clicks_c, clicks_t, strict=True)
    ]


def test_peeking_at_an_aa_test_after_every_batch_stays_within_alpha() -> None:
    rng = np.random.default_rng(0)
    runs = 400
    # 30 looks each: a fixed-horizon z-test read this way rejects far more often than alpha.
    rejected = sum(always_valid(_looks(rng, 0.1, 0.1, 30, 400), ALPHA, TAU).significant for _ in range(runs))
    naive = 0
    rng = np.random.default_rng(0)
    for _ in range(runs):
        for control, treatment in _looks(rng, 0.1, 0.1, 30, 400):
            pooled = (control.clicks + treatment.clicks) / (control.n + treatment.n)
            z = (treatment.rate - control.rate) / math.sqrt(pooled * (1 - pooled) * 2 / control.n)
            if abs(z) > stats.norm.ppf(1 - ALPHA / 2):
                naive += 1
                break
    assert rejected / runs <= ALPHA  # 400 runs: the rate's standard error is about 0.011
    assert naive / runs > 2 * ALPHA  # the peeking problem the test exists for


def test_a_real_difference_is_found_and_its_interval_covers_it() -> None:
    rng = np.random.default_rng(1)
    found = [always_valid(_looks(rng, 0.10, 0.12, 30, 1000), ALPHA, TAU) for _ in range(50)]
    assert sum(r.significant for r in found) / 50 >= 0.8
    assert all(r.difference > 0 for r in found if r.significant)
    covered = sum(r.ci_low <= 0.02 <= r.ci_high for r in found)
    assert covered / 50 >= 1 - ALPHA


def test_one_look_by_hand() -> None:
    control, treatment = Counts(1000, 100), Counts(1000, 150)
    p, low, high = msprt(control, treatment, ALPHA, TAU)
    v = 0.1 * 0.9 / 1000 + 0.15 * 0.85 / 1000
    t2 = TAU**2
    expected = math.sqrt((v + t2) / v) * math.exp(-(0.05**2) * t2 / (2 * v * (v + t2)))
    assert p == pytest.approx(expected)
    half = math.sqrt(v * (v + t2) / t2 * (math.log((v + t2) / v) - 2 * math.log(ALPHA)))
    assert (low, high) == pytest.approx((0.05 - half, 0.05 + half))
    # Nothing learnt without variance, and bad settings are refused.
    assert msprt(Counts(10, 0), Counts(10, 0), ALPHA, TAU) == (1.0, -math.inf, math.inf)
    with pytest.raises(ValueError, match=r"alpha 1\.5 must be in"):
        msprt(control, treatment, 1.5, TAU)


def test_the_sign_test_and_its_sample_size() -> None:
    # The normal-approximation sample size for a 55/45 preference at alpha 0.05 and power 0.8.
    assert sign_test_sample_size(0.05, 0.05, 0.8) == 783
    result = sign_test(60, 40, 10, ALPHA, needed=100)
    assert result.p_value == pytest.approx(stats.binomtest(60, 100, 0.5).pvalue)
    assert result.preference == pytest.approx((60 + 5) / 110 - 0.5)
    assert not result.significant  # p = 0.057
    assert sign_test(70, 30, 0, ALPHA, needed=100).significant
    assert not sign_test(70, 30, 0, ALPHA, needed=783).significant  # too few yet: keep going
    assert sign_test(0, 0, 5, ALPHA, 10).p_value == 1.0
