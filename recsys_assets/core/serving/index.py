"""The item index of a serving version: built over the promoted model's item vectors, its
recall@k against exact search and its single-query latency measured before it is published."""

from __future__ import annotations

import time
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from recsys_assets.core import ann
from recsys_assets.settings.serving import IndexConfig


@dataclass
class BuiltIndex:
    index: Any  # faiss.Index
    kind: str
    params: dict[str, Any]
    build_seconds: float
    recall: float = 1.0
    recall_k: int = 20
    latency_ms: dict[str, float] = field(default_factory=dict)


def index_kind(config: IndexConfig, n_items: int) -> str:
    """The index ``config`` asks for over ``n_items`` items: ``auto`` is exact below
    ``exact_below`` items (a flat scan is fast and exact there) and HNSW above."""
    if config.kind != "auto":
        return config.kind
    return "flat" if n_items < config.exact_below else "hnsw"


def build_index(items: np.ndarray, config: IndexConfig) -> BuiltIndex:
    """An inner-product index over ``items`` (one row per item): exact below
    ``config.exact_below`` items with ``kind="auto"``, else HNSW; or the kind named."""
    n, dim = items.shape
    kind = index_kind(config, n)
    start = time.perf_counter()
    params: dict[str, Any] = {"dim": dim, "items": n}
    if kind == "flat":
        index = ann.flat_index(items)
    elif kind == "hnsw":
        index = ann.hnsw_index(items, config.hnsw_m, config.hnsw_ef_construction, config.hnsw_ef_search)
        params |= {"m": config.hnsw_m, "ef_construction": config.hnsw_ef_construction,
                   "ef_search": config.hnsw_ef_search}  # fmt: skip
    else:
        index = ann.ivf_index(items, ann.ivf_lists(n, config.ivf_nlist), config.ivf_nprobe, config.seed)
        params |= {"nlist": int(index.nlist), "nprobe": int(index.nprobe)}
    return BuiltIndex(index, kind, params, time.perf_counter() - start, recall_k=config.recall_k)


def measure(built: BuiltIndex, items: np.ndarray, queries: np.ndarray, config: IndexConfig) -> BuiltIndex:
    """Recall@k of ``built`` against exact search over a seeded sample of ``queries``, and the
    single-query latency (median and p99 ms) of both; stored on ``built``."""
    rng = np.random.default_rng(config.seed)
    take = min(config.recall_queries, len(queries))
    sample = np.ascontiguousarray(queries[rng.choice(len(queries), take, replace=False)], dtype=np.float32)
    k = min(config.recall_k, len(items))
    exact = ann.flat_index(items)
    _, truth = exact.search(sample, k)
    _, found = built.index.search(sample, k)
    built.recall = ann.recall_at_k(found, truth)
    built.recall_k = k

    def latency(index: Any) -> tuple[float, float]:
        times = []
        for row in sample[:200]:
            start = time.perf_counter()
            index.search(row[None, :], k)
            times.append((time.perf_counter() - start) * 1000)
        return float(np.median(times)), float(np.percentile(times, 99))

    faiss = ann.faiss()
    # Restored as it was: OpenMP reads 0 as 1, so "0 for the default" would leave FAISS on one
    # thread for the rest of the process.
    threads = faiss.omp_get_max_threads()
    faiss.omp_set_num_threads(1)  # one query at a time, as a request searches
    try:
        built.latency_ms = dict(zip(("median", "p99"), latency(built.index), strict=True))
        built.latency_ms |= dict(zip(("exact_median", "exact_p99"), latency(exact), strict=True))
    finally:
        faiss.omp_set_num_threads(threads)
    return built


def index_bytes(built: BuiltIndex) -> bytes:
    return bytes(ann.faiss().serialize_index(built.index).tobytes())
