"""The noise in every number the evaluation states: intervals over users and paired tests.

* A metric's mean over users gets a percentile bootstrap interval: the users are resampled with
  replacement ``resamples`` times, and **every model is measured on the same resamples** (one
  draw per split, shared), so that the difference of two models is taken on the same resampled
  users each time: a paired interval.
* A model against a reference (the served model): the relative difference of their means with
  its paired bootstrap interval, and the two-sided paired t-test on the per-user differences
  (what Elliot reports, and the usual test in IR evaluation), its p-values Holm-corrected
  across the models compared with that reference. A difference is *significant* when the
  corrected p-value is below ``1 - confidence``.

Vectorised: a resample is a vector of counts (how often each user was drawn), and the resampled
means of every column (models x metrics x slices) for a chunk of resamples are one matrix
product, so 192k users x 1,000 resamples cost seconds, not a Python loop over users.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
from scipy import stats

from recsys_assets.core.models.evaluation import SplitScores

#: Each split's resamples start from its own seed (the setting's plus this), shared by every model.
SPLIT_SEEDS = {"val": 0, "test": 1}
#: Resamples whose counts are held at once (chunk x users floats).
CHUNK = 32
#: The metrics given intervals (and compared between models), on each split; slices get theirs
#: at the largest K.
INTERVAL_METRICS = ("ndcg@20", "recall@20", "ndcg@10", "recall@10")


def column(model: str, metric: str) -> str:
    """The name of a model's metric among a split's resampled columns (``slice:<name>`` for a slice)."""
    return f"{model}|{metric}"


def split_columns(scores: dict[str, SplitScores]) -> dict[str, Column]:
    """Every model's per-user metrics and slices on one split (``scores``: model -> its
    ``SplitScores``), as columns over the same users; models evaluated on other users are an error."""
    columns: dict[str, Column] = {}
    reference = None
    for model, split in scores.items():
        if reference is None:
            reference = split.users
        elif not np.array_equal(split.users, reference):
            raise ValueError(f"{model} was evaluated on other users than the first model: cannot pair them")
        everyone = np.ones(len(split.users))
        for metric in INTERVAL_METRICS:
            columns[column(model, metric)] = Column(split.values[metric], everyone)
        for name, (has, ndcg) in split.slices.items():
            columns[column(model, f"slice:{name}")] = Column(ndcg, has.astype(np.float64))
    return columns


def resample_means(
    values: np.ndarray, weights: np.ndarray, resamples: int, seed: int, chunk: int = CHUNK
) -> np.ndarray:
    """``(resamples, columns)``: each column's weighted mean over users, for each bootstrap
    resample of the users (rows). ``weights`` (0 or 1) says which users a column averages (all
    of them for a metric, those with a target for a slice); a resample with none of a column's
    users gives NaN there."""
    if values.shape != weights.shape:
        raise ValueError(f"values {values.shape} and weights {weights.shape} differ in shape")
    n = values.shape[0]
    if n == 0:
        raise ValueError("no users to resample")
    rng = np.random.default_rng(seed)
    weighted = values * weights
    out = np.empty((resamples, values.shape[1]))
    for lo in range(0, resamples, chunk):
        size = min(chunk, resamples - lo)
        counts = np.stack([np.bincount(rng.integers(0, n, n), minlength=n) for _ in range(size)]).astype(
            np.float64
        )
        with np.errstate(invalid="ignore", divide="ignore"):
            out[lo : lo + size] = (counts @ weighted) / (counts @ weights)
    return out


def percentile_interval(draws: np.ndarray, confidence: float) -> list[float] | None:
    """The central ``confidence`` share of ``draws``; None without draws (intervals off)."""
    finite = draws[np.isfinite(draws)]
    if not len(finite):
        return None
    tail = (1 - confidence) / 2 * 100
    lo, hi = np.percentile(finite, [tail, 100 - tail])
    return [float(lo), float(hi)]


def paired_p_value(a: np.ndarray, b: np.ndarray) -> float:
    """Two-sided paired t-test of ``a`` against ``b`` (one value per user each); 1 when the two
    agree on every user (no difference to test)."""
    difference = a - b
    if len(difference) < 2 or not np.any(difference != difference[0]):
        return 1.0 if not np.any(difference) else 0.0
    return float(stats.ttest_rel(a, b).pvalue)


def holm(p_values: Sequence[float]) -> list[float]:
    """Holm's step-down correction of a family of p-values (same order as given)."""
    p = np.asarray(p_values, dtype=np.float64)
    order = np.argsort(p, kind="stable")
    m = len(p)
    stepped = np.maximum.accumulate((m - np.arange(m)) * p[order])
    adjusted = np.empty(m)
    adjusted[order] = np.minimum(stepped, 1.0)
    return adjusted.tolist()


@dataclass
class Column:
    """One quantity's per-user values over the split's evaluated users, and which users count."""

    values: np.ndarray
    weights: np.ndarray

    def mean(self) -> float:
        return float((self.values * self.weights).sum() / max(self.weights.sum(), 1))

    def users(self) -> np.ndarray:
        return self.weights > 0


@dataclass
class Resampled:
    """Every column of one split, with its bootstrap draws (the same resamples for all)."""

    columns: dict[str, Column]
    draws: dict[str, np.ndarray]
    confidence: float

    @classmethod
    def of(cls, columns: dict[str, Column], resamples: int, seed: int, confidence: float) -> Resampled:
        names = list(columns)
        values = np.stack([columns[c].values for c in names], axis=1).astype(np.float64)
        weights = np.stack([columns[c].weights for c in names], axis=1).astype(np.float64)
        draws = resample_means(values, weights, resamples, seed) if resamples else np.empty((0, len(names)))
        return cls(columns, {name: draws[:, j] for j, name in enumerate(names)}, confidence)

    def interval(self, name: str) -> list[float] | None:
        return percentile_interval(self.draws[name], self.confidence)

    def compare(self, name: str, reference: str) -> dict[str, Any]:
        """``name`` against ``reference``: the relative and absolute differences of their means,
        each with its paired interval, and the paired t-test's p-value (uncorrected)."""
        a, b = self.columns[name], self.columns[reference]
        if not np.array_equal(a.weights, b.weights):
            raise ValueError(f"{name} and {reference} average different users: not a paired comparison")
        mean_a, mean_b = a.mean(), b.mean()
        with np.errstate(invalid="ignore", divide="ignore"):
            relative_draws = self.draws[name] / self.draws[reference] - 1
        relative = mean_a / mean_b - 1 if mean_b else float("nan")
        users = a.users()
        return {
            "relative": relative,
            "relative_ci": percentile_interval(relative_draws, self.confidence) if mean_b else None,
            "difference": mean_a - mean_b,
            "difference_ci": percentile_interval(self.draws[name] - self.draws[reference], self.confidence),
            "p": paired_p_value(a.values[users], b.values[users]),
        }


def compare_pairs(resampled: Resampled, pairs: Sequence[tuple[str, str]]) -> list[dict[str, Any]]:
    """Each (subject, reference) pair compared (``Resampled.compare``), the p-values
    Holm-corrected across the pairs as one family, and ``significant`` when the corrected
    p-value is below ``1 - confidence``."""
    found = [resampled.compare(subject, reference) for subject, reference in pairs]
    for comparison, p_holm in zip(found, holm([c["p"] for c in found]), strict=True):
        comparison["p_holm"] = p_holm
        comparison["significant"] = bool(p_holm < 1 - resampled.confidence)
    return found


def describe(name: str, reference: str, comparison: dict[str, Any], metric: str, confidence: float) -> str:
    """A comparison in words: "gat vs ease: +1.9% validation NDCG@20, 95% CI -1.1% to +4.8%,
    p = 0.21 (Holm), not significant"."""
    rel, ci = comparison["relative"], comparison.get("relative_ci")
    p = comparison.get("p_holm", comparison["p"])
    verdict = "significant" if comparison.get("significant", p < 1 - confidence) else "not significant"
    if not np.isfinite(rel):
        diff, dci = comparison["difference"], comparison["difference_ci"]
        change = f"{diff:+.4f} {metric}" + (
            f", {confidence:.0%} CI {dci[0]:+.4f} to {dci[1]:+.4f}" if dci else ""
        )
    else:
        change = f"{rel:+.1%} {metric}" + (
            f", {confidence:.0%} CI {ci[0]:+.1%} to {ci[1]:+.1%}" if ci else ""
        )
    return f"{name} vs {reference}: {change}, p = {_p(p)}, {verdict}"


def _p(p: float) -> str:
    return "<0.001" if p < 0.001 else f"{p:.3f}"
