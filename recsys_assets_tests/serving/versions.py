"""Serving versions for the API's tests: a small real FAISS index over clustered item vectors,
known users with histories, and the API's settings over them."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np

from recsys_assets.core.catalogue.display import ItemCards
from recsys_assets.core.io.artifacts import SERVING_MANIFEST, Artifacts
from recsys_assets.core.io.sparse import Csr
from recsys_assets.core.serving.export import common_files, publish, vector_files, write_files
from recsys_assets.core.serving.index import build_index, index_bytes
from recsys_assets.settings import Settings
from recsys_assets.settings.serving import IndexConfig, Rollout
from recsys_assets_tests.conftest import make_settings

DIM, CLUSTERS, PER_CLUSTER = 8, 3, 20
N_ITEMS = CLUSTERS * PER_CLUSTER
#: Item i belongs to cluster i // 20. Users u0, u1, u2 like clusters 0, 1, 2.
HISTORIES = {"u0": [0, 1, 2], "u1": [20, 21], "u2": [40, 41, 42, 43], "u3": []}
#: Popularity by train interactions: item 5 is reviewed by everyone in addition.
EXTRA = [5, 5, 5, 5]


def vectors(seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    rng = np.random.default_rng(seed)
    centres = np.eye(DIM)[:CLUSTERS] * 3
    items = centres[np.arange(N_ITEMS) // PER_CLUSTER] + rng.normal(scale=0.3, size=(N_ITEMS, DIM))
    items /= np.linalg.norm(items, axis=1, keepdims=True)
    users = np.vstack([centres[0], centres[1], centres[2], centres[0]]) / 3
    return items.astype(np.float32), users.astype(np.float32)


def publish_version(
    root: Path,
    version: str,
    seed: int = 0,
    rollout: Rollout = "replace",
    share: float = 0.5,
    cards: ItemCards | None = None,
) -> None:
    items, users = vectors(seed)
    indptr, indices = [0], []
    for user, history in HISTORIES.items():
        indices += history + ([5] if user != "u0" else [])
        indptr.append(len(indices))
    files = vector_files(items, users) | common_files(
        list(HISTORIES), [f"I{i:03d}" for i in range(N_ITEMS)],
        [f"item {i} ({version})" for i in range(N_ITEMS)],
        Csr(np.array(indptr), np.array(indices)), np.ones(len(indices)), N_ITEMS,
        cards.categories if cards else None, cards.images if cards else None,
    )  # fmt: skip
    artifacts = Artifacts(str(root))
    write_files(artifacts, version, files)
    write_files(artifacts, version, {"index.faiss": index_bytes(build_index(items, IndexConfig()))})
    publish(artifacts, version, {"model": {"name": "gat"}}, rollout, share)


def manifest_of(root: Path) -> Path:
    return Path(Artifacts(str(root)).uri(SERVING_MANIFEST))


def replace_manifest(root: Path, text: str) -> None:
    """Write the manifest under ``root`` atomically, as publishing does (a watcher never reads
    half of it)."""
    path = manifest_of(root)
    path.parent.mkdir(parents=True, exist_ok=True)
    partial = path.with_suffix(".tmp")
    partial.write_text(text)
    partial.replace(path)


def settings(root: Path, **serving: Any) -> Settings:
    """The API's settings over the version ``publish_version`` writes under ``root``, logging to
    ``root/warehouse.duckdb``; ``serving`` overrides the serving section."""
    defaults = {"manifest_uri": str(manifest_of(root)), "reload_interval_s": 3600.0, "log_sink": "duckdb",
                "log_flush_s": 0.05}  # fmt: skip
    return make_settings(root, serving={**defaults, **serving})


def publish_item_item_version(root: Path, version: str) -> None:
    """An item-item version over the same catalogue: each item votes for the others of its
    cluster, nearer indices more (1 / distance); histories as ``publish_version``'s, the last
    item of each weighted 2."""
    import scipy.sparse as sp

    from recsys_assets.core.io.codecs import npz_bytes
    from recsys_assets.core.io.sparse import csr_arrays

    same = (np.arange(N_ITEMS)[:, None] // PER_CLUSTER) == (np.arange(N_ITEMS)[None, :] // PER_CLUSTER)
    distance = np.abs(np.arange(N_ITEMS)[:, None] - np.arange(N_ITEMS)[None, :])
    weights = np.where(same & (distance > 0), 1.0 / np.maximum(distance, 1), 0.0).astype(np.float32)
    indptr, indices, history_weights = [0], [], []
    for user, history in HISTORIES.items():
        rows = history + ([5] if user != "u0" else [])
        indices += rows
        history_weights += [1.0] * (len(rows) - 1) + [2.0] * bool(rows)
        indptr.append(len(indices))
    files = {"neighbours.npz": npz_bytes(csr_arrays(sp.csr_matrix(weights)))} | common_files(
        list(HISTORIES), [f"I{i:03d}" for i in range(N_ITEMS)],
        [f"item {i} ({version})" for i in range(N_ITEMS)],
        Csr(np.array(indptr), np.array(indices)), np.array(history_weights), N_ITEMS,
    )  # fmt: skip
    artifacts = Artifacts(str(root))
    write_files(artifacts, version, files)
    publish(artifacts, version, {"model": {"name": "ease", "kind": "item_item"}})


def ids_of(body: dict[str, Any]) -> list[int]:
    return [int(i["item_id"][1:]) for i in body["items"]]


def publish_ranker_version(root: Path, version: str) -> tuple[list[str], list[str]]:
    """A two-stage version: the taste data's ranker (``models/ranker_data.py``) beside its
    fallback, the taste retriever's vectors and index. Returns its user and item ids."""
    from recsys_assets_tests.models.ranker_data import trained_ranker

    data, inputs, ranker = trained_ranker(0)
    taste, _ = inputs.models["taste"]
    assert taste.users is not None and taste.items is not None
    users = [f"t{u}" for u in range(data.n_users)]
    items = [f"T{i:03d}" for i in range(data.n_items)]
    files = {**ranker, **vector_files(taste.items, taste.users)} | common_files(
        users, items, [f"taste item {i}" for i in range(data.n_items)], data.train,
        np.ones(len(data.train.indices)), data.n_items,
    )  # fmt: skip
    artifacts = Artifacts(str(root))
    write_files(artifacts, version, files)
    write_files(artifacts, version, {"index.faiss": index_bytes(build_index(taste.items, IndexConfig()))})
    fallback = {"name": "taste", "kind": "embedding"}
    publish(artifacts, version, {"model": {"name": "ranker", "kind": "ranker", "fallback": fallback}})
    return users, items
