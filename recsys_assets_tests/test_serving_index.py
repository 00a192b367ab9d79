"""The serving bundle: index choice and recall, publishing, and refusing broken versions."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

from recsys_assets.core.serving_index import (
    BundleError,
    IndexConfig,
    build_index,
    export_files,
    index_bytes,
    load_bundle,
    measure,
    popular_items,
    publish,
    version_uri,
    write_files,
)


def _clustered(n: int, dim: int = 32, seed: int = 0) -> np.ndarray:
    rng = np.random.default_rng(seed)
    centres = rng.normal(size=(50, dim))
    x = centres[rng.integers(0, 50, n)] + rng.normal(scale=0.5, size=(n, dim))
    return (x / np.linalg.norm(x, axis=1, keepdims=True)).astype(np.float32)


def test_auto_index_is_exact_below_the_threshold_and_hnsw_above() -> None:
    assert IndexConfig(exact_below=1000).resolved_kind(999) == "flat"
    assert IndexConfig(exact_below=1000).resolved_kind(1000) == "hnsw"
    assert IndexConfig(kind="ivf").resolved_kind(10) == "ivf"
    with pytest.raises(ValueError, match="index kind 'lsh': expected auto, flat, hnsw or ivf"):
        IndexConfig(kind="lsh")  # type: ignore[arg-type]
    with pytest.raises(ValueError, match="index hnsw_m must be >= 1, got 0"):
        IndexConfig(hnsw_m=0)


@pytest.mark.parametrize(("kind", "floor"), [("flat", 1.0), ("hnsw", 0.95), ("ivf", 0.9)])
def test_index_recall_against_exact_search_is_measured(kind: str, floor: float) -> None:
    items, queries = _clustered(5_000), _clustered(300, seed=1)
    config = IndexConfig(kind=kind, recall_queries=200)  # type: ignore[arg-type]
    built = measure(build_index(items, config), items, queries, config)
    assert built.kind == kind and built.index.ntotal == 5_000
    assert floor <= built.recall <= 1.0 and built.recall_k == 20
    assert set(built.latency_ms) == {"median", "p99", "exact_median", "exact_p99"}
    if kind == "ivf":
        # 4 sqrt(n) = 282 lists, capped so that each list trains on >= 39 points: 5000 // 39.
        assert built.params["nlist"] == 128 and built.params["nprobe"] == 32


def test_an_index_with_too_few_probes_measures_low_recall() -> None:
    items, queries = _clustered(5_000), _clustered(300, seed=1)
    config = IndexConfig(kind="ivf", ivf_nlist=256, ivf_nprobe=1, recall_queries=200)
    assert measure(build_index(items, config), items, queries, config).recall < 0.9


def test_popular_items_break_ties_by_index() -> None:
    assert popular_items(np.array([2, 2, 0, 1, 1, 3]), 5).tolist() == [1, 2, 0, 3, 4]


def _publish(root: Path, version: str = "v1", n_items: int = 30) -> dict:
    items = _clustered(n_items, dim=8)
    users = _clustered(4, dim=8, seed=2)
    files = export_files(
        items, users, [f"u{i}" for i in range(4)], [f"i{i}" for i in range(n_items)],
        [f"title {i}" for i in range(n_items)], np.array([0, 2, 3, 3, 5]), np.array([0, 1, 2, 3, 4]),
    )  # fmt: skip
    write_files(str(root), version, files)
    config = IndexConfig()
    write_files(str(root), version, {"index.faiss": index_bytes(build_index(items, config))})
    return publish(str(root), version, {"model": {"name": "gat"}})


def test_a_published_version_loads_with_everything_checked(tmp_path: Path) -> None:
    manifest = _publish(tmp_path)
    assert manifest["version"] == "v1" and set(manifest["files"]) == {
        "items.npy", "users.npy", "index.faiss", "ids.json", "history.npz", "popular.npy",
    }  # fmt: skip
    bundle = load_bundle(str(tmp_path / "manifest.json"))
    assert bundle.version == "v1" and bundle.index.ntotal == 30 and bundle.items.shape == (30, 8)
    assert bundle.user_index["u3"] == 3 and bundle.item_index["i7"] == 7 and bundle.titles[7] == "title 7"
    assert bundle.history(0).tolist() == [0, 1] and bundle.history(2).tolist() == []
    assert bundle.popular[:5].tolist() == [0, 1, 2, 3, 4]


def test_publish_refuses_a_version_with_a_missing_file(tmp_path: Path) -> None:
    _publish(tmp_path)
    version_dir = tmp_path / "versions" / "v1"
    (version_dir / "index.faiss").unlink()
    with pytest.raises(ValueError, match=r"serving version v1: .*index.faiss is missing"):
        publish(str(tmp_path), "v1", {})


def test_a_corrupt_file_is_refused_naming_it(tmp_path: Path) -> None:
    _publish(tmp_path)
    path = Path(version_uri(str(tmp_path), "v1", "items.npy"))
    path.write_bytes(path.read_bytes()[:-8])
    with pytest.raises(BundleError, match=r"items.npy: checksum mismatch"):
        load_bundle(str(tmp_path / "manifest.json"))


def test_an_unreadable_or_inconsistent_version_is_refused(tmp_path: Path) -> None:
    with pytest.raises(BundleError, match=r"manifest\.json: cannot read the manifest"):
        load_bundle(str(tmp_path / "manifest.json"))
    (tmp_path / "manifest.json").write_text(json.dumps({"files": {}}))
    with pytest.raises(BundleError, match="manifest has no 'version'"):
        load_bundle(str(tmp_path / "manifest.json"))
    # Files that match their checksums but not each other: an index over 20 items for 30 vectors.
    _publish(tmp_path, "v1", n_items=30)
    other = tmp_path / "other"
    _publish(other, "v2", n_items=20)
    Path(version_uri(str(tmp_path), "v1", "index.faiss")).write_bytes(
        Path(version_uri(str(other), "v2", "index.faiss")).read_bytes()
    )
    publish(str(tmp_path), "v1", {})
    inconsistent = r"version v1 is inconsistent: index holds 20 x 8, items.npy \(30, 8\)"
    with pytest.raises(BundleError, match=inconsistent):
        load_bundle(str(tmp_path / "manifest.json"))
    # Bytes that are not an index at all.
    Path(version_uri(str(tmp_path), "v1", "index.faiss")).write_bytes(b"garbage")
    publish(str(tmp_path), "v1", {})
    with pytest.raises(BundleError, match="version v1 does not parse"):
        load_bundle(str(tmp_path / "manifest.json"))
