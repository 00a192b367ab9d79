"""Training any of the recommenders the same way: each returns a ``Scorable`` (user and item
vectors scored by dot product, popularity as 1-d vectors; or item-item neighbour lists) with
the use of order chosen on validation, so one evaluation and one serving path fit them all.
What a trained model's files hold, and the check on them, are defined here too."""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import torch

from recsys_assets.core.markdown import markdown_table
from recsys_assets.core.models import registry
from recsys_assets.core.models.early_stopping import FitResult
from recsys_assets.core.models.gat.checkpoint import checkpoint_bytes
from recsys_assets.core.models.gat.graph import Graph
from recsys_assets.core.models.gat.model import embed
from recsys_assets.core.models.gat.train import train_gat
from recsys_assets.core.models.item_item import ItemItemFit, ease, itemknn
from recsys_assets.core.models.lightgcn import train_lightgcn
from recsys_assets.core.models.mf import train_mf_bpr
from recsys_assets.core.models.popularity import popularity_vectors
from recsys_assets.core.models.ranker.inputs import RankerInputs
from recsys_assets.core.models.recency import ORDER_FREE, Choice, Order
from recsys_assets.core.models.scoring import Scorable, choose_order
from recsys_assets.core.models.training_data import TrainingData
from recsys_assets.core.outcomes import CheckOutcome
from recsys_assets.settings.models import (
    EASEConfig,
    GATConfig,
    ItemKNNConfig,
    LightGCNConfig,
    MFConfig,
    OrderConfig,
)

Progress = Callable[[dict[str, float]], None]


def progress_line(record: dict[str, float]) -> str:
    """One evaluation of a training loop (``EarlyStopping``'s progress record) for a log: the
    epoch of the most, its loss and validation score, the best so far, the patience left, the
    pace and the most time left."""
    line = (
        f"epoch {int(record['epoch'])} of at most {int(record['epochs'])}: loss {record['loss']:.4f}, "
        f"val NDCG@20 {record['val_ndcg@20']:.4f} (best {record['best_val_ndcg@20']:.4f} at epoch "
        f"{int(record['best_epoch'])}; patience {int(record['patience_left'])} of {int(record['patience'])} "
        f"left); {record['seconds_per_epoch']:.1f} s an epoch"
    )
    eta = record["eta_seconds"]
    return line + (f", at most {eta / 60:.1f} min left" if eta else ", done")


@dataclass
class Trained:
    model: Scorable
    config: dict[str, Any]
    fit: FitResult | None = None
    #: Its weights, when the files alone cannot rebuild it (the GAT's and SASRec's networks, a
    #: ranker's LightGBM model as text); None for the others.
    checkpoint: bytes | None = None
    extra: dict[str, Any] = field(default_factory=dict)
    #: The use of order chosen on validation (``with_order``), and what was tried.
    choice: Choice | None = None

    @property
    def seconds(self) -> float:
        return self.fit.seconds if self.fit else float(self.extra.get("train_seconds", 0.0))

    @property
    def order(self) -> Order:
        return self.choice.best.order if self.choice else ORDER_FREE


@dataclass(frozen=True)
class Fitting:
    """What a model's ``fit(data, config, fitting)`` gets besides the data and its settings."""

    #: The uses of order tried on validation (``recency.py``).
    order: OrderConfig = field(default_factory=OrderConfig)
    #: Each validation of an epoch-trained model (``EarlyStopping``'s progress record).
    progress: Progress | None = None
    #: Lines for the log.
    log: Callable[[str], None] | None = None
    #: Steps within a long epoch (done, total).
    step_progress: Callable[[int, int], None] | None = None
    #: The items' features and the graph, for a model that reads content (``ModelSpec.content``).
    content: tuple[np.ndarray, Graph] | None = None
    #: The trained retrievers and content vectors, for a ranker (``ModelSpec.kind``).
    ranker: RankerInputs | None = None


def fit_popularity(data: TrainingData, config: None = None, fitting: Fitting | None = None) -> Trained:
    start = time.perf_counter()
    users, items = popularity_vectors(data.train.indices, data.n_users, data.n_items)
    model = Scorable(users, items, personal=False)
    return Trained(model, {}, extra={"train_seconds": time.perf_counter() - start})


def fit_mf(data: TrainingData, config: MFConfig, fitting: Fitting | None = None) -> Trained:
    progress = fitting.progress if fitting else None
    fit = train_mf_bpr(data.train, data.val, data.n_items, config, progress)
    return Trained(Scorable(fit.users, fit.items), config.to_dict(), fit)


def fit_lightgcn(data: TrainingData, config: LightGCNConfig, fitting: Fitting | None = None) -> Trained:
    progress = fitting.progress if fitting else None
    fit = train_lightgcn(data.train, data.val, data.n_items, config, progress)
    return Trained(Scorable(fit.users, fit.items), config.to_dict(), fit)


def fit_gat(data: TrainingData, config: GATConfig, fitting: Fitting) -> Trained:
    """The GAT's order-free vectors (its early stopping watched validation with the readout it
    chose, kept as ``training_order``; ``with_order`` chooses the one that is used)."""
    if fitting.content is None:
        raise ValueError("gat: needs the item features and the graph (Fitting.content)")
    features, graph = fitting.content
    fit = train_gat(data.train, data.val, features, graph, config, fitting.progress, fitting.step_progress)
    assert fit.model is not None  # train_gat always returns its model
    edges = {"/".join(r): int(e.shape[1]) for r, e in graph.edges.items()}
    checkpoint = checkpoint_bytes(fit.model, graph, int(features.shape[1]))
    users, items = embed(fit.model, torch.from_numpy(np.ascontiguousarray(features, np.float32)), graph,
                         readout=False)  # fmt: skip
    model = Scorable(users, items, unit=config.loss == "softmax", bias_column=config.item_bias)
    training_order = Order(config.recency_decay, 0.0, fit.readout)
    extra = {"edges": edges, "recency_readout": fit.readout, "training_order": training_order.to_dict()}
    return Trained(model, config.to_dict(), fit, checkpoint, extra)


def fit_item_item(
    data: TrainingData, fitted: ItemItemFit, config: dict[str, Any], fitting: Fitting
) -> Trained:
    """The fitted neighbour lists and use of order with the best validation NDCG@20."""
    candidates = [(params, Scorable(neighbours=w)) for params, w in fitted.candidates]
    start = time.perf_counter()
    chosen, choice = choose_order(candidates, data, fitting.order, fitting.log)
    seconds = fitted.seconds + time.perf_counter() - start
    extra = {"train_seconds": seconds, "chosen": choice.best.params, **fitted.notes}
    return Trained(chosen, config, extra=extra, choice=choice)


def fit_ease(data: TrainingData, config: EASEConfig, fitting: Fitting) -> Trained:
    fitted = ease(data.train, data.n_items, config.l2, config.max_items, config.neighbours, fitting.log)
    return fit_item_item(data, fitted, config.to_dict(), fitting)


def fit_itemknn(data: TrainingData, config: ItemKNNConfig, fitting: Fitting) -> Trained:
    fitted = itemknn(data.train, data.n_items, config.neighbours, config.shrink, fitting.log)
    return fit_item_item(data, fitted, config.to_dict(), fitting)


def train(name: str, data: TrainingData, config: Any, fitting: Fitting) -> Trained:
    """Model ``name`` fitted by its registered ``fit``, with the use of order chosen on
    validation (an item-item model chooses it with its own settings)."""
    spec = registry.spec(name)
    trained: Trained = spec.fit_function()(data, config, fitting)
    if trained.choice is None and trained.model.kind != "ranker":
        trained = with_order(trained, data, fitting.order, fitting.log)
    return trained


def with_order(
    trained: Trained, data: TrainingData, order: OrderConfig, progress: Callable[[str], None] | None = None
) -> Trained:
    """An embedding model with the use of order (readout, decay, floor) chosen on validation,
    the one it trained with (the GAT's) among those tried."""
    extra = [Order(**trained.extra["training_order"])] if "training_order" in trained.extra else []
    _, trained.choice = choose_order([({}, trained.model)], data, order, progress, extra)
    return trained


def model_meta(model: str, trained: Trained, data: TrainingData, run_id: str) -> dict[str, Any]:
    """What ``models/<name>/meta.json`` holds: kind, config, data, timings, the validation
    history, the use of order chosen and what was tried."""
    fit, choice, scorable = trained.fit, trained.choice, trained.model
    # The last validated epoch (training ends on one): validations may be every few epochs.
    epochs = int(fit.history[-1]["epoch"]) if fit and fit.history else 0
    return {
        "model": model,
        "kind": scorable.kind,
        "unit": scorable.unit,
        "bias_column": scorable.bias_column,
        "personal": scorable.personal,
        "encoder": scorable.encoder is not None,
        "config": trained.config,
        "data": data.summary(),
        "dim": int(scorable.items.shape[1]) if scorable.items is not None else None,
        "neighbours": int(scorable.neighbours.nnz) if scorable.neighbours is not None else None,
        "train_seconds": round(trained.seconds, 3),
        "epochs_run": epochs,
        "seconds_per_epoch": round(trained.seconds / epochs, 3) if epochs else None,
        "best_epoch": fit.best_epoch if fit else None,
        "best_val_ndcg@20": round(fit.best_val_ndcg20, 5) if fit else None,
        "history": fit.history if fit else [],
        "order": trained.order.to_dict(),
        "order_free": (choice.order_free.order if choice else ORDER_FREE).to_dict(),
        "order_val_ndcg@20": (
            {"chosen": round(choice.best.val_ndcg20, 5), "order_free": round(choice.order_free.val_ndcg20, 5)}
            if choice
            else None
        ),
        "order_tried": choice.table() if choice else [],
        "run_id": run_id,
        **{k: v for k, v in trained.extra.items() if k != "train_seconds"},
    }


def vectors_outcome(trained: Trained, data: TrainingData) -> CheckOutcome:
    """One finite user vector per user node and item vector per item node, of one width; or
    finite neighbour lists over the item nodes; or a ranker's finite scores of each split's
    candidates."""
    if trained.model.split_scores is not None:
        return _scores_outcome(trained.model.split_scores, data)
    weights = trained.model.neighbours
    if weights is not None:
        finite = bool(np.isfinite(weights.data).all())
        shape_ok = weights.shape == (data.n_items, data.n_items)
        return CheckOutcome(
            finite and shape_ok,
            f"neighbour lists {list(weights.shape)} (expected {data.n_items} x {data.n_items}), "
            f"{weights.nnz:,} weights, {'all finite' if finite else 'NON-FINITE values'}",
            0 if finite and shape_ok else 1,
            0,
            metadata={"items": int(weights.shape[0]), "weights": int(weights.nnz)},
        )
    users, items = trained.model.users, trained.model.items
    assert users is not None
    assert items is not None
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


def _scores_outcome(split_scores: dict[str, Any], data: TrainingData) -> CheckOutcome:
    shapes_ok = all(m.shape == (data.n_users, data.n_items) for m in split_scores.values())
    finite = all(bool(np.isfinite(m.data).all()) for m in split_scores.values())
    counts = {split: int(m.nnz) for split, m in split_scores.items()}
    return CheckOutcome(
        shapes_ok and finite,
        f"candidate scores {counts} over {data.n_users} users x {data.n_items} items, "
        f"{'all finite' if finite else 'NON-FINITE values'}{'' if shapes_ok else ', WRONG SHAPE'}",
        0 if shapes_ok and finite else 1,
        0,
        metadata={f"{split}_candidates": n for split, n in counts.items()},
    )


def learning_curve(history: list[dict[str, float]], rows: int = 12) -> str:
    """The validation history as a markdown table of at most ``rows`` epochs (and the last)."""
    step = max(1, len(history) // rows)
    shown = history[::step] + ([history[-1]] if (len(history) - 1) % step else [])
    return markdown_table(
        ["epoch", "train loss", "val NDCG@20"],
        [[int(h["epoch"]), f"{h['loss']:.4f}", f"{h['val_ndcg@20']:.4f}"] for h in shown],
    )
