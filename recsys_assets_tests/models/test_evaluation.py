"""One evaluation for every model: full-ranking metrics, slices and coverage by hand, the
promotion verdict, the report and its gate."""

from __future__ import annotations

import numpy as np
import pytest

from recsys_assets.core.io.sparse import Csr
from recsys_assets.core.models.evaluation import evaluate, evaluate_per_user, fixed, slice_masks
from recsys_assets.core.models.metrics import dot_scorer
from recsys_assets.core.models.promotion import Decision, promotion_verdict
from recsys_assets.core.models.recency import Order
from recsys_assets.core.models.report import build_report, gate_outcome, model_entry, report_table
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
    report = evaluate(fixed(dot_scorer(users, items)), data, ks=(1, 2))
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
        evaluate(fixed(dot_scorer(users, items[:5])), data)


def test_promotion_verdict() -> None:
    blessed = {"ndcg@20": 0.1000, "recall@20": 0.2000}
    ok = promotion_verdict({"ndcg@20": 0.0985, "recall@20": 0.2100}, blessed, tolerance=0.02)
    assert ok.passed and ok.description.startswith(
        "no regression: ndcg@20 0.0985 vs blessed 0.1000 (floor 0.0980)"
    )
    # The candidate's interval is stated beside its value.
    stated = promotion_verdict(
        {"ndcg@20": 0.0985, "recall@20": 0.2100}, blessed, 0.02, {"ndcg@20": [0.09, 0.107]}
    )
    assert "ndcg@20 0.0985 (CI 0.0900 to 0.1070) vs blessed 0.1000" in stated.description
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
    metrics = evaluate(fixed(dot_scorer(users, items)), data)
    meta = {"train_seconds": 1.5, "best_epoch": 3, "config": {"dim": 1}, "run_id": "r1", "history": [],
            "kind": "embedding", "order": Order(2.0, 0.1, 1.0).to_dict()}  # fmt: skip
    files = {"users_uri": "u.npy", "items_uri": "i.npy", "meta_uri": "m.json"}
    models = {"pop": model_entry(metrics, meta, files), "gat": model_entry(metrics, meta, files)}
    assert models["gat"]["train"]["best_epoch"] == 3 and models["gat"]["train"]["note"] is None
    assert models["gat"]["files"] == files and models["gat"]["config"] == {"dim": 1}
    assert models["gat"]["kind"] == "embedding" and models["gat"]["order"]["decay"] == 2.0
    pinned = Decision("gat", "pinned", "gat")
    report, verdict = build_report(models, data, pinned, {"code": "v1"}, "run", None, 0.02)
    assert report["candidate"] == "gat" and report["candidate_reason"] == "pinned"
    assert report["ks"] == [10, 20] and report["data"] == data.summary()
    assert report["promotion"]["passed"] and report["promotion"]["blessed_created_at"] is None
    assert report["versions"]["code"] == "v1" and "torch" in report["versions"]["packages"]
    # Blessed 10% better than the candidate: the gate fails, and says by how much.
    blessed = {**report, "models": {"gat": {"test": {m: v * 1.1 for m, v in metrics["test"].items()
                                                      if m in ("ndcg@20", "recall@20")}}}}  # fmt: skip
    _, verdict = build_report(models, data, pinned, {}, "run", blessed, 0.02)
    gate = gate_outcome(verdict, "gat", 0.02, "eval/blessed.json")
    assert not gate.passed and gate.message.startswith("candidate gat: REGRESSION in ndcg@20, recall@20")
    assert gate.observed == pytest.approx(metrics["test"]["ndcg@20"])
    assert gate.threshold == pytest.approx(metrics["test"]["ndcg@20"] * 1.1 * 0.98)
    assert gate.metadata["blessed_uri"] == "eval/blessed.json"
    table = report_table(models, "gat")
    assert "| **gat** (served) | decay 2, floor 0.1, readout 1 |" in table and "| pop | " in table
    with pytest.raises(ValueError, match="candidate 'mf' is not among the evaluated models"):
        build_report(models, data, Decision("mf", "", "mf"), {}, "run", None, 0.02)


def test_test_reads_the_validation_history_and_validation_the_train_history() -> None:
    """An item-item scorer: item 1 follows item 0, item 3 (more strongly) item 2. The user's train item
    is 0, their validation item 2 (after 1 would be expected), their test item 3: only a model
    reading the validation interaction at test time can rank 3 first."""
    data = TrainingData(
        Csr.from_pairs(np.array([0]), np.array([0]), 1, np.array([1.0])),
        Csr.from_pairs(np.array([0]), np.array([2]), 1),
        Csr.from_pairs(np.array([0]), np.array([3]), 1),
        5,
        test_history=Csr.from_pairs(np.array([0, 0]), np.array([0, 2]), 1, np.array([0.0, 1.0])),
    )
    follows = np.zeros((5, 5))
    follows[0, 1], follows[2, 3] = 1.0, 2.0
    follows[:, 4] = 0.5  # a weak default for everyone

    def score_for(history: Csr) -> object:
        def score(rows: np.ndarray) -> np.ndarray:
            matrix = np.zeros((len(rows), 5))
            for i, user in enumerate(rows):
                matrix[i] = follows[history.row(int(user))].sum(axis=0)
            return matrix

        return score

    deployed, scores = evaluate_per_user(score_for, data, ks=(1,))  # type: ignore[arg-type]
    assert deployed["val"]["hit@1"] == 0.0  # item 1 is ranked first, item 2 was chosen
    assert deployed["test"]["hit@1"] == 1.0  # history 0, 2: item 3 first
    assert scores["test"].users.tolist() == [0] and scores["test"].values["hit@1"].tolist() == [1.0]
    before = evaluate(score_for, data, ks=(1,), test_history="train")  # type: ignore[arg-type]
    assert before["test"]["hit@1"] == 0.0  # history 0 alone: item 1 first (2 is excluded)
