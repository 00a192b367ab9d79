"""The serving family: the promoted model's vectors exported for the API, and the FAISS index
whose manifest the API watches.

Both sit downstream of ``eval_report``, whose promotion gate is a blocking check: after a
failed gate neither runs, so the API keeps serving the last good version.
"""

from datetime import UTC, datetime
from typing import Any

import numpy as np
from dagster import AssetExecutionContext, MaterializeResult, MetadataValue, asset

from recsys_assets.assets.graphs import interaction_splits, node_maps
from recsys_assets.assets.models import eval_report
from recsys_assets.core.artifacts import read_json, read_npy, read_parquet, write_json
from recsys_assets.core.graphs import NodeMaps
from recsys_assets.core.markdown import markdown_table
from recsys_assets.core.serving_index import (
    MANIFEST,
    build_index,
    export_files,
    index_bytes,
    measure,
    promoted_release,
    publish,
    version_uri,
    write_files,
)
from recsys_assets.core.training_data import training_data
from resources.embeddings import ArtifactStore
from resources.serving_config import ServingConfig

GROUP = "serving"
SERVING = "serving"
#: The version the export prepared, which ``faiss_index`` completes and publishes.
PENDING = "pending.json"


def _titles(artifacts: ArtifactStore, maps: NodeMaps) -> list[str]:
    catalogue = read_parquet(artifacts.uri("items.parquet"), columns=["item_id", "title"])
    if catalogue["item_id"].tolist() != maps.items:
        raise ValueError(
            f"{artifacts.uri('items.parquet')}: item order differs from node_maps.json; "
            "rematerialize node_maps"
        )
    return catalogue["title"].fillna("").astype(str).tolist()


@asset(group_name=GROUP, deps=[eval_report, node_maps, interaction_splits, "items"], kinds={"numpy"})
def item_embeddings_export(context: AssetExecutionContext, artifacts: ArtifactStore) -> MaterializeResult:
    """The promoted model's user and item vectors with ids, titles, train histories and popularity."""
    report_uri = artifacts.uri("eval", "eval.json")
    release = promoted_release(read_json(report_uri), report_uri)
    candidate, model_uri = release["model"]["name"], release["model"]["uri"]
    users, item_vectors = read_npy(f"{model_uri}/users.npy"), read_npy(f"{model_uri}/items.npy")
    maps = NodeMaps.from_json(read_json(artifacts.uri("graphs", "node_maps.json")))
    if item_vectors.shape[0] != len(maps.items) or users.shape[0] != len(maps.users):
        raise ValueError(
            f"{model_uri}: {users.shape[0]} x {item_vectors.shape[0]} vectors for {len(maps.users)} users x "
            f"{len(maps.items)} items in node_maps.json; rematerialize the model"
        )
    splits_uri = artifacts.uri("splits", "interactions.parquet")
    splits = read_parquet(splits_uri, columns=["user_id", "item_id", "split"])
    history = training_data(splits, maps, splits_uri).train
    version = f"{datetime.now(UTC):%Y%m%dT%H%M%SZ}-{context.run.run_id[:8]}"
    files = export_files(
        item_vectors, users, maps.users, maps.items, _titles(artifacts, maps), history.indptr, history.indices
    )
    root = artifacts.uri(SERVING)
    write_files(root, version, files)
    pending = {"version": version, **release}
    write_json(artifacts.uri(SERVING, PENDING), pending)
    norms = np.linalg.norm(item_vectors, axis=1)
    context.log.info(f"exported {candidate} vectors as serving version {version}")
    return MaterializeResult(
        metadata={
            "version": version,
            "model": candidate,
            "users": len(maps.users),
            "items": len(maps.items),
            "dim": int(item_vectors.shape[1]),
            "item_norm_min_max": [float(norms.min()), float(norms.max())],
            "test_ndcg@20": float(release["eval"]["test"]["ndcg@20"]),
            "uri": version_uri(root, version, ""),
        }
    )


@asset(group_name=GROUP, deps=[item_embeddings_export], kinds={"faiss"})
def faiss_index(
    context: AssetExecutionContext, artifacts: ArtifactStore, serving_config: ServingConfig
) -> MaterializeResult:
    """FAISS index over the exported item vectors (exact or HNSW by size); publishes serving/manifest.json."""
    root = artifacts.uri(SERVING)
    pending: dict[str, Any] = read_json(artifacts.uri(SERVING, PENDING))
    version = pending["version"]
    item_vectors = read_npy(version_uri(root, version, "items.npy"))
    users = read_npy(version_uri(root, version, "users.npy"))
    config = serving_config.index()
    context.log.info(f"building a {config.resolved_kind(len(item_vectors))} index over {item_vectors.shape}")
    built = measure(build_index(item_vectors, config), item_vectors, users, config)
    if built.recall < serving_config.min_recall:
        raise ValueError(
            f"faiss_index: {built.kind} index {built.params} has recall@{built.recall_k} "
            f"{built.recall:.3f} vs exact search, below min_recall {serving_config.min_recall}; raise its "
            "search parameters (RECSYS_INDEX_KIND=flat for exact search). Nothing was published."
        )
    write_files(root, version, {"index.faiss": index_bytes(built)})
    index_info = {
        "kind": built.kind,
        "params": built.params,
        f"recall@{built.recall_k}": round(built.recall, 4),
        "build_seconds": round(built.build_seconds, 3),
        "latency_ms": {k: round(v, 4) for k, v in built.latency_ms.items()},
    }
    manifest = publish(root, version, {**pending, "index": index_info})
    latency = markdown_table(
        ["search", "median ms", "p99 ms"],
        [
            [built.kind, f"{built.latency_ms['median']:.3f}", f"{built.latency_ms['p99']:.3f}"],
            ["exact", f"{built.latency_ms['exact_median']:.3f}", f"{built.latency_ms['exact_p99']:.3f}"],
        ],
    )
    context.log.info(f"published serving version {version}: {built.kind}, recall {built.recall:.3f}")
    return MaterializeResult(
        metadata={
            "version": version,
            "manifest": artifacts.uri(SERVING, MANIFEST),
            "kind": built.kind,
            "params": MetadataValue.json(built.params),
            f"recall@{built.recall_k}_vs_exact": round(built.recall, 4),
            "build_seconds": round(built.build_seconds, 3),
            "single_query_latency": MetadataValue.md(latency),
            "files": MetadataValue.json({k: v["bytes"] for k, v in manifest["files"].items()}),
        }
    )
