"""Which model serves: the validation-best, ties to the cheaper, the blessed one unless beaten
significantly, and a pinned one as pinned."""

from __future__ import annotations

import numpy as np
import pytest

from recsys_assets.core.models.promotion import decide, significant_gain
from recsys_assets.core.models.uncertainty import Column, Resampled, column

USERS = 3_000
RNG = np.random.default_rng(0)
BASE = RNG.random(USERS)


def _models(**kinds: str) -> dict[str, dict[str, object]]:
    return {name: {"kind": kind, "val": {}} for name, kind in kinds.items()}


def _setup(gains: dict[str, float], noise: float = 0.05, **kinds: str) -> tuple[dict, Resampled]:
    """Per-user validation NDCG@20 of each model: the same users' base plus the model's gain
    and independent noise; ``kinds`` default to embedding."""
    columns, models = {}, {}
    for name, gain in gains.items():
        values = BASE + gain + np.random.default_rng(len(name)).normal(0, noise, USERS)
        columns[column(name, "ndcg@20")] = Column(values, np.ones(USERS))
        models[name] = {"kind": kinds.get(name, "embedding"), "val": {"ndcg@20": float(values.mean())}}
    return models, Resampled.of(columns, 400, 0, 0.95)


def test_a_significant_best_serves_and_the_reason_states_the_gap_with_its_interval() -> None:
    models, val = _setup({"popularity": -0.2, "ease": 0.0, "gat": 0.05}, ease="item_item")
    decision = decide(models, val, cost_order=("popularity", "gat", "ease"))
    assert (decision.served, decision.validation_best, decision.tied) == ("gat", "gat", ["gat"])
    assert decision.reason.startswith("gat: best validation NDCG@20 among servable models (")
    assert "; gat vs ease: +" in decision.reason and "validation NDCG@20, 95% CI +" in decision.reason
    assert decision.reason.endswith(", significant")


def test_a_tie_goes_to_the_model_cheaper_to_serve_and_says_so() -> None:
    # gat is ahead by a hair, within the noise: ease and gat are tied, popularity is far behind.
    models, val = _setup({"popularity": -0.2, "ease": 0.0, "gat": 0.001}, ease="item_item")
    decision = decide(models, val, cost_order=("popularity", "ease", "gat"))
    assert decision.validation_best == "gat" and decision.tied == ["ease", "gat"]
    assert decision.served == "ease"
    assert "not significant. No significant gain over ease: the tie goes to ease, cheaper to serve" in (
        decision.reason
    )
    # The cost order decides: with gat first, gat serves.
    assert decide(models, val, cost_order=("gat", "ease")).served == "gat"


def test_the_blessed_model_keeps_serving_unless_beaten_significantly() -> None:
    models, val = _setup({"ease": 0.0, "gat": 0.001, "lightgcn": 0.06})
    kept = decide(models, val, blessed_model="ease", cost_order=("gat", "ease"))
    # lightgcn is best and significantly better than the blessed ease: it replaces it.
    assert kept.served == "lightgcn" and "lightgcn replaces the blessed ease" in kept.reason
    models, val = _setup({"ease": 0.0, "gat": 0.001})
    kept = decide(models, val, blessed_model="ease", cost_order=("gat", "ease"))
    assert kept.validation_best == "gat" and kept.served == "ease" and kept.blessed_model == "ease"
    assert "gat vs ease (blessed): +" in kept.reason
    assert kept.reason.endswith(
        "not a significant gain above the margin +0.0%: the blessed ease keeps serving"
    )
    # A margin the gain's interval does not clear keeps the blessed one too.
    models, val = _setup({"ease": 0.0, "lightgcn": 0.06})
    gain = models["lightgcn"]["val"]["ndcg@20"] / models["ease"]["val"]["ndcg@20"] - 1
    assert decide(models, val, blessed_model="ease", margin=0.0).served == "lightgcn"
    assert decide(models, val, blessed_model="ease", margin=gain).served == "ease"


def test_pinned_and_unservable_models() -> None:
    models, val = _setup({"ease": 0.0, "gat": 0.05, "seq": 0.3}, seq="sequence")
    assert decide(models, val).served == "gat"  # a kind serving cannot publish never serves
    pinned = decide(models, val, pinned="ease", blessed_model="gat")
    assert (pinned.served, pinned.reason) == (
        "ease",
        f"ease: pinned by the models.candidate setting (val NDCG@20 {models['ease']['val']['ndcg@20']:.4f})",
    )
    with pytest.raises(ValueError, match="pinned candidate 'seq' is a sequence model, which cannot serve"):
        decide(models, val, pinned="seq")
    with pytest.raises(ValueError, match="pinned candidate 'mf' is not among the evaluated models"):
        decide(models, val, pinned="mf")
    with pytest.raises(ValueError, match="no servable model"):
        decide(_models(seq="sequence"), val)


def test_a_gain_needs_the_test_and_the_interval() -> None:
    assert significant_gain({"significant": True, "relative": 0.1, "relative_ci": [0.01, 0.2]}, 0.0)
    assert not significant_gain({"significant": True, "relative": 0.1, "relative_ci": [-0.01, 0.2]}, 0.0)
    assert not significant_gain({"significant": False, "relative": 0.1, "relative_ci": [0.01, 0.2]}, 0.0)
    assert not significant_gain({"significant": True, "relative": 0.1, "relative_ci": [0.01, 0.2]}, 0.05)
    # Intervals off: the point estimate against the margin.
    assert significant_gain({"significant": True, "relative": 0.1, "relative_ci": None}, 0.05)
    # A reference at 0: any significant gain counts.
    assert significant_gain({"significant": True, "relative": float("nan"), "difference": 0.2}, 0.0)
