"""One evaluation for every model: full-ranking metrics, slices and coverage by hand, the
promotion verdict, the report and its gate."""

from __future__ import annotations

import numpy as np
import pytest

from recsys_assets.core.models.evaluation import evaluate, promotion_verdict, slice_masks
from recsys_assets.core.models.metrics import Csr, dot_scorer
from recsys_assets.core.models.recency import Order
from recsys_assets.core.models.report import (
    build_report,
    choose_candidate,
    gate_outcome,
    model_entry,
    report_table,
)
from recsys_assets.core.models.training_data import TrainingData


def _data() -> TrainingData:
    # 3 users, 6 items. Item 0 is popular in train (3), item 1 twice, the rest cold (<= 2).
    train = Csr.from_pairs(np.array([0, 1, 2, 0, 1]), np.array([0, 0, 0, 1, 1]), 3)
    val = Csr.from_pairs(np.array([0, 1]), np.array([2, 3]), 3)
    test = Csr.from_pairs(np.array([0, 2, 2]), np.array([4, 1, 5]), 3)
    return TrainingData(train, val, test, 6)


def test_evaluate_reports_splits_slices_and_coverage_by_hand() -> None:
    data = _data()
    masks = slice_masks(data)
    assert masks["cold_start"].tolist() == [False, True, True, True, True, True]
    # Tertiles by train interactions (5): item 0 (3) is the head, item 1 (2) the torso, the rest tail.
    assert [np.flatnonzero(masks[t]).tolist() for t in ("head", "torso", "tail")] == [[0], [1], [2, 3, 4, 5]]
    # Scores grow with the item index, so every user ranks 5, 4, 3, ... after exclusions.
    users, items = np.ones((3, 1)), np.arange(1, 7, dtype=float)[:, None]
    report = evaluate(dot_scorer(users, items), data, ks=(1, 2))
    # Validation (train excluded): user 0 ranks 5, 4 -> item 2 missed; user 1 ranks 5, 4 -> 3 missed.
    assert report["val"]["users"] == 2 and report["val"]["recall@2"] == 0.0
    # Test (train and val excluded): user 0 ranks 5, 4 -> hit 4 at rank 2; user 2 ranks 5, 4 -> hit 5 at 1.
    test = report["test"]
    assert test["users"] == 2
    assert test["recall@2"] == pytest.approx((1 / 1 + 1 / 2) / 2)
    assert test["hit@1"] == pytest.approx(0.5) and test["mrr@2"] == pytest.approx((1 / 2 + 1) / 2)
    assert test["coverage@2"] == pytest.approx(2 / 6)
    # Item 1 (torso, 2 train interactions: cold) is user 2's only torso item; it is not in the top 2.
    assert test["slices"]["torso"]["users"] == 1 and test["slices"]["torso"]["recall@2"] == 0.0
    assert test["slices"]["tail"]["users"] == 2 and test["slices"]["tail"]["recall@2"] == 1.0
    assert test["slices"]["cold_start"]["interactions"] == 3
    assert test["slices"]["head"] == {"users": 0.0, "interactions": 0.0}
    # The two validation users are scored first: 5 columns for a catalogue of 6 is refused.
    with pytest.raises(ValueError, match=r"model scored \[2, 5\] for 2 users x 6 items"):
        evaluate(dot_scorer(users, items[:5]), data)


def test_promotion_verdict() -> None:
    blessed = {"ndcg@20": 0.1000, "recall@20": 0.2000}
    ok = promotion_verdict({"ndcg@20": 0.0985, "recall@20": 0.2100}, blessed, tolerance=0.02)
    assert ok.passed and ok.description.startswith(
        "no regression: ndcg@20 0.0985 vs blessed 0.1000 (floor 0.0980)"
    )
    bad = promotion_verdict({"ndcg@20": 0.0979, "recall@20": 0.2100}, blessed, tolerance=0.02)
    assert not bad.passed and bad.description.startswith("REGRESSION in ndcg@20: ")
    assert bad.blessed == blessed and bad.candidate["ndcg@20"] == 0.0979
    first = promotion_verdict({"ndcg@20": 0.05, "recall@20": 0.1}, None, tolerance=0.02)
    assert first.passed and "no blessed report yet" in first.description


def test_report_holds_every_model_and_gates_the_candidate() -> None:
    # 4 users over 30 items, each with a train item, a validation item and a test item.
    rows = np.arange(4)
    data = TrainingData(
        Csr.from_pairs(rows, rows, 4),
        Csr.from_pairs(rows, rows + 4, 4),
        Csr.from_pairs(rows, rows + 8, 4),
        30,
    )
    users, items = np.ones((4, 1)), np.arange(30, 0, -1, dtype=float)[:, None]
    metrics = evaluate(dot_scorer(users, items), data)
    meta = {"train_seconds": 1.5, "best_epoch": 3, "config": {"dim": 1}, "run_id": "r1", "history": [],
            "kind": "embedding", "order": Order(2.0, 0.1, 1.0).to_dict()}  # fmt: skip
    files = {"users_uri": "u.npy", "items_uri": "i.npy", "meta_uri": "m.json"}
    models = {"pop": model_entry(metrics, meta, files), "gat": model_entry(metrics, meta, files)}
    assert models["gat"]["train"]["best_epoch"] == 3 and models["gat"]["train"]["note"] is None
    assert models["gat"]["files"] == files and models["gat"]["config"] == {"dim": 1}
    assert models["gat"]["kind"] == "embedding" and models["gat"]["order"]["decay"] == 2.0
    report, verdict = build_report(models, data, "gat", "pinned", {"code": "v1"}, "run", None, 0.02)
    assert report["candidate"] == "gat" and report["candidate_reason"] == "pinned"
    assert report["ks"] == [10, 20] and report["data"] == data.summary()
    assert report["promotion"]["passed"] and report["promotion"]["blessed_created_at"] is None
    assert report["versions"]["code"] == "v1" and "torch" in report["versions"]["packages"]
    # Blessed 10% better than the candidate: the gate fails, and says by how much.
    blessed = {**report, "models": {"gat": {"test": {m: v * 1.1 for m, v in metrics["test"].items()
                                                      if m in ("ndcg@20", "recall@20")}}}}  # fmt: skip
    _, verdict = build_report(models, data, "gat", "", {}, "run", blessed, 0.02)
    gate = gate_outcome(verdict, "gat", 0.02, "eval/blessed.json")
    assert not gate.passed and gate.message.startswith("candidate gat: REGRESSION in ndcg@20, recall@20")
    assert gate.observed == pytest.approx(metrics["test"]["ndcg@20"])
    assert gate.threshold == pytest.approx(metrics["test"]["ndcg@20"] * 1.1 * 0.98)
    assert gate.metadata["blessed_uri"] == "eval/blessed.json"
    table = report_table(models, "gat")
    assert "| **gat** (served) | decay 2, floor 0.1, readout 1 |" in table and "| pop | " in table
    with pytest.raises(ValueError, match="candidate 'mf' is not among the evaluated models"):
        build_report(models, data, "mf", "", {}, "run", None, 0.02)


def _entry(val: float, kind: str = "embedding") -> dict[str, object]:
    return {"kind": kind, "val": {"ndcg@20": val}}


def test_candidate_is_the_validation_best_servable_model_or_the_pinned_one() -> None:
    models = {"popularity": _entry(0.05), "ease": _entry(0.16, "item_item"), "gat": _entry(0.15)}
    name, reason = choose_candidate(models)
    assert name == "ease"
    assert reason == "ease: best validation NDCG@20 among servable models (0.1600), +6.7% over gat (0.1500)"
    # A kind serving cannot publish stays out of candidacy, whatever its score.
    unservable = {**models, "sequence": _entry(0.30, "sequence")}
    assert choose_candidate(unservable)[0] == "ease"
    with pytest.raises(
        ValueError, match="pinned candidate 'sequence' is a sequence model, which cannot serve"
    ):
        choose_candidate(unservable, "sequence")
    assert choose_candidate(models, "gat") == (
        "gat",
        "gat: pinned by the models.candidate setting (val NDCG@20 0.1500)",
    )
    with pytest.raises(ValueError, match="pinned candidate 'mf' is not among the evaluated models"):
        choose_candidate(models, "mf")
    # Ties go to the first evaluated.
    assert choose_candidate({"a": _entry(0.1), "b": _entry(0.1)})[0] == "a"
