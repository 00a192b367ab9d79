"""Which model serves, and the gate it must pass: decided on validation, by significant gains only.

1. **The validation-best**: the servable model with the best validation NDCG@20.
2. **Ties go to the cheaper model**: every servable model whose gap to the best is not a
   significant gain of the best (``significant_gain``) is tied with it, and the one first in
   the serving-cost order (a setting: cheapest to serve first) is the candidate.
3. **The blessed model keeps serving** unless the candidate's validation gain over it, both
   evaluated now on the same users, is significant: the lower bound of the paired interval of
   the relative gain above ``margin``, and the paired test significant.
4. **The gate** (blocking): the served model's test NDCG@20 and Recall@20 may not fall more than
   the tolerance below the blessed report's; its description carries the served model's
   interval, since the blessed numbers were measured on another run.

A pinned candidate (the ``models.candidate`` setting) skips 1 to 3.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from recsys_assets.core.models.uncertainty import Resampled, column, compare_pairs, describe

#: Model kinds the serving export can publish (``core/serving/export.py``) when a report does
#: not say which models serve (``servable``, from the registry).
SERVABLE_KINDS = ("embedding", "item_item")
#: The metric that chooses, and the metrics the gate compares.
CHOOSING = "ndcg@20"
GATED = ("ndcg@20", "recall@20")


def significant_gain(comparison: dict[str, Any], margin: float) -> bool:
    """A gain counts when the paired interval of the relative gain lies above ``margin`` (the
    point estimate, with intervals switched off) and the paired test is significant
    (corrected where it is one of a family)."""
    if not comparison.get("significant", False):
        return False
    if not np.isfinite(comparison["relative"]):  # the reference scores 0: any significant gain
        return bool(comparison["difference"] > 0)
    interval = comparison.get("relative_ci")
    return bool((interval[0] if interval else comparison["relative"]) > margin)


@dataclass
class Decision:
    served: str
    reason: str
    validation_best: str
    #: The models tied with the validation-best (itself included), cheapest first.
    tied: list[str] = field(default_factory=list)
    blessed_model: str | None = None

    def to_dict(self) -> dict[str, Any]:
        return {
            "served": self.served,
            "reason": self.reason,
            "validation_best": self.validation_best,
            "tied_with_best": self.tied,
            "blessed_model": self.blessed_model,
        }


def _val(models: dict[str, dict[str, Any]], name: str) -> float:
    return float(models[name]["val"][CHOOSING])


def servable_models(models: dict[str, dict[str, Any]]) -> list[str]:
    return [
        name for name, m in models.items() if m.get("servable", m.get("kind", "embedding") in SERVABLE_KINDS)
    ]


def _pinned(models: dict[str, dict[str, Any]], pinned: str) -> Decision:
    if pinned not in models:
        raise ValueError(f"pinned candidate {pinned!r} is not among the evaluated models {sorted(models)}")
    if pinned not in servable_models(models):
        raise ValueError(
            f"pinned candidate {pinned!r} is a {models[pinned]['kind']} model, which cannot serve"
        )
    return Decision(
        pinned,
        f"{pinned}: pinned by the models.candidate setting (val NDCG@20 {_val(models, pinned):.4f})",
        pinned,
    )


def decide(
    models: dict[str, dict[str, Any]],
    val: Resampled,
    *,
    pinned: str = "",
    blessed_model: str | None = None,
    margin: float = 0.0,
    cost_order: Sequence[str] = (),
) -> Decision:
    """The model to serve and gate, and why in words (``val``: the validation split resampled,
    with a ``column(model, "ndcg@20")`` for each model)."""
    if pinned:
        return _pinned(models, pinned)
    servable = servable_models(models)
    if not servable:
        raise ValueError(f"no servable model among {sorted(models)}")
    # Ties in the point estimate go to the first evaluated (max keeps the first).
    best = max(servable, key=lambda name: _val(models, name))
    confidence = val.confidence
    others = [m for m in servable if m != best]
    # The best's gain over each other servable model, Holm-corrected as one family.
    gains = dict(
        zip(
            others,
            compare_pairs(val, [(column(best, CHOOSING), column(m, CHOOSING)) for m in others]),
            strict=True,
        )
    )
    tied = [best, *(m for m in others if not significant_gain(gains[m], margin))]
    rank = {name: i for i, name in enumerate(cost_order)}
    tied.sort(key=lambda name: (rank.get(name, len(rank)), servable.index(name)))
    candidate = tied[0]
    reason = f"{best}: best validation NDCG@20 among servable models ({_val(models, best):.4f})"
    if others:
        runner_up = max(others, key=lambda name: _val(models, name))
        reason += "; " + describe(best, runner_up, gains[runner_up], "validation NDCG@20", confidence)
    if candidate != best:
        reason += (
            f". No significant gain over {', '.join(m for m in tied if m != best)}: the tie goes to "
            f"{candidate}, cheaper to serve (models.evaluation.serving_cost)"
        )
    decision = Decision(candidate, reason, best, tied, blessed_model)
    if blessed_model is None or blessed_model == candidate or blessed_model not in servable:
        return decision
    (comparison,) = compare_pairs(val, [(column(candidate, CHOOSING), column(blessed_model, CHOOSING))])
    words = describe(candidate, f"{blessed_model} (blessed)", comparison, "validation NDCG@20", confidence)
    if significant_gain(comparison, margin):
        decision.reason += f". {words}: {candidate} replaces the blessed {blessed_model}"
        return decision
    decision.served = blessed_model
    decision.reason += (
        f". {words}, not a significant gain above the margin {margin:+.1%}: the blessed {blessed_model} "
        "keeps serving"
    )
    return decision


@dataclass
class Verdict:
    passed: bool
    description: str
    candidate: dict[str, float]
    blessed: dict[str, float] | None


def promotion_verdict(
    candidate: dict[str, Any],
    blessed: dict[str, float] | None,
    tolerance: float,
    intervals: dict[str, Sequence[float]] | None = None,
) -> Verdict:
    """Pass unless a gated test metric fell more than ``tolerance`` (relative) below the blessed one.

    ``intervals``: the candidate's interval of each gated metric, stated beside it (the blessed
    numbers come from another run, so no paired interval exists). Without a blessed report
    there is nothing to regress from: the first candidate passes, and the description says so
    (bless it to set the bar).
    """
    values = {m: float(candidate[m]) for m in GATED}
    if blessed is None:
        return Verdict(
            True, "no blessed report yet: nothing to compare with (bless one to set the bar)", values, None
        )
    floors = {m: float(blessed[m]) * (1.0 - tolerance) for m in GATED}
    failed = [m for m in GATED if values[m] < floors[m]]

    def stated(m: str) -> str:
        ci = (intervals or {}).get(m)
        return f"{values[m]:.4f}" + (f" (CI {ci[0]:.4f} to {ci[1]:.4f})" if ci else "")

    parts = [f"{m} {stated(m)} vs blessed {float(blessed[m]):.4f} (floor {floors[m]:.4f})" for m in GATED]
    verdict = "REGRESSION in " + ", ".join(failed) if failed else "no regression"
    return Verdict(
        not failed,
        f"{verdict}: " + "; ".join(parts) + f"; tolerance {tolerance:.1%}",
        values,
        {m: float(blessed[m]) for m in GATED},
    )
