"""Serving versions: publishing, loading with everything checked, refusing broken versions."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

from recsys_assets.core.io.artifacts import SERVING_FILES, SERVING_MANIFEST, Artifacts
from recsys_assets.core.io.sparse import Csr
from recsys_assets.core.serving.bundle import BundleError, ManifestMissingError, load_bundle
from recsys_assets.core.serving.export import common_files, popular_items, publish, vector_files, write_files
from recsys_assets.core.serving.index import build_index, index_bytes
from recsys_assets.settings.serving import IndexConfig
from recsys_assets_tests.serving.test_index import _clustered


def test_popular_items_break_ties_by_index() -> None:
    assert popular_items(np.array([2, 2, 0, 1, 1, 3]), 5).tolist() == [1, 2, 0, 3, 4]


def _files(root: Path, name: str, version: str = "v1") -> Path:
    return Path(Artifacts(str(root)).uri(SERVING_FILES[name], version=version))


def _manifest(root: Path) -> str:
    return Artifacts(str(root)).uri(SERVING_MANIFEST)


def _publish(root: Path, version: str = "v1", n_items: int = 30) -> dict:
    items = _clustered(n_items, dim=8)
    users = _clustered(4, dim=8, seed=2)
    files = vector_files(items, users) | common_files(
        [f"u{i}" for i in range(4)], [f"i{i}" for i in range(n_items)],
        [f"title {i}" for i in range(n_items)],
        Csr(np.array([0, 2, 3, 3, 5]), np.array([0, 1, 2, 3, 4])), np.ones(5), n_items,
    )  # fmt: skip
    artifacts = Artifacts(str(root))
    write_files(artifacts, version, files)
    write_files(artifacts, version, {"index.faiss": index_bytes(build_index(items, IndexConfig()))})
    return publish(artifacts, version, {"model": {"name": "gat"}})


def test_a_published_version_loads_with_everything_checked(tmp_path: Path) -> None:
    manifest = _publish(tmp_path)
    assert manifest["version"] == "v1" and set(manifest["files"]) == {
        "items.npy", "users.npy", "index.faiss", "ids.json", "history.npz", "popular.npy",
    }  # fmt: skip
    bundle = load_bundle(_manifest(tmp_path))
    assert bundle.version == "v1" and bundle.index.ntotal == 30 and bundle.items.shape == (30, 8)
    assert bundle.user_index["u3"] == 3 and bundle.item_index["i7"] == 7 and bundle.titles[7] == "title 7"
    assert bundle.history(0).tolist() == [0, 1] and bundle.history(2).tolist() == []
    assert bundle.popular[:5].tolist() == [0, 1, 2, 3, 4]


def test_publish_refuses_a_version_with_a_missing_file(tmp_path: Path) -> None:
    _publish(tmp_path)
    _files(tmp_path, "index.faiss").unlink()
    with pytest.raises(ValueError, match=r"serving version v1: .*index.faiss is missing"):
        publish(Artifacts(str(tmp_path)), "v1", {})


def test_a_corrupt_file_is_refused_naming_it(tmp_path: Path) -> None:
    _publish(tmp_path)
    path = _files(tmp_path, "items.npy")
    path.write_bytes(path.read_bytes()[:-8])
    with pytest.raises(BundleError, match=r"items.npy: checksum mismatch"):
        load_bundle(_manifest(tmp_path))


def test_an_unreadable_or_inconsistent_version_is_refused(tmp_path: Path) -> None:
    with pytest.raises(ManifestMissingError, match=r"manifest\.json: no manifest"):
        load_bundle(_manifest(tmp_path))
    Path(_manifest(tmp_path)).parent.mkdir(parents=True)
    Path(_manifest(tmp_path)).write_text(json.dumps({"files": {}}))
    with pytest.raises(
        BundleError, match="malformed manifest: 'version' must be a non-empty string, got None"
    ):
        load_bundle(_manifest(tmp_path))
    # Files that match their checksums but not each other: an index over 20 items for 30 vectors.
    _publish(tmp_path, "v1", n_items=30)
    other = tmp_path / "other"
    _publish(other, "v2", n_items=20)
    _files(tmp_path, "index.faiss").write_bytes(_files(other, "index.faiss", "v2").read_bytes())
    publish(Artifacts(str(tmp_path)), "v1", {})
    inconsistent = r"version v1 is inconsistent: index holds 20 x 8, items.npy \(30, 8\)"
    with pytest.raises(BundleError, match=inconsistent):
        load_bundle(_manifest(tmp_path))
    # Bytes that are not an index at all.
    _files(tmp_path, "index.faiss").write_bytes(b"garbage")
    publish(Artifacts(str(tmp_path)), "v1", {})
    with pytest.raises(BundleError, match="version v1 does not parse"):
        load_bundle(_manifest(tmp_path))


def _publish_item_item(root: Path, n_items: int = 6, shape: int | None = None) -> dict:
    import scipy.sparse as sp

    from recsys_assets.core.io.codecs import npz_bytes
    from recsys_assets.core.io.sparse import csr_arrays

    size = shape or n_items
    neighbours = sp.csr_matrix(np.eye(size, k=1, dtype=np.float32))
    files = {"neighbours.npz": npz_bytes(csr_arrays(neighbours))} | common_files(
        ["u0", "u1"], [f"i{i}" for i in range(n_items)], [f"title {i}" for i in range(n_items)],
        Csr(np.array([0, 2, 3]), np.array([0, 1, 4])), np.array([0.5, 1.0, 1.0]), n_items,
    )  # fmt: skip
    artifacts = Artifacts(str(root))
    write_files(artifacts, "v1", files)
    return publish(artifacts, "v1", {"model": {"name": "ease", "kind": "item_item"}})


def test_an_item_item_version_holds_neighbour_lists_and_weighted_histories(tmp_path: Path) -> None:
    manifest = _publish_item_item(tmp_path)
    assert set(manifest["files"]) == {"neighbours.npz", "ids.json", "history.npz", "popular.npy"}
    bundle = load_bundle(_manifest(tmp_path))
    assert bundle.index is None and bundle.items is None and bundle.neighbours is not None
    assert bundle.neighbours.shape == (6, 6) and bundle.neighbours[2, 3] == 1.0
    rows, weights = bundle.weighted_history(0)
    assert rows.tolist() == [0, 1] and weights.tolist() == [0.5, 1.0]
    # Neighbour lists over another catalogue than ids.json names are refused.
    _publish_item_item(tmp_path / "bad", shape=5)
    with pytest.raises(BundleError, match=r"inconsistent: neighbours.npz is \[5, 5\] for 6 items"):
        load_bundle(_manifest(tmp_path / "bad"))
