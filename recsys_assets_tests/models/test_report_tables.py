"""The evaluation report as people read it: the compact table and the learning curves."""

from __future__ import annotations

import io

import numpy as np
from PIL import Image

from recsys_assets.core.io.sparse import Csr
from recsys_assets.core.models.examples import example_users, examples_table
from recsys_assets.core.models.report import learning_curves_plot, summary_table
from recsys_assets.core.models.training_data import TrainingData


def _model(val: float, test: float, seconds: float) -> dict:
    return {"val": {"ndcg@20": val}, "test": {"ndcg@20": test, "recall@20": test * 2, "coverage@20": 0.5,
                                               "ci": {"ndcg@20": [test - 0.01, test + 0.012]}},
            "train": {"train_seconds": seconds}}  # fmt: skip


def _versus(relative: float, lo: float, hi: float, significant: bool) -> dict:
    return {"relative": relative, "relative_ci": [lo, hi], "difference": 0.0, "significant": significant}


def test_the_compact_table_states_intervals_and_marks_differences_that_are_not_significant() -> None:
    ease = _model(0.2, 0.15, 3.0) | {
        "vs_served": {"val": {"ndcg@20": _versus(-0.2, -0.25, -0.15, True)},
                      "test": {"ndcg@20": _versus(0.071, -0.02, 0.16, False)}}
    }  # fmt: skip
    table = summary_table({"ease": ease, "gat": _model(0.25, 0.14, 90.0)}, "gat")
    assert table.splitlines() == [
        "| model | val NDCG@20 | val vs served | test NDCG@20 (CI) | test vs served |",
        "|---|---|---|---|---|",
        "| ease | 0.2000 | -20.0% (-25.0%, -15.0%) | 0.1500 (0.1400-0.1620) | +7.1% (-2.0%, +16.0%) n.s. |",
        "| **gat (serves)** | 0.2500 | - | 0.1400 (0.1300-0.1520) | - |",
    ]
    # The UI shows markdown under 1,000 characters inline, longer behind a click.
    big = {f"model{i}": ease for i in range(6)}
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
    # What the model reads when tested: train, then validation (latest).
    read = _csr([[0, 1, 2, 3, 4], [4], [5, 6, 7]], [[0.0, 0.75, 0.5, 0.25, 1.0], [1.0], [0.5, 0.0, 1.0]])
    data = TrainingData(
        train, val=_csr([[4], [], [7]]), test=_csr([[6], [], [0]]), n_items=8, test_history=read
    )
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
        "| u0 | item\\|4; item\\|1; item\\|2 (of 5) | item\\|7; ✓ item\\|6; item\\|5 |",
        "| u2 | item\\|7; item\\|5; item\\|6 (of 3) | item\\|4; item\\|3; item\\|2; item\\|1; ✓ item\\|0 |",
    ]
