"""Training any of the recommenders the same way: each returns user and item vectors (scored by
dot product; popularity as 1-d vectors), so one evaluation and one serving path fit them all.
What a trained model's files hold, and the check on them, are defined here too."""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any, Literal

import numpy as np

from recsys_assets.core.markdown import markdown_table
from recsys_assets.core.models.early_stopping import FitResult
from recsys_assets.core.models.gat.checkpoint import checkpoint_bytes
from recsys_assets.core.models.gat.graph import Graph
from recsys_assets.core.models.gat.train import train_gat
from recsys_assets.core.models.lightgcn import train_lightgcn
from recsys_assets.core.models.mf import train_mf_bpr
from recsys_assets.core.models.popularity import popularity_vectors
from recsys_assets.core.models.training_data import TrainingData
from recsys_assets.core.outcomes import CheckOutcome
from recsys_assets.settings.models import GATConfig, LightGCNConfig, MFConfig

ModelName = Literal["popularity", "mf", "lightgcn", "gat"]
Progress = Callable[[dict[str, float]], None]


@dataclass
class Trained:
    users: np.ndarray
    items: np.ndarray
    config: dict[str, Any]
    fit: FitResult | None = None
    #: The GAT's checkpoint (``checkpoint.py``); None for the others.
    checkpoint: bytes | None = None
    extra: dict[str, Any] = field(default_factory=dict)

    @property
    def seconds(self) -> float:
        return self.fit.seconds if self.fit else float(self.extra.get("train_seconds", 0.0))


def fit_popularity(data: TrainingData) -> Trained:
    start = time.perf_counter()
    users, items = popularity_vectors(data.train.indices, data.n_users, data.n_items)
    return Trained(users, items, {}, extra={"train_seconds": time.perf_counter() - start})


def fit_mf(data: TrainingData, config: MFConfig, progress: Progress | None = None) -> Trained:
    fit = train_mf_bpr(data.train, data.val, data.n_items, config, progress)
    return Trained(fit.users, fit.items, config.to_dict(), fit)


def fit_lightgcn(data: TrainingData, config: LightGCNConfig, progress: Progress | None = None) -> Trained:
    fit = train_lightgcn(data.train, data.val, data.n_items, config, progress)
    return Trained(fit.users, fit.items, config.to_dict(), fit)


def fit_gat(
    data: TrainingData,
    features: np.ndarray,
    graph: Graph,
    config: GATConfig,
    progress: Progress | None = None,
    step_progress: Callable[[int, int], None] | None = None,
) -> Trained:
    fit = train_gat(data.train, data.val, features, graph, config, progress, step_progress)
    assert fit.model is not None  # train_gat always returns its model
    edges = {"/".join(r): int(e.shape[1]) for r, e in graph.edges.items()}
    checkpoint = checkpoint_bytes(fit.model, graph, int(features.shape[1]))
    extra = {"edges": edges, "recency_readout": fit.readout}
    return Trained(fit.users, fit.items, config.to_dict(), fit, checkpoint, extra)


def model_meta(model: ModelName, trained: Trained, data: TrainingData, run_id: str) -> dict[str, Any]:
    """What ``models/<name>/meta.json`` holds: config, data, timings, the validation history."""
    fit = trained.fit
    epochs = len(fit.history) if fit else 0
    return {
        "model": model,
        "config": trained.config,
        "data": data.summary(),
        "dim": int(trained.items.shape[1]),
        "train_seconds": round(trained.seconds, 3),
        "epochs_run": epochs,
        "seconds_per_epoch": round(trained.seconds / epochs, 3) if epochs else None,
        "best_epoch": fit.best_epoch if fit else None,
        "best_val_ndcg@20": round(fit.best_val_ndcg20, 5) if fit else None,
        "history": fit.history if fit else [],
        "run_id": run_id,
        **{k: v for k, v in trained.extra.items() if k != "train_seconds"},
    }


def vectors_outcome(trained: Trained, data: TrainingData) -> CheckOutcome:
    """One finite user vector per user node and item vector per item node, of one width."""
    users, items = trained.users, trained.items
    finite = bool(np.isfinite(users).all() and np.isfinite(items).all())
    shapes_ok = (
        users.shape[0] == data.n_users and items.shape[0] == data.n_items and users.shape[1] == items.shape[1]
    )
    return CheckOutcome(
        finite and shapes_ok,
        f"users {list(users.shape)} (expected {data.n_users} rows), items {list(items.shape)} "
        f"(expected {data.n_items} rows), {'all finite' if finite else 'NON-FINITE values'}",
        0 if finite and shapes_ok else 1,
        0,
        metadata={"users": int(users.shape[0]), "items": int(items.shape[0]), "dim": int(items.shape[1])},
    )


def learning_curve(history: list[dict[str, float]], rows: int = 12) -> str:
    """The validation history as a markdown table of at most ``rows`` epochs (and the last)."""
    step = max(1, len(history) // rows)
    shown = history[::step] + ([history[-1]] if (len(history) - 1) % step else [])
    return markdown_table(
        ["epoch", "train loss", "val NDCG@20"],
        [[int(h["epoch"]), f"{h['loss']:.4f}", f"{h['val_ndcg@20']:.4f}"] for h in shown],
    )
