"""Early stopping and what a training loop reports as it goes."""

from __future__ import annotations

import numpy as np
import pytest

from recsys_assets.core.io.sparse import Csr
from recsys_assets.core.models.early_stopping import EarlyStopping
from recsys_assets.core.models.training import progress_line


def test_each_evaluation_reports_the_best_so_far_the_patience_left_and_the_time_left() -> None:
    records: list[dict[str, float]] = []
    empty = Csr(np.zeros(3, dtype=np.int64), np.zeros(0, dtype=np.int64))
    stopping = EarlyStopping(empty, empty, patience=2, progress=records.append, epochs=10)
    vectors = np.zeros((2, 4))
    stops = [stopping.evaluate(e, 1.0 / e, vectors, vectors, ndcg) for e, ndcg in
             enumerate([0.1, 0.2, 0.15, 0.12], start=1)]  # fmt: skip
    assert stops == [False, False, False, True]
    assert [r["best_epoch"] for r in records] == [1, 2, 2, 2]
    assert [r["best_val_ndcg@20"] for r in records] == [0.1, 0.2, 0.2, 0.2]
    assert [r["patience_left"] for r in records] == [2, 2, 1, 0]
    assert {r["epochs"] for r in records} == {10} and {r["patience"] for r in records} == {2}
    # At most the remaining epochs at the pace so far; nothing once it stops.
    third = records[2]
    assert third["eta_seconds"] == pytest.approx(third["seconds_per_epoch"] * 7)
    assert records[3]["eta_seconds"] == 0
    # The history keeps the curve alone.
    assert stopping.result().history[1] == {"epoch": 2.0, "loss": 0.5, "val_ndcg@20": 0.2}


def test_the_log_line_says_where_training_stands() -> None:
    record = {"epoch": 12.0, "loss": 0.41234, "val_ndcg@20": 0.2031, "epochs": 80.0, "best_epoch": 10.0,
              "best_val_ndcg@20": 0.205, "patience_left": 8.0, "patience": 10.0, "seconds_per_epoch": 11.8,
              "eta_seconds": 802.4}  # fmt: skip
    assert progress_line(record) == (
        "epoch 12 of at most 80: loss 0.4123, val NDCG@20 0.2031 (best 0.2050 at epoch 10; patience 8 of 10 "
        "left); 11.8 s an epoch, at most 13.4 min left"
    )
    assert progress_line(record | {"eta_seconds": 0.0}).endswith("11.8 s an epoch, done")
