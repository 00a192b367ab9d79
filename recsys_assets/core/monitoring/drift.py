"""Drift metrics: how far one day's interactions, new items and served traffic are from what the
serving model was trained on. Pure functions over arrays; the ``drift_metrics`` asset gathers
the inputs from the warehouse and the artifacts and writes one row per metric.

Formulas (each metric's default threshold is in ``recsys_assets/settings/monitoring.py``;
``status`` is ``breach`` when the value passes it):

- ``psi``: population stability index, ``sum_b (a_b - e_b) * ln(a_b / e_b)`` over bins ``b``,
  where ``e`` and ``a`` are the expected (training) and actual (the day's) shares, each share
  floored at ``PSI_FLOOR`` so an empty bin contributes a large but finite term. Rule of thumb:
  < 0.1 stable, 0.1-0.25 moderate, > 0.25 a shift.
- ``popularity_deciles``: training items ranked by training interactions and cut into ten bins
  that each hold a tenth of the training interactions (so training's distribution is flat);
  items unseen in training fall in an eleventh bin.
- ``unseen_share``: the share of the day's interactions whose item (or user) the training
  window never saw.
- ``centroid_distance``: mean of ``1 - cos(x, c)`` over new items' text embeddings ``x``, where
  ``c`` is the mean of the training items' normalised text embeddings.
- ``nn_similarity_ks``: the two-sample Kolmogorov-Smirnov statistic between new items' cosine
  similarity to their nearest training item and training items' similarity to their nearest
  other training item (the p-value goes in the details).
- serving: ``fallback_rate`` (requests answered by popularity), ``catalogue_coverage``
  (distinct served items / catalogue size), ``ctr`` (clicks / impressions) and ``ctr_change``
  (relative to the trailing 7 days' CTR), ``score_psi`` (PSI of served scores against the
  trailing 7 days, on the trailing window's decile edges).
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from typing import Any

import numpy as np

from recsys_assets.settings.monitoring import Metric

#: Shares below this are raised to it in the PSI (an empty bin would make it infinite).
PSI_FLOOR = 1e-4
DECILES = 10


def status(metric: Metric, value: float | None, sample: float | None = None) -> str:
    """``breach`` when ``value`` crosses the metric's threshold in its direction, ``ok`` when not,
    ``no_data`` when there is no finite value or it was read on fewer than ``min_sample``."""
    if value is None or not math.isfinite(value):
        return "no_data"
    if sample is not None and sample < metric.min_sample:
        return "no_data"
    breached = value > metric.threshold if metric.direction == "max" else value < metric.threshold
    return "breach" if breached else "ok"


def shares(counts: np.ndarray) -> np.ndarray:
    total = counts.sum()
    return counts / total if total > 0 else np.zeros(len(counts))


def psi(expected: np.ndarray, actual: np.ndarray, floor: float = PSI_FLOOR) -> float:
    """PSI between two count (or share) vectors over the same bins."""
    if len(expected) != len(actual):
        raise ValueError(f"psi: {len(expected)} expected bins but {len(actual)} actual bins")
    e = np.maximum(shares(np.asarray(expected, dtype=np.float64)), floor)
    a = np.maximum(shares(np.asarray(actual, dtype=np.float64)), floor)
    return float(np.sum((a - e) * np.log(a / e)))


def category_psi(
    train_categories: Sequence[str], new_categories: Sequence[str]
) -> tuple[float, dict[str, Any]]:
    """PSI of the category distribution of the day's interactions vs training's, over the union
    of categories (a category new to the day counts against a floored training share)."""
    labels = sorted(set(train_categories) | set(new_categories))
    position = {c: i for i, c in enumerate(labels)}
    expected = np.bincount([position[c] for c in train_categories], minlength=len(labels))
    actual = np.bincount([position[c] for c in new_categories], minlength=len(labels))
    value = psi(expected, actual)
    top = sorted(
        zip(labels, shares(expected).round(4).tolist(), shares(actual).round(4).tolist(), strict=True),
        key=lambda row: -abs(row[2] - row[1]),
    )[:5]
    return value, {"bins": len(labels), "largest_moves": [list(row) for row in top]}


def popularity_bins(train_counts: np.ndarray, bins: int = DECILES) -> np.ndarray:
    """Each item's popularity bin: items sorted by training interactions (most first) and cut
    where the running share of interactions crosses k / bins; items never seen get ``bins``."""
    counts = np.asarray(train_counts, dtype=np.float64)
    order = np.argsort(-counts, kind="stable")
    cumulative = np.cumsum(counts[order]) / max(counts.sum(), 1.0)
    # The bin of an item is set by the share of interactions before it, so the most popular
    # item alone can fill several tenths without leaving bins out of order.
    before = np.concatenate([[0.0], cumulative[:-1]])
    ranked = np.minimum((before * bins).astype(np.int64), bins - 1)
    out = np.empty(len(counts), dtype=np.int64)
    out[order] = ranked
    out[counts == 0] = bins
    return out


def popularity_psi(
    train_counts: np.ndarray, train_items: np.ndarray, new_items: np.ndarray
) -> tuple[float, dict[str, Any]]:
    """PSI of the popularity-bin distribution of the day's interactions vs training's.
    ``train_items``/``new_items`` are item rows; a row of -1 is an item unseen in training."""
    bins = popularity_bins(train_counts)
    expected = np.bincount(bins[train_items], minlength=DECILES + 1)
    new_bins = np.where(new_items >= 0, bins[np.maximum(new_items, 0)], DECILES)
    actual = np.bincount(new_bins, minlength=DECILES + 1)
    return psi(expected, actual), {
        "train_shares": shares(expected).round(4).tolist(),
        "day_shares": shares(actual).round(4).tolist(),
    }


def unseen_share(known: np.ndarray) -> float | None:
    """Share of rows whose entity training did not see (``known`` is a boolean mask)."""
    return None if len(known) == 0 else float(1.0 - np.mean(known))


def _normalised(x: np.ndarray) -> np.ndarray:
    x = np.asarray(x, dtype=np.float32)
    norms = np.linalg.norm(x, axis=1, keepdims=True)
    return x / np.maximum(norms, 1e-12)


def centroid_distance(train: np.ndarray, new: np.ndarray) -> float | None:
    if len(new) == 0:
        return None
    centre = _normalised(train).mean(axis=0)
    centre /= max(float(np.linalg.norm(centre)), 1e-12)
    return float(np.mean(1.0 - _normalised(new) @ centre))


def nearest_similarity(queries: np.ndarray, base: np.ndarray) -> np.ndarray:
    """Each query's cosine similarity to its nearest base row (exact, in blocks)."""
    q, b = _normalised(queries), _normalised(base)
    out = np.empty(len(q), dtype=np.float32)
    for start in range(0, len(q), 1024):
        out[start : start + 1024] = (q[start : start + 1024] @ b.T).max(axis=1)
    return out


def nn_similarity_ks(
    train: np.ndarray, new: np.ndarray, sample: int = 2_000, seed: int = 0
) -> tuple[float | None, dict[str, Any]]:
    """KS statistic between new items' nearest-training-item similarity and training items'
    nearest-other-training-item similarity. Each side is sampled to ``sample`` rows (exact
    search against all training items costs rows x training items x dim)."""
    from scipy.stats import ks_2samp

    if len(new) == 0 or len(train) < 2:
        return None, {"new_items": len(new)}
    rng = np.random.default_rng(seed)
    pick = np.sort(rng.choice(len(train), min(sample, len(train)), replace=False))
    # The sampled rows are in ``train``: each one's match with itself does not count.
    reference = _nearest_other(train, pick)
    if len(new) > sample:
        new = new[np.sort(rng.choice(len(new), sample, replace=False))]
    observed = nearest_similarity(new, train)
    result = ks_2samp(observed, reference)
    return float(result.statistic), {
        "p_value": float(result.pvalue),
        "compared": [len(observed), len(reference)],
        "new_median": float(np.median(observed)),
        "train_median": float(np.median(reference)),
    }


def _nearest_other(train: np.ndarray, rows: np.ndarray) -> np.ndarray:
    base = _normalised(train)
    out = np.empty(len(rows), dtype=np.float32)
    for start in range(0, len(rows), 1024):
        chunk = rows[start : start + 1024]
        block = base[chunk] @ base.T
        block[np.arange(len(chunk)), chunk] = -np.inf
        out[start : start + len(chunk)] = block.max(axis=1)
    return out
