"""Publishing a serving version: the promoted model's files, then the manifest that makes the
version visible (``bundle.py`` describes a version; the API loads it)."""

from __future__ import annotations

import json
from collections.abc import Callable
from datetime import UTC, datetime
from typing import Any

import numpy as np

from recsys_assets.core.catalogue.display import catalogue_cards
from recsys_assets.core.graphs.node_maps import NodeMaps
from recsys_assets.core.io.artifacts import (
    EVAL_REPORT,
    ITEMS,
    NODE_MAPS,
    SERVING_FILES,
    SERVING_PENDING,
    SERVING_VERSION_MANIFEST,
    SPLITS,
    Artifacts,
)
from recsys_assets.core.io.codecs import npy_bytes, npz_bytes, read_json, read_npy, save
from recsys_assets.core.io.sparse import Csr, csr_arrays
from recsys_assets.core.io.storage import read_bytes, write_bytes
from recsys_assets.core.models.popularity import popularity_scores
from recsys_assets.core.models.ranker.export import ranker_version_files
from recsys_assets.core.models.recency import ORDER_FREE, Order, history_weights
from recsys_assets.core.models.scoring import Scorable, load_scorable
from recsys_assets.core.models.training_data import TrainingData, load_training_data
from recsys_assets.core.serving.bundle import FILES, RANKER, files_of, retriever_kind, sha256
from recsys_assets.core.serving.index import BuiltIndex, build_index, index_bytes, index_kind, measure
from recsys_assets.core.serving.rollout import release
from recsys_assets.settings.serving import Rollout, ServingSettings


def popular_items(train_items: np.ndarray, n_items: int) -> np.ndarray:
    """Item indices in the popularity baseline's order (train interactions descending, ties
    by index ascending)."""
    return np.argsort(-popularity_scores(train_items, n_items), kind="stable").astype(np.int32)


def common_files(
    user_ids: list[str],
    item_ids: list[str],
    titles: list[str],
    history: Csr,
    history_weights: np.ndarray,
    n_items: int,
    categories: list[str] | None = None,
    images: list[str | None] | None = None,
) -> dict[str, bytes]:
    """The files every version holds: ids and titles (and, given them, the items' categories and
    image URLs, for the explorer), train histories (with the weights the model's use of order
    gives them) and the popularity order."""
    if not (len(item_ids) == len(titles) == n_items and len(user_ids) == len(history.indptr) - 1):
        raise ValueError(
            f"serving bundle: {n_items} items, {len(item_ids)} item ids, {len(titles)} titles; "
            f"{len(user_ids)} user ids, {len(history.indptr) - 1} histories"
        )
    history_arrays: dict[str, np.ndarray] = {
        "indptr": history.indptr.astype(np.int64),
        "indices": history.indices.astype(np.int32),
        "weights": history_weights.astype(np.float32),
    }
    return {
        "ids.json": json.dumps(
            {"users": user_ids, "items": item_ids, "titles": titles}
            | ({"categories": categories} if categories is not None else {})
            | ({"images": images} if images is not None else {})
        ).encode(),
        "history.npz": npz_bytes(history_arrays),
        "popular.npy": npy_bytes(popular_items(history.indices, n_items)),
    }


def model_files(model: Scorable, data: TrainingData, order: Order) -> dict[str, bytes]:
    """The model's own files: vectors (the users' with the chosen readout applied), or
    neighbour lists."""
    if model.neighbours is not None:
        return {"neighbours.npz": npz_bytes(csr_arrays(model.neighbours))}
    assert model.items is not None
    return vector_files(model.items, model.user_vectors(data.train, data.n_items, order))


def vector_files(items: np.ndarray, users: np.ndarray) -> dict[str, bytes]:
    return {
        "items.npy": npy_bytes(np.ascontiguousarray(items, dtype=np.float32)),
        "users.npy": npy_bytes(np.ascontiguousarray(users, dtype=np.float32)),
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
    served = _served(report, candidate, report.get("candidate_reason"))
    if served["kind"] == RANKER:
        fallback = fallback_model(report)
        reason = f"the retriever best on validation ({report['models'][fallback]['val']['ndcg@20']:.4f})"
        served["fallback"] = _served(report, fallback, reason)
    return {
        "model": served,
        "eval": {
            "report_run_id": report.get("run_id"),
            "test": {k: test[k] for k in ("ndcg@20", "recall@20", "ndcg@10", "recall@10") if k in test},
        },
        "code_version": report.get("versions", {}).get("code"),
    }


def _served(report: dict[str, Any], name: str, reason: str | None) -> dict[str, Any]:
    model = report["models"][name]
    return {
        "name": name,
        "kind": model.get("kind", "embedding"),
        "order": model.get("order") or ORDER_FREE.to_dict(),
        "reason": reason,
        "files": model["files"],
        "run_id": model.get("run_id"),
        "config": model.get("config", {}),
    }


def fallback_model(report: dict[str, Any]) -> str:
    """What answers a ranker version's requests that have no candidates to rank (unknown users,
    similar items): the model with vectors or neighbour lists best on validation NDCG@20."""
    models = report["models"]
    retrievers = [name for name, m in models.items() if m.get("kind", "embedding") in FILES]
    if not retrievers:
        raise ValueError(f"a ranker serves with a retriever beside it; none among {sorted(models)}")
    return max(retrievers, key=lambda name: float(models[name]["val"]["ndcg@20"]))


def write_files(artifacts: Artifacts, version: str, files: dict[str, bytes]) -> None:
    for name, data in files.items():
        if name not in SERVING_FILES:
            raise ValueError(
                f"serving version {version}: unknown file {name!r}; expected {list(SERVING_FILES)}"
            )
        write_bytes(artifacts.uri(SERVING_FILES[name], version=version), data)


def publish(
    artifacts: Artifacts,
    version: str,
    manifest: dict[str, Any],
    rollout: Rollout = "replace",
    share: float = 0.1,
) -> dict[str, Any]:
    """Write the version's own manifest, naming every file of ``version`` with its size and
    SHA-256 as stored (read back, so the checksum is of what readers will get), then the
    manifest the API follows (``rollout.release``); called last, so readers see the version
    only when it is complete. Returns the version's own manifest."""
    entries = {}
    for name in files_of(manifest):
        uri = artifacts.uri(SERVING_FILES[name], version=version)
        try:
            data = read_bytes(uri)
        except OSError as error:
            raise ValueError(f"serving version {version}: {uri} is missing: {error}") from error
        # Relative to the manifest's folder: a moved or copied root serves its own files.
        entries[name] = {"path": name, "bytes": len(data), "sha256": sha256(data)}
    own = {
        **{key: value for key, value in manifest.items() if key != "experiment"},
        "version": version,
        "created_at": datetime.now(UTC).isoformat(timespec="seconds"),
        "files": entries,
    }
    save(artifacts.uri(SERVING_VERSION_MANIFEST, version=version), own)
    release(artifacts, own, rollout, share)
    return own


def prepare_version(artifacts: Artifacts, version: str) -> tuple[dict[str, Any], dict[str, Any]]:
    """Export the promoted model (``eval.json``'s candidate, its gate passed) as serving version
    ``version``: every file but the index, and the pending record ``faiss_index`` completes.
    Returns the pending record and a summary of what was exported."""
    report_uri = artifacts.uri(EVAL_REPORT)
    release = promoted_release(read_json(report_uri), report_uri)
    served = release["model"]
    retriever = served.get("fallback", served)
    files = retriever["files"]
    meta = read_json(files["meta_uri"])
    model = load_scorable(files["users_uri"], files["items_uri"], files["neighbours_uri"], meta)
    maps = NodeMaps.from_json(read_json(artifacts.uri(NODE_MAPS)))
    model.check(len(maps.users), len(maps.items), files["meta_uri"].rsplit("/", 1)[0])
    data = load_training_data(artifacts.uri(SPLITS), artifacts.uri(NODE_MAPS))
    order = Order(**retriever["order"])
    weights = history_weights(data.train, order)
    cards = catalogue_cards(artifacts.uri(ITEMS), maps.items)
    exported = {
        **model_files(model, data, order),
        **common_files(
            maps.users,
            maps.items,
            cards.titles,
            data.train,
            weights,
            data.n_items,
            cards.categories,
            cards.images,
        ),
    }
    if served["kind"] == RANKER:
        ranker_meta = read_json(served["files"]["meta_uri"])
        exported |= ranker_version_files(ranker_meta, data, artifacts.uri(SPLITS), artifacts.uri(NODE_MAPS))
    write_files(artifacts, version, exported)
    pending = {"version": version, **release}
    save(artifacts.uri(SERVING_PENDING), pending)
    summary: dict[str, Any] = {
        "kind": served["kind"],
        **({"fallback": retriever["name"]} if served["kind"] == RANKER else {}),
        "users": data.n_users,
        "items": data.n_items,
        "order": order.label(),
        "uri": artifacts.uri(SERVING_FILES["ids.json"], version=version).rsplit("/", 1)[0],
    }
    if model.items is not None:
        norms = np.linalg.norm(model.items, axis=1)
        summary |= {
            "dim": int(model.items.shape[1]),
            "item_norm_min_max": [float(norms.min()), float(norms.max())],
        }
    if model.neighbours is not None:
        summary |= {"neighbour_weights": int(model.neighbours.nnz)}
    return pending, summary


def retriever_name(manifest: dict[str, Any]) -> str:
    model = manifest["model"]
    return str(model.get("fallback", model)["name"])


NO_INDEX = "an item-item model is served from its neighbour lists, which need no vector index"


def publish_pending(
    artifacts: Artifacts, serving: ServingSettings, log: Callable[[str], None] = lambda _: None
) -> tuple[dict[str, Any], BuiltIndex | None]:
    """Build and measure the pending version's index (none for an item-item model), and
    publish the version (by ``serving.rollout``) unless its recall@k against exact search is
    below ``serving.min_index_recall`` (then nothing is published)."""
    config, min_recall = serving.index, serving.min_index_recall
    rollout, share = serving.rollout, serving.treatment_share
    pending: dict[str, Any] = read_json(artifacts.uri(SERVING_PENDING))
    version = pending["version"]
    if retriever_kind(pending) != "embedding":
        log(f"version {version} answers by {retriever_name(pending)}'s neighbour lists: no index to build")
        no_index = {**pending, "index": {"kind": "none", "reason": NO_INDEX}}
        return publish(artifacts, version, no_index, rollout, share), None
    items = read_npy(artifacts.uri(SERVING_FILES["items.npy"], version=version))
    users = read_npy(artifacts.uri(SERVING_FILES["users.npy"], version=version))
    log(f"building a {index_kind(config, len(items))} index over {items.shape}")
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
    return publish(artifacts, version, {**pending, "index": index_info}, rollout, share), built
