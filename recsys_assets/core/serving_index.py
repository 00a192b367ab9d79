"""The serving bundle: a FAISS index over the promoted model's item vectors, what the API needs
beside it, and the manifest that publishes a complete version.

A version lives in its own folder (``serving/<version>/``) and holds:

* ``items.npy`` / ``users.npy``: the promoted model's vectors (score = dot product);
* ``index.faiss``: the item index (exact inner product below ``IndexConfig.exact_below``
  items, else HNSW or IVF), with its recall@k against exact search measured at build time;
* ``ids.json``: node index -> user id and item id (and item titles);
* ``history.npz``: each user's train items (CSR), never recommended back to them;
* ``popular.npy``: item indices by train popularity, for the fallback.

The manifest (``serving/manifest.json``) is written last and names the version, its files
with their sizes and SHA-256, the model and its evaluation summary. A reader that follows the
manifest therefore sees a version only once all of it is in place, and ``load_bundle``
refuses a version whose files do not match their checksums or each other.
"""

from __future__ import annotations

import hashlib
import io
import json
import time
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any, Literal

import numpy as np

from recsys_assets.core.artifacts import join, read_bytes, write_bytes, write_json
from recsys_assets.core.popularity import popularity_scores

MANIFEST = "manifest.json"
FILES = ("items.npy", "users.npy", "index.faiss", "ids.json", "history.npz", "popular.npy")


@dataclass(frozen=True)
class IndexConfig:
    """How the item index is built; ``kind="auto"`` picks exact search for small catalogues."""

    kind: Literal["auto", "flat", "hnsw", "ivf"] = "auto"
    #: With ``auto``: exact (``IndexFlatIP``) below this many items, HNSW from there on.
    exact_below: int = 50_000
    hnsw_m: int = 32
    hnsw_ef_construction: int = 80
    hnsw_ef_search: int = 128
    #: IVF lists (0: 4 * sqrt(items), at most items // 39 so each list trains on enough
    #: points) and lists probed per query.
    ivf_nlist: int = 0
    ivf_nprobe: int = 32
    #: Queries (a seeded sample of user vectors) used to measure recall@k against exact search.
    recall_queries: int = 1_000
    recall_k: int = 20
    seed: int = 0

    def __post_init__(self) -> None:
        if self.kind not in ("auto", "flat", "hnsw", "ivf"):
            raise ValueError(f"index kind {self.kind!r}: expected auto, flat, hnsw or ivf")
        for name in ("hnsw_m", "hnsw_ef_construction", "hnsw_ef_search", "ivf_nprobe", "recall_k"):
            if getattr(self, name) < 1:
                raise ValueError(f"index {name} must be >= 1, got {getattr(self, name)}")

    def resolved_kind(self, n_items: int) -> str:
        if self.kind != "auto":
            return self.kind
        return "flat" if n_items < self.exact_below else "hnsw"


@dataclass
class BuiltIndex:
    index: Any  # faiss.Index
    kind: str
    params: dict[str, Any]
    build_seconds: float
    recall: float = 1.0
    recall_k: int = 20
    latency_ms: dict[str, float] = field(default_factory=dict)


def build_index(items: np.ndarray, config: IndexConfig) -> BuiltIndex:
    """An inner-product index over ``items`` (float32, one row per item)."""
    import faiss

    items = np.ascontiguousarray(items, dtype=np.float32)
    n, dim = items.shape
    kind = config.resolved_kind(n)
    start = time.perf_counter()
    params: dict[str, Any] = {"dim": dim, "items": n}
    index: Any
    if kind == "flat":
        index = faiss.IndexFlatIP(dim)
    elif kind == "hnsw":
        index = faiss.IndexHNSWFlat(dim, config.hnsw_m, faiss.METRIC_INNER_PRODUCT)
        index.hnsw.efConstruction = config.hnsw_ef_construction
        index.hnsw.efSearch = config.hnsw_ef_search
        params |= {"m": config.hnsw_m, "ef_construction": config.hnsw_ef_construction,
                   "ef_search": config.hnsw_ef_search}  # fmt: skip
    else:
        nlist = config.ivf_nlist or max(1, min(n // 39, int(4 * np.sqrt(n))))
        index = faiss.IndexIVFFlat(faiss.IndexFlatIP(dim), dim, nlist, faiss.METRIC_INNER_PRODUCT)
        index.train(items)
        index.nprobe = min(config.ivf_nprobe, nlist)
        params |= {"nlist": nlist, "nprobe": index.nprobe}
    index.add(items)
    return BuiltIndex(index, kind, params, time.perf_counter() - start, recall_k=config.recall_k)


def measure(built: BuiltIndex, items: np.ndarray, queries: np.ndarray, config: IndexConfig) -> BuiltIndex:
    """Recall@k of ``built`` against exact search over a seeded sample of ``queries``, and the
    single-query latency (median and p99 ms) of both; stored on ``built``."""
    import faiss

    rng = np.random.default_rng(config.seed)
    take = min(config.recall_queries, len(queries))
    sample = np.ascontiguousarray(queries[rng.choice(len(queries), take, replace=False)], dtype=np.float32)
    k = min(config.recall_k, len(items))
    exact = faiss.IndexFlatIP(items.shape[1])
    exact.add(np.ascontiguousarray(items, dtype=np.float32))
    _, truth = exact.search(sample, k)
    _, found = built.index.search(sample, k)
    hits = sum(len(np.intersect1d(t, f[f >= 0])) for t, f in zip(truth, found, strict=True))
    built.recall = hits / (take * k) if take else 1.0
    built.recall_k = k

    def latency(index: Any) -> tuple[float, float]:
        times = []
        for row in sample[:200]:
            start = time.perf_counter()
            index.search(row[None, :], k)
            times.append((time.perf_counter() - start) * 1000)
        return float(np.median(times)), float(np.percentile(times, 99))

    faiss.omp_set_num_threads(1)  # one query at a time, as a request searches
    try:
        built.latency_ms = dict(zip(("median", "p99"), latency(built.index), strict=True))
        built.latency_ms |= dict(zip(("exact_median", "exact_p99"), latency(exact), strict=True))
    finally:
        faiss.omp_set_num_threads(0)
    return built


def index_bytes(built: BuiltIndex) -> bytes:
    import faiss

    return bytes(faiss.serialize_index(built.index).tobytes())


def popular_items(train_items: np.ndarray, n_items: int) -> np.ndarray:
    """Item indices in the popularity baseline's order (train interactions descending, ties
    by index ascending)."""
    return np.argsort(-popularity_scores(train_items, n_items), kind="stable").astype(np.int32)


def _sha256(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def _npy(array: np.ndarray) -> bytes:
    buffer = io.BytesIO()
    np.save(buffer, array, allow_pickle=False)
    return buffer.getvalue()


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
        "items.npy": _npy(np.ascontiguousarray(items, dtype=np.float32)),
        "users.npy": _npy(np.ascontiguousarray(users, dtype=np.float32)),
        "ids.json": json.dumps({"users": user_ids, "items": item_ids, "titles": titles}).encode(),
        "history.npz": history.getvalue(),
        "popular.npy": _npy(popular_items(history_items, len(items))),
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
            "uri": model["uri"],
            "run_id": model.get("run_id"),
            "config": model.get("config", {}),
        },
        "eval": {
            "report_run_id": report.get("run_id"),
            "test": {k: test[k] for k in ("ndcg@20", "recall@20", "ndcg@10", "recall@10") if k in test},
        },
        "code_version": report.get("versions", {}).get("code"),
    }


def version_uri(root: str, version: str, name: str) -> str:
    return join(root, "versions", version, name)


def write_files(root: str, version: str, files: dict[str, bytes]) -> None:
    for name, data in files.items():
        if name not in FILES:
            raise ValueError(f"serving version {version}: unknown file {name!r}; expected {list(FILES)}")
        write_bytes(version_uri(root, version, name), data)


def publish(root: str, version: str, manifest: dict[str, Any]) -> dict[str, Any]:
    """Write ``root/manifest.json`` naming every file of ``version`` with its size and SHA-256
    as stored (read back, so the checksum is of what readers will get); called last, so
    readers see the version only when it is complete."""
    entries = {}
    for name in FILES:
        uri = version_uri(root, version, name)
        try:
            data = read_bytes(uri)
        except OSError as error:
            raise ValueError(f"serving version {version}: {uri} is missing: {error}") from error
        entries[name] = {"uri": uri, "bytes": len(data), "sha256": _sha256(data)}
    manifest = {
        **manifest,
        "version": version,
        "created_at": datetime.now(UTC).isoformat(timespec="seconds"),
        "files": entries,
    }
    write_json(join(root, MANIFEST), manifest)
    return manifest


class BundleError(ValueError):
    """A serving version that is incomplete, corrupt or inconsistent."""


@dataclass
class Bundle:
    """A loaded, verified serving version."""

    version: str
    manifest: dict[str, Any]
    index: Any  # faiss.Index
    items: np.ndarray
    users: np.ndarray
    user_ids: list[str]
    item_ids: list[str]
    titles: list[str]
    history_indptr: np.ndarray
    history_items: np.ndarray
    popular: np.ndarray
    user_index: dict[str, int] = field(default_factory=dict)
    item_index: dict[str, int] = field(default_factory=dict)
    #: Train interactions per item (the popularity fallback's score).
    popularity: np.ndarray = field(default_factory=lambda: np.zeros(0))

    def __post_init__(self) -> None:
        self.user_index = {u: i for i, u in enumerate(self.user_ids)}
        self.item_index = {item: i for i, item in enumerate(self.item_ids)}
        self.popularity = np.bincount(self.history_items, minlength=len(self.item_ids))

    def history(self, user: int) -> np.ndarray:
        return self.history_items[self.history_indptr[user] : self.history_indptr[user + 1]]


def read_manifest(manifest_uri: str) -> dict[str, Any]:
    try:
        manifest: dict[str, Any] = json.loads(read_bytes(manifest_uri))
    except (OSError, ValueError) as error:
        raise BundleError(f"{manifest_uri}: cannot read the manifest: {error}") from error
    for key in ("version", "files"):
        if key not in manifest:
            raise BundleError(f"{manifest_uri}: manifest has no {key!r}")
    return manifest


def read_version_file(manifest: dict[str, Any], name: str, manifest_uri: str) -> bytes:
    """One file of the manifest's version, its checksum verified (``BundleError`` otherwise)."""
    entry = manifest["files"].get(name)
    if entry is None:
        raise BundleError(f"{manifest_uri}: version {manifest['version']} lists no {name}")
    try:
        data = read_bytes(entry["uri"])
    except OSError as error:
        raise BundleError(f"{entry['uri']}: cannot read: {error}") from error
    if _sha256(data) != entry["sha256"]:
        raise BundleError(f"{entry['uri']}: checksum mismatch (corrupt or replaced after publishing)")
    return data


def load_bundle(manifest_uri: str) -> Bundle:
    """Read and verify the version the manifest names; raise ``BundleError`` naming the file
    and the problem when anything is missing, corrupt or inconsistent."""
    import faiss

    manifest = read_manifest(manifest_uri)
    version = str(manifest["version"])
    data = {name: read_version_file(manifest, name, manifest_uri) for name in FILES}
    try:
        items = np.load(io.BytesIO(data["items.npy"]), allow_pickle=False)
        users = np.load(io.BytesIO(data["users.npy"]), allow_pickle=False)
        index = faiss.deserialize_index(np.frombuffer(data["index.faiss"], dtype=np.uint8))
        ids = json.loads(data["ids.json"])
        with np.load(io.BytesIO(data["history.npz"]), allow_pickle=False) as history:
            indptr, history_items = history["indptr"], history["indices"]
        popular = np.load(io.BytesIO(data["popular.npy"]), allow_pickle=False)
    except Exception as error:  # any parse failure means a corrupt version; say which
        raise BundleError(f"{manifest_uri}: version {version} does not parse: {error}") from error
    problems = []
    if index.ntotal != len(items) or index.d != items.shape[1]:
        problems.append(f"index holds {index.ntotal} x {index.d}, items.npy {items.shape}")
    if users.ndim != 2 or users.shape[1] != items.shape[1]:
        problems.append(f"users.npy {users.shape} vs items.npy {items.shape}")
    if len(ids.get("items", [])) != len(items) or len(ids.get("titles", [])) != len(items):
        problems.append(f"ids.json names {len(ids.get('items', []))} items for {len(items)} vectors")
    if len(ids.get("users", [])) != len(users) or len(indptr) != len(users) + 1:
        problems.append(f"ids.json names {len(ids.get('users', []))} users for {len(users)} vectors")
    if len(popular) != len(items):
        problems.append(f"popular.npy ranks {len(popular)} items of {len(items)}")
    if problems:
        raise BundleError(f"{manifest_uri}: version {version} is inconsistent: " + "; ".join(problems))
    return Bundle(
        version, manifest, index, items, users, ids["users"], ids["items"], ids["titles"], indptr,
        history_items, popular,
    )  # fmt: skip
