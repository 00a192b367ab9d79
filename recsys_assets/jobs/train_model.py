"""Job: train one recommender on the split interactions -> ``models/<name>/`` vectors + meta.

Extras: ``model`` (``popularity``, ``mf``, ``lightgcn`` or ``gat``), ``splits_uri``,
``node_maps_uri``, ``output_uri`` (a folder: ``users.npy``, ``items.npy``, ``meta.json``),
``check`` (the asset's check name prefix), optional ``config`` overrides of the model's
config class; for ``gat`` also ``features_uri`` (item embeddings, items order),
``features`` (their name), ``ui_edges_uri`` (train user-item edges with their attributes),
``ii_edges_uri`` (item-item kNN edges) and ``checkpoint_uri`` (``models/gat.pt``: weights,
config and graph sizes, for re-embedding later).

Every model is stored the same way, as user and item vectors scored by dot product
(popularity as 1-d vectors), so one evaluation serves them all.
"""

from __future__ import annotations

import io
import time
from collections.abc import Callable
from dataclasses import dataclass, field, fields
from typing import Any, TypeVar

import numpy as np
import torch

from recsys_assets.core.artifacts import (
    join,
    read_json,
    read_npy,
    read_npz,
    read_parquet,
    write_bytes,
    write_json,
    write_npy,
)
from recsys_assets.core.early_stopping import FitResult
from recsys_assets.core.gat import GATConfig, Graph, build_graph, train_gat
from recsys_assets.core.graphs import NodeMaps, edge_problems
from recsys_assets.core.lightgcn import LightGCNConfig, train_lightgcn
from recsys_assets.core.markdown import markdown_table
from recsys_assets.core.mf import MFConfig, train_mf_bpr
from recsys_assets.core.popularity import popularity_vectors
from recsys_assets.core.training_data import TrainingData, training_data
from recsys_assets.jobs.pipes_io import Check, JobResult, json_value, md, run_job

MODELS = ("popularity", "mf", "lightgcn", "gat")
C = TypeVar("C")


def load_training_data(params: dict[str, Any]) -> TrainingData:
    maps = NodeMaps.from_json(read_json(params["node_maps_uri"]))
    splits = read_parquet(params["splits_uri"], columns=["user_id", "item_id", "split"])
    return training_data(splits, maps, params["splits_uri"])


def load_gat_inputs(params: dict[str, Any], data: TrainingData) -> tuple[np.ndarray, Graph]:
    features = read_npy(params["features_uri"])
    if features.shape[0] != data.n_items:
        raise ValueError(
            f"{params['features_uri']}: {features.shape[0]} rows but node_maps has {data.n_items} items; "
            "rematerialize the embeddings"
        )
    ui = read_npz(params["ui_edges_uri"])
    if len(ui["src"]) != len(data.train.indices):
        raise ValueError(
            f"{params['ui_edges_uri']}: {len(ui['src'])} edges but the split has {len(data.train.indices)} "
            "train interactions; rematerialize ui_edges"
        )
    ii = read_npz(params["ii_edges_uri"]) if params.get("ii_edges_uri") else None
    for name, edges, n_src in (("ui_edges_uri", ui, data.n_users), ("ii_edges_uri", ii, data.n_items)):
        if (
            edges is not None
            and edge_problems(edges["src"], edges["dst"], n_src, data.n_items, False).out_of_range
        ):
            raise ValueError(f"{params[name]}: node index out of range for {n_src} x {data.n_items} nodes")
    return features, build_graph(ui, data.n_users, data.n_items, ii)


@dataclass
class Trained:
    users: np.ndarray
    items: np.ndarray
    config: dict[str, Any]
    fit: FitResult | None = None
    checkpoint: bytes | None = None
    extra: dict[str, Any] = field(default_factory=dict)


def fit_gat(
    data: TrainingData,
    features: np.ndarray,
    graph: Graph,
    config: GATConfig,
    progress: Callable[[dict[str, float]], None] | None,
    step_progress: Callable[[int, int], None] | None = None,
) -> Trained:
    fit = train_gat(data.train, data.val, features, graph, config, progress, step_progress)
    buffer = io.BytesIO()
    assert fit.model is not None
    torch.save(
        {
            "state_dict": fit.model.state_dict(),
            "config": config.to_dict(),
            "n_users": data.n_users,
            "n_items": data.n_items,
            "feature_dim": int(features.shape[1]),
            "edge_dims": {"/".join(r): d for r, d in graph.edge_dims().items()},
        },
        buffer,
    )
    edges = {"/".join(r): int(e.shape[1]) for r, e in graph.edges.items()}
    extra = {"edges": edges, "recency_readout": fit.readout}
    return Trained(fit.users, fit.items, config.to_dict(), fit, buffer.getvalue(), extra)


def make_config(cls: type[C], overrides: dict[str, Any], model: str) -> C:
    """``cls(**overrides)``, naming any setting the model does not have."""
    known = {f.name for f in fields(cls)}  # type: ignore[arg-type]
    unknown = sorted(set(overrides) - known)
    if unknown:
        raise ValueError(f"{model} config: unknown setting(s) {unknown}; known: {sorted(known)}")
    return cls(**overrides)


def train(
    model: str,
    data: TrainingData,
    params: dict[str, Any],
    progress: Callable[[dict[str, float]], None],
    step_progress: Callable[[int, int], None] | None = None,
) -> Trained:
    overrides = params.get("config") or {}
    if model == "popularity":
        start = time.perf_counter()
        users, items = popularity_vectors(data.train.indices, data.n_users, data.n_items)
        return Trained(users, items, {}, extra={"train_seconds": time.perf_counter() - start})
    if model == "mf":
        mf = make_config(MFConfig, overrides, model)
        fit = train_mf_bpr(data.train, data.val, data.n_items, mf, progress)
        return Trained(fit.users, fit.items, mf.to_dict(), fit)
    if model == "lightgcn":
        lightgcn = make_config(LightGCNConfig, overrides, model)
        fit = train_lightgcn(data.train, data.val, data.n_items, lightgcn, progress)
        return Trained(fit.users, fit.items, lightgcn.to_dict(), fit)
    if model == "gat":
        features, graph = load_gat_inputs(params, data)
        config = make_config(GATConfig, overrides, model)
        return fit_gat(data, features, graph, config, progress, step_progress)
    raise ValueError(f"model {model!r}: expected one of {', '.join(MODELS)}")


def vectors_check(name: str, trained: Trained, data: TrainingData) -> Check:
    users, items = trained.users, trained.items
    finite = bool(np.isfinite(users).all() and np.isfinite(items).all())
    shapes_ok = (
        users.shape[0] == data.n_users and items.shape[0] == data.n_items and users.shape[1] == items.shape[1]
    )
    return Check(
        name,
        finite and shapes_ok,
        f"users {list(users.shape)} (expected {data.n_users} rows), items {list(items.shape)} "
        f"(expected {data.n_items} rows), {'all finite' if finite else 'NON-FINITE values'}",
        {"users": int(users.shape[0]), "items": int(items.shape[0]), "dim": int(items.shape[1])},
    )


def step_logger(pipes: Any, model: str, every_seconds: float = 30.0) -> Callable[[int, int], None]:
    """Within-epoch progress, logged only when an epoch is long (sampled training at scale)."""
    last = [time.perf_counter()]

    def report(done: int, total: int) -> None:
        now = time.perf_counter()
        if now - last[0] >= every_seconds:
            last[0] = now
            pipes.log.info(f"{model}: step {done:,} of {total:,} in this epoch")

    return report


def learning_curve(history: list[dict[str, float]], rows: int = 12) -> str:
    step = max(1, len(history) // rows)
    shown = history[::step] + ([history[-1]] if (len(history) - 1) % step else [])
    return markdown_table(
        ["epoch", "train loss", "val NDCG@20"],
        [[int(h["epoch"]), f"{h['loss']:.4f}", f"{h['val_ndcg@20']:.4f}"] for h in shown],
    )


def run(params: dict[str, Any], pipes: Any, run_id: str) -> JobResult:
    model = params["model"]
    data = load_training_data(params)
    pipes.log.info(f"training {model} on {data.summary()}")

    def progress(record: dict[str, float]) -> None:
        epoch, loss, ndcg = int(record["epoch"]), record["loss"], record["val_ndcg@20"]
        pipes.log.info(f"{model} epoch {epoch}: loss {loss:.4f}, val NDCG@20 {ndcg:.4f}")

    trained = train(model, data, params, progress, step_logger(pipes, model))
    fit = trained.fit
    seconds = fit.seconds if fit else float(trained.extra.get("train_seconds", 0.0))
    epochs = len(fit.history) if fit else 0
    meta: dict[str, Any] = {
        "model": model,
        "config": trained.config,
        "data": data.summary(),
        "dim": int(trained.items.shape[1]),
        "train_seconds": round(seconds, 3),
        "epochs_run": epochs,
        "seconds_per_epoch": round(seconds / epochs, 3) if epochs else None,
        "best_epoch": fit.best_epoch if fit else None,
        "best_val_ndcg@20": round(fit.best_val_ndcg20, 5) if fit else None,
        "history": fit.history if fit else [],
        "run_id": run_id,
        **{k: v for k, v in trained.extra.items() if k != "train_seconds"},
    }
    if model == "gat":
        meta["features"] = params.get("features")
        meta["checkpoint_uri"] = params["checkpoint_uri"]
    output = params["output_uri"]
    write_npy(join(output, "users.npy"), trained.users.astype(np.float32))
    write_npy(join(output, "items.npy"), trained.items.astype(np.float32))
    if trained.checkpoint is not None:
        write_bytes(params["checkpoint_uri"], trained.checkpoint)
    write_json(join(output, "meta.json"), meta)
    metadata: dict[str, Any] = {
        "uri": output,
        "dim": meta["dim"],
        "train_seconds": meta["train_seconds"],
        "epochs_run": epochs,
        "seconds_per_epoch": meta["seconds_per_epoch"],
        "best_epoch": meta["best_epoch"],
        "best_val_ndcg20": meta["best_val_ndcg@20"],
        "config": json_value(trained.config) if trained.config else None,
        "learning_curve": md(learning_curve(fit.history)) if fit and fit.history else None,
    }
    if "recency_readout" in meta:
        metadata["recency_readout"] = meta["recency_readout"]
    return JobResult(metadata, [vectors_check(f"{params['check']}_vectors", trained, data)])


if __name__ == "__main__":
    run_job(run)
