"""A serving version as the API loads it: the files the manifest names, verified.

A version lives in its own folder (``serving/versions/<version>/``, ``core/io/artifacts.py``)
and holds:

* ``items.npy`` / ``users.npy``: the promoted model's vectors (score = dot product);
* ``index.faiss``: the item index (``core/serving/index.py``);
* ``ids.json``: node index -> user id and item id (and item titles);
* ``history.npz``: each user's train items (CSR), never recommended back to them;
* ``popular.npy``: item indices by train popularity, for the fallback.

The manifest (``serving/manifest.json``) is written last and names the version, its files
with their sizes and SHA-256, the model and its evaluation summary (``export.publish``). A
reader that follows the manifest therefore sees a version only once all of it is in place, and
``load_bundle`` refuses a version whose files do not match their checksums or each other.
"""

from __future__ import annotations

import hashlib
import io
import json
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from recsys_assets.core.io.artifacts import SERVING_FILES
from recsys_assets.core.io.storage import read_bytes

FILES = tuple(SERVING_FILES)


def sha256(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


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
    if sha256(data) != entry["sha256"]:
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
