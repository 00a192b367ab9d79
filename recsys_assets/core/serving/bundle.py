"""A serving version as the API loads it: the files the manifest names, verified.

A version lives in its own folder (``serving/versions/<version>/``, ``core/io/artifacts.py``)
and holds:

* for an ``embedding`` model: ``items.npy`` / ``users.npy``, its vectors (score = dot
  product; the users' with the model's history readout applied) and ``index.faiss``, the item
  index (``core/serving/index.py``);
* for an ``item_item`` model: ``neighbours.npz``, its neighbour lists (a sparse items x items
  matrix: a user's score is their weighted history times it);
* ``ids.json``: node index -> user id and item id, and each item's display name (and, from
  versions that carry them, its most specific category and image URL, for the explorer);
* ``history.npz``: each user's train items (CSR), never recommended back to them, with the
  weights the model's use of order gives them (item-item models score with them);
* ``popular.npy``: item indices by train popularity, for the fallback;
* for a ``ranker`` (two stages): ``ranker.json``, ``ranker.npz`` and ``ranker.txt``, what the API
  ranks a known user's candidates with (``core/ranking/online.py``), beside the files of its
  ``fallback``, the retriever best on validation, which answers everything else (unknown users
  from their recent items, similar items).

The manifest (``serving/manifest.json``) is written last and names the version, its files
with their sizes and SHA-256, the model and its evaluation summary (``export.publish``). A
reader that follows the manifest therefore sees a version only once all of it is in place, and
``load_bundle`` refuses a version whose files do not match their checksums or each other.

File paths in the manifest are relative to its folder (``versions/<version>/items.npy``), so a
moved or copied artifacts root serves its own files; manifests written before that name
absolute ``uri``s, still read. ``read_manifest`` checks the manifest's structure before anything
uses it, so a malformed one is a ``BundleError`` like any other bad version.
"""

from __future__ import annotations

import hashlib
import io
import json
import re
from dataclasses import dataclass, field
from typing import Any, cast

import numpy as np
import scipy.sparse as sp

from recsys_assets.core.io.artifacts import SERVING_FILES
from recsys_assets.core.io.sparse import Csr, csr_from_arrays
from recsys_assets.core.io.storage import join, read_bytes
from recsys_assets.core.ranking.online import RANKER_FILES, OnlineRanker, load_online_ranker

COMMON_FILES = ("ids.json", "history.npz", "popular.npy")
#: The files of a version, by the kind of model it serves.
FILES = {
    "embedding": ("items.npy", "users.npy", "index.faiss", *COMMON_FILES),
    "item_item": ("neighbours.npz", *COMMON_FILES),
}
assert {f for files in FILES.values() for f in files} | set(RANKER_FILES) == set(SERVING_FILES)
RANKER = "ranker"


def kind_of(manifest: dict[str, Any]) -> str:
    """The kind of model a version serves (versions from before item-item models: embedding)."""
    return str(manifest.get("model", {}).get("kind", "embedding"))


def retriever_kind(manifest: dict[str, Any]) -> str:
    """The kind of the model whose files answer requests by vectors or neighbour lists: the
    served model's own, or a ranker's fallback's."""
    model = manifest.get("model", {})
    if kind_of(manifest) == RANKER:
        return str(model.get("fallback", {}).get("kind", ""))
    return kind_of(manifest)


def files_of(manifest: dict[str, Any]) -> tuple[str, ...]:
    """The files of the version (none for a kind this code does not know)."""
    files = FILES.get(retriever_kind(manifest), ())
    return (*files, *RANKER_FILES) if files and kind_of(manifest) == RANKER else files


def sha256(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


class BundleError(ValueError):
    """A serving version that is incomplete, corrupt or inconsistent."""


class ManifestMissingError(BundleError):
    """No manifest at all: nothing published yet."""


@dataclass
class Bundle:
    """A loaded, verified serving version: vectors and their index, or neighbour lists."""

    version: str
    manifest: dict[str, Any]
    user_ids: list[str]
    item_ids: list[str]
    titles: list[str]
    history_indptr: np.ndarray
    history_items: np.ndarray
    history_weights: np.ndarray
    popular: np.ndarray
    index: Any = None  # faiss.Index (embedding models)
    items: np.ndarray | None = None
    users: np.ndarray | None = None
    neighbours: sp.csr_matrix | None = None
    user_index: dict[str, int] = field(default_factory=dict)
    item_index: dict[str, int] = field(default_factory=dict)
    #: Train interactions per item (the popularity fallback's score).
    popularity: np.ndarray = field(default_factory=lambda: np.zeros(0))
    #: Each item's most specific category and image URL ("" and None in versions without them).
    categories: list[str] = field(default_factory=list)
    images: list[str | None] = field(default_factory=list)
    #: A ranker version's second stage (known users' candidates, features, LightGBM).
    ranker: OnlineRanker | None = None

    def __post_init__(self) -> None:
        self.user_index = {u: i for i, u in enumerate(self.user_ids)}
        self.item_index = {item: i for i, item in enumerate(self.item_ids)}
        self.popularity = np.bincount(self.history_items, minlength=len(self.item_ids))
        self.categories = self.categories or [""] * len(self.item_ids)
        self.images = self.images or [None] * len(self.item_ids)

    def history(self, user: int) -> np.ndarray:
        return self.history_items[self.history_indptr[user] : self.history_indptr[user + 1]]

    def weighted_history(self, user: int) -> tuple[np.ndarray, np.ndarray]:
        span = slice(self.history_indptr[user], self.history_indptr[user + 1])
        return self.history_items[span], self.history_weights[span]


def read_manifest(manifest_uri: str) -> dict[str, Any]:
    """The manifest, its structure checked (``BundleError`` naming the field otherwise)."""
    try:
        manifest = json.loads(read_bytes(manifest_uri))
    except FileNotFoundError as error:
        raise ManifestMissingError(f"{manifest_uri}: no manifest: {error}") from error
    except (OSError, ValueError) as error:
        raise BundleError(f"{manifest_uri}: cannot read the manifest: {error}") from error
    problem = manifest_problem(manifest)
    if problem:
        raise BundleError(f"{manifest_uri}: malformed manifest: {problem}")
    return cast("dict[str, Any]", manifest)


_SHA256 = re.compile(r"[0-9a-f]{64}")


def manifest_problem(manifest: Any) -> str | None:
    """What is wrong with a manifest's structure (None when nothing is)."""
    if not isinstance(manifest, dict):
        return f"expected a JSON object, got {type(manifest).__name__}"
    version = manifest.get("version")
    if not isinstance(version, str | int) or isinstance(version, bool) or str(version) == "":
        return f"'version' must be a non-empty string, got {version!r}"
    files = manifest.get("files")
    if not isinstance(files, dict):
        return f"'files' must be an object of file entries, got {type(files).__name__}"
    problems = (_entry_problem(str(name), entry) for name, entry in files.items())
    return next((problem for problem in problems if problem), None)


def _entry_problem(name: str, entry: Any) -> str | None:
    if not isinstance(entry, dict):
        return f"files.{name} must be an object, got {type(entry).__name__}"
    if not isinstance(entry.get("sha256"), str) or not _SHA256.fullmatch(entry["sha256"]):
        return f"files.{name} has no valid 'sha256' (64 hex digits)"
    path, uri = entry.get("path"), entry.get("uri")
    if path is None and isinstance(uri, str) and uri:
        return None  # a manifest from before relative paths
    if not isinstance(path, str) or not path or path.startswith("/") or "://" in path:
        return f"files.{name} needs a 'path' relative to the manifest, got {path!r}"
    if ".." in path.split("/"):
        return f"files.{name}: path {path!r} leaves the manifest's folder"
    return None


#: The version folders, beside the followed manifest; each holds its version's own manifest.
VERSIONS_FOLDER, VERSION_MANIFEST = "versions", "manifest.json"


def version_manifest_uri(manifest_uri: str, version: str) -> str:
    """Where a version's own manifest is, beside the followed manifest ``manifest_uri``."""
    return join(manifest_uri.rsplit("/", 1)[0], VERSIONS_FOLDER, version, VERSION_MANIFEST)


def file_uri(manifest: dict[str, Any], name: str, manifest_uri: str) -> str:
    """Where the manifest's file ``name`` is: its path under the manifest's folder."""
    entry = manifest["files"].get(name)
    if entry is None:
        raise BundleError(f"{manifest_uri}: version {manifest['version']} lists no {name}")
    if "path" not in entry:
        return str(entry["uri"])
    return join(manifest_uri.rsplit("/", 1)[0], entry["path"])


def read_version_file(manifest: dict[str, Any], name: str, manifest_uri: str) -> bytes:
    """One file of the manifest's version, its checksum verified (``BundleError`` otherwise)."""
    uri = file_uri(manifest, name, manifest_uri)
    try:
        data = read_bytes(uri)
    except OSError as error:
        raise BundleError(f"{uri}: cannot read: {error}") from error
    if sha256(data) != manifest["files"][name]["sha256"]:
        raise BundleError(f"{uri}: checksum mismatch (corrupt or replaced after publishing)")
    return data


def verify_files(manifest: dict[str, Any], manifest_uri: str) -> None:
    """Re-read every file of the manifest's version against its checksum (``BundleError`` on
    the first that fails)."""
    for name in files_of(manifest):
        read_version_file(manifest, name, manifest_uri)


def _array(data: bytes) -> np.ndarray:
    return np.load(io.BytesIO(data), allow_pickle=False)


def _vectors(data: dict[str, bytes], n_items: int, n_users: int) -> tuple[dict[str, Any], list[str]]:
    import faiss

    items, users = _array(data["items.npy"]), _array(data["users.npy"])
    index = faiss.deserialize_index(np.frombuffer(data["index.faiss"], dtype=np.uint8))
    problems = []
    if index.ntotal != len(items) or index.d != items.shape[1]:
        problems.append(f"index holds {index.ntotal} x {index.d}, items.npy {items.shape}")
    if users.ndim != 2 or users.shape[1] != items.shape[1]:
        problems.append(f"users.npy {users.shape} vs items.npy {items.shape}")
    if len(items) != n_items or len(users) != n_users:
        problems.append(
            f"ids.json names {n_items} items x {n_users} users for vectors {items.shape} x {users.shape}"
        )
    return {"items": items, "users": users, "index": index}, problems


def _neighbour_lists(data: dict[str, bytes], n_items: int, source: str) -> tuple[dict[str, Any], list[str]]:
    with np.load(io.BytesIO(data["neighbours.npz"]), allow_pickle=False) as archive:
        neighbours = csr_from_arrays({name: archive[name] for name in archive.files}, source)
    problems = []
    if neighbours.shape != (n_items, n_items):
        problems.append(f"neighbours.npz is {list(neighbours.shape)} for {n_items} items")
    return {"neighbours": neighbours}, problems


def load_bundle(manifest_uri: str) -> Bundle:
    """Read and verify the version the manifest names; raise ``BundleError`` naming the file
    and the problem when anything is missing, corrupt or inconsistent."""
    manifest = read_manifest(manifest_uri)
    version = str(manifest["version"])
    kind = retriever_kind(manifest)
    if kind not in FILES:
        served = kind_of(manifest) + (" with a fallback" if kind_of(manifest) == RANKER else "")
        raise BundleError(
            f"{manifest_uri}: version {version} serves an unknown kind of model {served} {kind!r}"
        )
    data = {name: read_version_file(manifest, name, manifest_uri) for name in files_of(manifest)}
    problems: list[str] = []
    try:
        ids = json.loads(data["ids.json"])
        item_ids, user_ids = ids.get("items", []), ids.get("users", [])
        with np.load(io.BytesIO(data["history.npz"]), allow_pickle=False) as history:
            indptr, history_items = history["indptr"], history["indices"]
            weights = (
                history["weights"] if "weights" in history.files else np.ones(len(history_items), np.float32)
            )
        popular = _array(data["popular.npy"])
        if kind == "embedding":
            model, problems = _vectors(data, len(item_ids), len(user_ids))
        else:
            model, problems = _neighbour_lists(data, len(item_ids), f"{manifest_uri}: neighbours.npz")
        if kind_of(manifest) == RANKER:
            model["ranker"] = load_online_ranker(
                data, Csr(indptr, history_items), len(user_ids), f"{manifest_uri}: version {version}"
            )
    except Exception as error:  # any parse failure means a corrupt version; say which
        raise BundleError(f"{manifest_uri}: version {version} does not parse: {error}") from error
    for key in ("titles", "categories", "images"):
        if (key == "titles" or key in ids) and len(ids.get(key, [])) != len(item_ids):
            problems.append(f"ids.json names {len(item_ids)} items and {len(ids.get(key, []))} {key}")
    if len(indptr) != len(user_ids) + 1 or len(weights) != len(history_items):
        problems.append(f"history.npz holds {len(indptr) - 1} users for {len(user_ids)} in ids.json")
    if len(popular) != len(item_ids):
        problems.append(f"popular.npy ranks {len(popular)} items of {len(item_ids)}")
    if problems:
        raise BundleError(f"{manifest_uri}: version {version} is inconsistent: " + "; ".join(problems))
    return Bundle(
        version, manifest, user_ids, item_ids, ids["titles"], indptr, history_items, weights, popular,
        categories=ids.get("categories", []), images=ids.get("images", []), **model,
    )  # fmt: skip
