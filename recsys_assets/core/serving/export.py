"""Publishing a serving version: the promoted model's files, then the manifest that makes the
version visible (``bundle.py`` describes a version; the API loads it)."""

from __future__ import annotations

import io
import json
from collections.abc import Callable
from datetime import UTC, datetime
from typing import Any

import numpy as np

from recsys_assets.core.graphs.node_maps import NodeMaps
from recsys_assets.core.io.artifacts import (
    EVAL_REPORT,
    ITEMS,
    NODE_MAPS,
    SERVING_FILES,
    SERVING_MANIFEST,
    SERVING_PENDING,
    SPLITS,
    Artifacts,
)
from recsys_assets.core.io.codecs import npy_bytes, read_json, read_npy, read_parquet, save
from recsys_assets.core.io.storage import read_bytes, write_bytes
from recsys_assets.core.models.popularity import popularity_scores
from recsys_assets.core.models.training_data import load_training_data
from recsys_assets.core.serving.bundle import sha256
from recsys_assets.core.serving.index import BuiltIndex, build_index, index_bytes, measure
from recsys_assets.settings.serving import IndexConfig


def popular_items(train_items: np.ndarray, n_items: int) -> np.ndarray:
    """Item indices in the popularity baseline's order (train interactions descending, ties
    by index ascending)."""
    return np.argsort(-popularity_scores(train_items, n_items), kind="stable").astype(np.int32)


def export_files(
    items: np.ndarray,
    users: np.ndarray,
    user_ids: list[str],
    item_ids: list[str],
    titles: list[str],
    history_indptr: np.ndarray,
    history_items: np.ndarray,
) -> dict[str, bytes]:
    """The bytes of every file of a version but the index (see the module docstring)."""
    if not (
        len(items) == len(item_ids) == len(titles) and len(users) == len(user_ids) == len(history_indptr) - 1
    ):
        raise ValueError(
            f"serving bundle: {len(items)} item vectors, {len(item_ids)} item ids, {len(titles)} titles; "
            f"{len(users)} user vectors, {len(user_ids)} user ids, {len(history_indptr) - 1} histories"
        )
    history = io.BytesIO()
    np.savez(history, indptr=history_indptr.astype(np.int64), indices=history_items.astype(np.int32))
    return {
        "items.npy": npy_bytes(np.ascontiguousarray(items, dtype=np.float32)),
        "users.npy": npy_bytes(np.ascontiguousarray(users, dtype=np.float32)),
        "ids.json": json.dumps({"users": user_ids, "items": item_ids, "titles": titles}).encode(),
        "history.npz": history.getvalue(),
        "popular.npy": npy_bytes(popular_items(history_items, len(items))),
    }


def promoted_release(report: dict[str, Any], report_uri: str) -> dict[str, Any]:
    """What a serving version records of the model it serves, from ``eval.json``: the
    candidate, its run and config, its test metrics, the code version. Refuses a report whose
    promotion gate failed (the blocking check stops the export in the run that evaluated;
    this covers a later run)."""
    promotion = report.get("promotion", {})
    if not promotion.get("passed", False):
        raise ValueError(
            f"{report_uri}: the promotion gate failed "
            f"({promotion.get('description', 'no verdict recorded')}); nothing is exported"
        )
    candidate = report["candidate"]
    model = report["models"][candidate]
    test = model["test"]
    return {
        "model": {
            "name": candidate,
            "files": model["files"],
            "run_id": model.get("run_id"),
            "config": model.get("config", {}),
        },
        "eval": {
            "report_run_id": report.get("run_id"),
            "test": {k: test[k] for k in ("ndcg@20", "recall@20", "ndcg@10", "recall@10") if k in test},
        },
        "code_version": report.get("versions", {}).get("code"),
    }


def write_files(artifacts: Artifacts, version: str, files: dict[str, bytes]) -> None:
    for name, data in files.items():
        if name not in SERVING_FILES:
            raise ValueError(
                f"serving version {version}: unknown file {name!r}; expected {list(SERVING_FILES)}"
            )
        write_bytes(artifacts.uri(SERVING_FILES[name], version=version), data)


def publish(artifacts: Artifacts, version: str, manifest: dict[str, Any]) -> dict[str, Any]:
    """Write the manifest naming every file of ``version`` with its size and SHA-256 as stored
    (read back, so the checksum is of what readers will get); called last, so readers see the
    version only when it is complete."""
    entries = {}
    for name, artifact in SERVING_FILES.items():
        uri = artifacts.uri(artifact, version=version)
        try:
            data = read_bytes(uri)
        except OSError as error:
            raise ValueError(f"serving version {version}: {uri} is missing: {error}") from error
        entries[name] = {"uri": uri, "bytes": len(data), "sha256": sha256(data)}
    manifest = {
        **manifest,
        "version": version,
        "created_at": datetime.now(UTC).isoformat(timespec="seconds"),
        "files": entries,
    }
    save(artifacts.uri(SERVING_MANIFEST), manifest)
    return manifest


def item_titles(items_uri: str, maps: NodeMaps) -> list[str]:
    """Each item node's title ("" when it has none), checked against the node order."""
    catalogue = read_parquet(items_uri, columns=["item_id", "title"])
    if catalogue["item_id"].tolist() != maps.items:
        raise ValueError(f"{items_uri}: item order differs from node_maps.json; rematerialize node_maps")
    return catalogue["title"].fillna("").astype(str).tolist()


def prepare_version(artifacts: Artifacts, version: str) -> tuple[dict[str, Any], dict[str, Any]]:
    """Export the promoted model (``eval.json``'s candidate, its gate passed) as serving version
    ``version``: every file but the index, and the pending record ``faiss_index`` completes.
    Returns the pending record and a summary of what was exported (sizes, item vector norms)."""
    report_uri = artifacts.uri(EVAL_REPORT)
    release = promoted_release(read_json(report_uri), report_uri)
    files = release["model"]["files"]
    users, items = read_npy(files["users_uri"]), read_npy(files["items_uri"])
    maps = NodeMaps.from_json(read_json(artifacts.uri(NODE_MAPS)))
    if items.shape[0] != len(maps.items) or users.shape[0] != len(maps.users):
        raise ValueError(
            f"{files['users_uri']}: {users.shape[0]} x {items.shape[0]} vectors for {len(maps.users)} users "
            f"x {len(maps.items)} items in node_maps.json; rematerialize the model"
        )
    history = load_training_data(artifacts.uri(SPLITS), artifacts.uri(NODE_MAPS)).train
    titles = item_titles(artifacts.uri(ITEMS), maps)
    write_files(
        artifacts,
        version,
        export_files(items, users, maps.users, maps.items, titles, history.indptr, history.indices),
    )
    pending = {"version": version, **release}
    save(artifacts.uri(SERVING_PENDING), pending)
    norms = np.linalg.norm(items, axis=1)
    summary = {
        "users": len(users),
        "items": len(items),
        "dim": int(items.shape[1]),
        "item_norm_min_max": [float(norms.min()), float(norms.max())],
        "uri": artifacts.uri(SERVING_FILES["items.npy"], version=version).rsplit("/", 1)[0],
    }
    return pending, summary


def publish_pending(
    artifacts: Artifacts, config: IndexConfig, min_recall: float, log: Callable[[str], None] = lambda _: None
) -> tuple[dict[str, Any], BuiltIndex]:
    """Build and measure the pending version's index, and publish the version unless its
    recall@k against exact search is below ``min_recall`` (then nothing is published)."""
    pending: dict[str, Any] = read_json(artifacts.uri(SERVING_PENDING))
    version = pending["version"]
    items = read_npy(artifacts.uri(SERVING_FILES["items.npy"], version=version))
    users = read_npy(artifacts.uri(SERVING_FILES["users.npy"], version=version))
    log(f"building a {config.resolved_kind(len(items))} index over {items.shape}")
    built = measure(build_index(items, config), items, users, config)
    if built.recall < min_recall:
        raise ValueError(
            f"faiss_index: {built.kind} index {built.params} has recall@{built.recall_k} "
            f"{built.recall:.3f} vs exact search, below min_index_recall {min_recall}; raise its "
            "search parameters (RECSYS_INDEX_KIND=flat for exact search). Nothing was published."
        )
    write_files(artifacts, version, {"index.faiss": index_bytes(built)})
    index_info = {
        "kind": built.kind,
        "params": built.params,
        f"recall@{built.recall_k}": round(built.recall, 4),
        "build_seconds": round(built.build_seconds, 3),
        "latency_ms": {k: round(v, 4) for k, v in built.latency_ms.items()},
    }
    return publish(artifacts, version, {**pending, "index": index_info}), built
