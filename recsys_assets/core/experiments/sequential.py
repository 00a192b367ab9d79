"""The statistics of online experiments: always-valid A/B tests on click-through, and the
sign test of interleaving.

**A/B: the mixture sequential probability ratio test (mSPRT)** of Johari, Koomen, Pekelis and
Walsh ("Always Valid Inference", Operations Research 2022), for the difference of two
click-through rates ``theta = p_treatment - p_control``. With ``d`` the observed difference,
``V = p_c (1 - p_c) / n_c + p_t (1 - p_t) / n_t`` its variance and a normal mixture
``N(0, tau^2)`` over the effect,

    Lambda = sqrt(V / (V + tau^2)) * exp(d^2 tau^2 / (2 V (V + tau^2)))

and the always-valid p-value is the running minimum of ``1 / Lambda`` over every look. It
may be read after every request, or every day, and stopped whenever it drops below ``alpha``:
the chance of ever doing so without a true difference stays below ``alpha`` (no
fixed horizon, no peeking penalty). The always-valid confidence interval is
``d +- sqrt(V (V + tau^2) / tau^2 * (log((V + tau^2) / V) - 2 log alpha))``. ``tau`` is the
effect size the test is most sensitive to (a setting).

**Interleaving: a two-sided sign test** over the requests whose clicks favour one arm
(Chapelle, Joachims, Radlinski and Yue, 2012): under no preference each such request is a
fair coin. It is fixed-horizon: ``sign_test_sample_size`` states how many decided requests it
needs to detect a given preference with a given power, and the report waits for them.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

from scipy import stats


@dataclass(frozen=True)
class Counts:
    """Requests served, and those with at least one click."""

    n: int
    clicks: int

    @property
    def rate(self) -> float:
        return self.clicks / self.n if self.n else 0.0


@dataclass(frozen=True)
class SequentialResult:
    difference: float
    #: The always-valid p-value (running minimum over the looks).
    p_value: float
    ci_low: float
    ci_high: float
    significant: bool


def msprt(control: Counts, treatment: Counts, alpha: float, tau: float) -> tuple[float, float, float]:
    """One look: (``1 / Lambda`` capped at 1, CI low, CI high) for ``p_t - p_c``; with no
    variance yet (no clicks, or every request clicked) nothing is learnt: 1 and an
    unbounded interval."""
    if not 0 < alpha < 1 or tau <= 0:
        raise ValueError(f"msprt: alpha {alpha} must be in (0, 1) and tau {tau} positive")
    difference = treatment.rate - control.rate
    variance = sum(c.rate * (1 - c.rate) / c.n for c in (control, treatment) if c.n)
    if not control.n or not treatment.n or variance <= 0:
        return 1.0, -math.inf, math.inf
    tau2 = tau * tau
    log_lambda = 0.5 * math.log(variance / (variance + tau2)) + difference**2 * tau2 / (
        2 * variance * (variance + tau2)
    )
    p = min(1.0, math.exp(-log_lambda))
    half = math.sqrt(
        variance * (variance + tau2) / tau2 * (math.log((variance + tau2) / variance) - 2 * math.log(alpha))
    )
    return p, difference - half, difference + half


def always_valid(looks: list[tuple[Counts, Counts]], alpha: float, tau: float) -> SequentialResult:
    """The test over cumulative (control, treatment) counts at each look, in time order: the
    p-value is the running minimum, the interval the running intersection."""
    if not looks:
        raise ValueError("always_valid: no looks")
    p_value, low, high = 1.0, -math.inf, math.inf
    for control, treatment in looks:
        p, lo, hi = msprt(control, treatment, alpha, tau)
        p_value, low, high = min(p_value, p), max(low, lo), min(high, hi)
    control, treatment = looks[-1]
    difference = treatment.rate - control.rate
    return SequentialResult(difference, p_value, low, high, p_value <= alpha)


@dataclass(frozen=True)
class SignTest:
    #: Requests whose clicks credited the treatment more, the control more, or neither.
    treatment_wins: int
    control_wins: int
    ties: int
    #: Preference for the treatment: its share of the decided and tied requests minus 1/2
    #: (ties count half), in [-0.5, 0.5].
    preference: float
    p_value: float
    needed: int
    significant: bool


def sign_test_sample_size(preference: float, alpha: float, power: float) -> int:
    """Decided requests a two-sided sign test at ``alpha`` needs to detect a preference of
    ``preference`` (the winner's share minus 1/2) with ``power`` (normal approximation)."""
    if not 0 < preference < 0.5:
        raise ValueError(f"sign test: preference {preference} must be in (0, 0.5)")
    q = 0.5 + preference
    z_alpha, z_power = stats.norm.ppf(1 - alpha / 2), stats.norm.ppf(power)
    return math.ceil(((z_alpha * 0.5 + z_power * math.sqrt(q * (1 - q))) / preference) ** 2)


def sign_test(treatment_wins: int, control_wins: int, ties: int, alpha: float, needed: int) -> SignTest:
    """The interleaving preference and its exact two-sided sign test, significant only once
    ``needed`` decided requests are in (the test is fixed-horizon)."""
    decided = treatment_wins + control_wins
    total = decided + ties
    preference = (treatment_wins + ties / 2) / total - 0.5 if total else 0.0
    p = float(stats.binomtest(treatment_wins, decided, 0.5).pvalue) if decided else 1.0
    return SignTest(
        treatment_wins, control_wins, ties, preference, p, needed, decided >= needed and p <= alpha
    )
