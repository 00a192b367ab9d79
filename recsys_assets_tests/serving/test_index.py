"""The item index of a serving version: which kind is built, and its recall against exact search."""

from __future__ import annotations

import numpy as np
import pytest

from recsys_assets.core.serving.index import build_index, index_kind, measure
from recsys_assets.settings.serving import IndexConfig


def _clustered(n: int, dim: int = 32, seed: int = 0) -> np.ndarray:
    rng = np.random.default_rng(seed)
    centres = rng.normal(size=(50, dim))
    x = centres[rng.integers(0, 50, n)] + rng.normal(scale=0.5, size=(n, dim))
    return (x / np.linalg.norm(x, axis=1, keepdims=True)).astype(np.float32)


def test_auto_index_is_exact_below_the_threshold_and_hnsw_above() -> None:
    assert index_kind(IndexConfig(exact_below=1000), 999) == "flat"
    assert index_kind(IndexConfig(exact_below=1000), 1000) == "hnsw"
    assert index_kind(IndexConfig(kind="ivf"), 10) == "ivf"
    with pytest.raises(ValueError, match="kind\n  Input should be 'auto', 'flat', 'hnsw' or 'ivf'"):
        IndexConfig(kind="lsh")  # type: ignore[arg-type]
    with pytest.raises(ValueError, match="hnsw_m\n  Input should be greater than or equal to 1"):
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


def test_measuring_latency_leaves_faiss_threads_as_they_were() -> None:
    from recsys_assets.core import ann

    faiss = ann.faiss()
    before = faiss.omp_get_max_threads()
    faiss.omp_set_num_threads(2)
    try:
        items = _clustered(500)
        config = IndexConfig(kind="flat", recall_queries=20)
        measure(build_index(items, config), items, items, config)
        # Latency is measured on one thread; the process's setting is restored, not reset to 1.
        assert faiss.omp_get_max_threads() == 2
    finally:
        faiss.omp_set_num_threads(before)
