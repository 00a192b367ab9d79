"""GAT variants trained and evaluated side by side: by default one thing changed at a time
(features, loss, heads, layers, item-item edges, edge attributes, each use of order, all of them). Every
variant is chosen on validation like the model itself; test is reported beside it."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import numpy as np

from recsys_assets.core.markdown import markdown_table
from recsys_assets.core.models.evaluation import evaluate
from recsys_assets.core.models.gat.graph import Graph
from recsys_assets.core.models.recency import Order
from recsys_assets.core.models.training import Fitting, Progress, fit_gat
from recsys_assets.core.models.training_data import TrainingData
from recsys_assets.settings.models import LOSSES, GATConfig

#: Loads (item features, graph) for a feature name (``fused`` or ``txt``).
InputLoader = Callable[[str], tuple[np.ndarray, Graph]]


def default_variants(base: GATConfig, features: str) -> dict[str, dict[str, Any]]:
    """Overrides of ``base`` by variant name; ``features`` switches the item input."""
    other = "txt" if features == "fused" else "fused"
    return {
        "base": {},
        f"features={other}": {"features": other},
        # ``negatives: 0`` picks the loss's own default count.
        **{f"loss={loss}": {"loss": loss, "negatives": 0} for loss in LOSSES if loss != base.loss},
        "heads=4": {"heads": 4},
        "layers=1": {"layers": 1},
        "layers=3": {"layers": 3},
        "no item-item edges": {"item_item": False},
        "no edge features": {"edge_features": False},
        # The GAT with every use of order switched off: no readout, no sequence context, no
        # next-item edges.
        "no order at all": {"recency_readout": [0.0], "sequence": False, "next_edges": False},
        # Order in training, each use switched the other way from the base.
        ("no sequence context" if base.sequence else "sequence context"): {"sequence": not base.sequence},
        ("no next-item edges" if base.next_edges else "next-item edges"): {"next_edges": not base.next_edges},
    }


def ablate(
    data: TrainingData,
    base: GATConfig,
    features: str,
    variants: dict[str, dict[str, Any]],
    load_inputs: InputLoader,
    progress: Callable[[str, dict[str, float]], None] | None = None,
) -> list[dict[str, Any]]:
    """One row per variant: its config, best epoch, validation and test metrics. Inputs are
    loaded once per feature set, however many variants share it."""
    loaded: dict[str, tuple[np.ndarray, Graph]] = {}
    rows: list[dict[str, Any]] = []
    for name, overrides in variants.items():
        changes = dict(overrides)
        variant_features = str(changes.pop("features", features))
        config = base.with_changes(changes, f"ablation variant {name!r}")
        if variant_features not in loaded:
            loaded[variant_features] = load_inputs(variant_features)
        x, graph = loaded[variant_features]
        report: Progress | None = (lambda record, name=name: progress(name, record)) if progress else None
        trained = fit_gat(data, config, Fitting(progress=report, content=(x, graph)))
        # Scored with the readout the GAT chose while training, as it early-stopped on it.
        order = Order(**trained.extra["training_order"])
        metrics = evaluate(trained.model.scoring(data.n_items, order), data)
        assert trained.fit is not None  # the GAT always early-stops on validation
        rows.append(
            {
                "variant": name,
                "features": variant_features,
                "config": config.to_dict(),
                "best_epoch": trained.fit.best_epoch,
                "recency_readout": trained.extra["recency_readout"],
                "train_seconds": round(trained.fit.seconds, 3),
                **{f"val_{m}": metrics["val"][m] for m in ("ndcg@20", "recall@20")},
                **{f"test_{m}": metrics["test"][m] for m in ("ndcg@20", "recall@20", "ndcg@10", "recall@10")},
            }
        )
    return rows


def ablation_table(rows: list[dict[str, Any]]) -> str:
    return markdown_table(
        ["variant", "features", "val NDCG@20", "test NDCG@20", "test Recall@20", "best epoch", "readout",
         "train s"],
        [
            [r["variant"], r["features"], f"{r['val_ndcg@20']:.4f}", f"{r['test_ndcg@20']:.4f}",
             f"{r['test_recall@20']:.4f}", r["best_epoch"], f"{r['recency_readout']:g}",
             f"{r['train_seconds']:.1f}"]
            for r in rows
        ],
    )  # fmt: skip
