"""The evaluation report as people read it: the compact table and the learning curves."""

from __future__ import annotations

import io

import numpy as np
from PIL import Image

from recsys_assets.core.models.examples import example_users, examples_table
from recsys_assets.core.models.metrics import Csr
from recsys_assets.core.models.report import learning_curves_plot, summary_table
from recsys_assets.core.models.training_data import TrainingData


def _model(val: float, test: float, seconds: float) -> dict:
    return {"val": {"ndcg@20": val}, "test": {"ndcg@20": test, "recall@20": test * 2, "coverage@20": 0.5},
            "train": {"train_seconds": seconds}}  # fmt: skip


def test_the_compact_table_labels_validation_and_test_and_marks_what_serves() -> None:
    table = summary_table({"ease": _model(0.2, 0.15, 3.0), "gat": _model(0.25, 0.14, 90.0)}, "gat")
    assert table.splitlines() == [
        "| model | val NDCG@20 (chooses) | test NDCG@20 | test Recall@20 |",
        "|---|---|---|---|",
        "| ease | 0.2000 | 0.1500 | 0.3000 |",
        "| **gat (serves)** | 0.2500 | 0.1400 | 0.2800 |",
    ]
    # The UI shows markdown under 1,000 characters inline, longer behind a click.
    big = {f"model{i}": _model(0.2, 0.15, 3.0) for i in range(8)}
    assert len(summary_table(big, "model0")) < 1_000


def test_learning_curves_of_the_models_trained_by_epoch_only() -> None:
    history = [{"epoch": float(e), "loss": 1.0, "val_ndcg@20": 0.1 + e / 100} for e in range(1, 6)]
    plot = learning_curves_plot({"gat": history, "ease": []})
    assert plot is not None and Image.open(io.BytesIO(plot)).format == "PNG"
    assert learning_curves_plot({"ease": [], "itemknn": []}) is None


def _csr(rows: list[list[int]], values: list[list[float]] | None = None) -> Csr:
    indptr = np.cumsum([0] + [len(r) for r in rows])
    flat = np.array([i for r in rows for i in r], dtype=np.int64)
    return Csr(indptr, flat, np.array([v for r in values for v in r]) if values else None)


def test_examples_show_recent_history_and_the_models_top_items_with_test_hits_marked() -> None:
    # 3 users, 8 items; user 1 has no test item, so only users 0 and 2 can be examples.
    train = _csr([[0, 1, 2, 3], [4], [5, 6]], [[0.0, 1.0, 0.5, 0.25], [1.0], [1.0, 0.0]])
    data = TrainingData(train, val=_csr([[4], [], [7]]), test=_csr([[6], [], [0]]), n_items=8)
    assert example_users(data, n=5).tolist() == [0, 2]
    # Scores rank items by index descending for every user.
    table = examples_table(
        lambda users: np.tile(np.arange(8.0), (len(users), 1)), data, np.array([0, 2]), ["u0", "u1", "u2"],
        [f"item|{i}" for i in range(8)],
    )  # fmt: skip
    assert table.splitlines() == [
        "| user | last in their history | recommended (✓: in their test items) |",
        "|---|---|---|",
        # Train and validation items are never recommended; at most 5; the history most recent first.
        "| u0 | item\\|1; item\\|2; item\\|3 (of 4) | item\\|7; ✓ item\\|6; item\\|5 |",
        "| u2 | item\\|5; item\\|6 (of 2) | item\\|4; item\\|3; item\\|2; item\\|1; ✓ item\\|0 |",
    ]
