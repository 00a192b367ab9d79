"""The evaluation report as people read it: the compact table and the learning curves."""

from __future__ import annotations

import io

from PIL import Image

from recsys_assets.core.models.report import learning_curves_plot, summary_table


def _model(val: float, test: float, seconds: float) -> dict:
    return {"val": {"ndcg@20": val}, "test": {"ndcg@20": test, "recall@20": test * 2, "coverage@20": 0.5},
            "train": {"train_seconds": seconds}}  # fmt: skip


def test_the_compact_table_labels_validation_and_test_and_marks_what_serves() -> None:
    table = summary_table({"ease": _model(0.2, 0.15, 3.0), "gat": _model(0.25, 0.14, 90.0)}, "gat")
    assert table.splitlines() == [
        "| model | validation NDCG@20 (chooses) | test NDCG@20 | test Recall@20 | test coverage@20 | train s "
        "| serves |",
        "|---|---|---|---|---|---|---|",
        "| ease | 0.2000 | 0.1500 | 0.3000 | 0.500 | 3.0 |  |",
        "| **gat** | 0.2500 | 0.1400 | 0.2800 | 0.500 | 90.0 | **yes** |",
    ]


def test_learning_curves_of_the_models_trained_by_epoch_only() -> None:
    history = [{"epoch": float(e), "loss": 1.0, "val_ndcg@20": 0.1 + e / 100} for e in range(1, 6)]
    plot = learning_curves_plot({"gat": history, "ease": []})
    assert plot is not None and Image.open(io.BytesIO(plot)).format == "PNG"
    assert learning_curves_plot({"ease": [], "itemknn": []}) is None
