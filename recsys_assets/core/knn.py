"""Cosine kNN graphs over item embeddings with FAISS: exact when small, IVF when large.

Vectors are L2-normalised, so inner product is cosine. Below ``exact_max_items`` the graph
is exact (``IndexFlatIP``). Above it an ``IndexIVFFlat`` (nlist ~ 4 sqrt(n)) is trained on
a sample, and ``nprobe`` is raised until recall@k on a sample of queries, measured against
exact search for those queries, reaches ``target_recall``; the method, parameters and the
measured recall are returned with the graph. Self matches are removed; an approximate
search that misses the item itself drops its last neighbour instead, so every item has
exactly ``k`` neighbours.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import numpy as np

EXACT_MAX_ITEMS = 50_000


@dataclass
class KnnGraph:
    src: np.ndarray
    dst: np.ndarray
    weight: np.ndarray
    meta: dict[str, Any] = field(default_factory=dict)

    def to_npz(self) -> dict[str, np.ndarray]:
        return {"src": self.src, "dst": self.dst, "weight": self.weight}


def _faiss() -> Any:
    import faiss

    return faiss


def exact_neighbours(vectors: np.ndarray, queries: np.ndarray, k: int) -> tuple[np.ndarray, np.ndarray]:
    """Exact top-``k`` inner-product neighbours of ``queries`` among ``vectors``: (ids, sims)."""
    index = _faiss().IndexFlatIP(vectors.shape[1])
    index.add(vectors)
    sims, ids = index.search(queries, k)  # faiss returns (distances, labels)
    return ids, sims


def _drop_self(ids: np.ndarray, sims: np.ndarray, rows: np.ndarray, k: int) -> tuple[np.ndarray, np.ndarray]:
    """Neighbour lists without the query itself, cut to ``k``."""
    is_self = ids == rows[:, None]
    # Where the item is absent from its own list, drop the last (weakest) entry instead.
    missing = ~is_self.any(axis=1)
    is_self[missing, -1] = True
    keep = ~is_self
    return ids[keep].reshape(len(ids), k), sims[keep].reshape(len(ids), k)


def recall_at_k(found: np.ndarray, truth: np.ndarray) -> float:
    """Mean share of each row's true neighbours that were found."""
    hits = sum(len(np.intersect1d(f, t)) for f, t in zip(found, truth, strict=True))
    return hits / truth.size


def knn_graph(
    embeddings: np.ndarray,
    k: int = 20,
    *,
    method: str = "auto",
    exact_max_items: int = EXACT_MAX_ITEMS,
    target_recall: float = 0.95,
    sample: int = 2_000,
    seed: int = 0,
    batch: int = 16_384,
    progress: Callable[[int, int], None] | None = None,
) -> KnnGraph:
    """Each item's ``k`` most cosine-similar other items, as a directed edge list."""
    faiss = _faiss()
    x = np.ascontiguousarray(embeddings, dtype=np.float32)
    n, dim = x.shape
    if n <= k:
        raise ValueError(f"kNN with k={k} needs more than {k} items, got {n}")
    if method == "auto":
        method = "exact" if n <= exact_max_items else "ivf"
    if method not in ("exact", "ivf"):
        raise ValueError(f"kNN method {method!r}: expected auto, exact or ivf")
    rng = np.random.default_rng(seed)
    probe_rows = np.sort(rng.choice(n, size=min(sample, n), replace=False))
    started = time.perf_counter()
    meta: dict[str, Any] = {"method": method, "k": k, "items": n, "dim": dim}
    truth: np.ndarray | None = None
    if method == "exact":
        index = faiss.IndexFlatIP(dim)
        index.add(x)
    else:
        nlist = int(min(max(16, 4 * np.sqrt(n)), n // 39))
        # index_factory owns its coarse quantizer (an IndexIVFFlat built from a Python-side
        # quantizer would outlive it once that object is garbage-collected).
        index = faiss.index_factory(dim, f"IVF{nlist},Flat", faiss.METRIC_INNER_PRODUCT)
        train_rows = rng.choice(n, size=min(n, nlist * 64), replace=False)
        index.train(x[np.sort(train_rows)])
        index.add(x)
        truth, _ = exact_neighbours(x, x[probe_rows], k + 1)
        truth, _ = _drop_self(truth, np.zeros_like(truth, dtype=np.float32), probe_rows, k)
        nprobe = 4
        while True:
            index.nprobe = nprobe
            sims, ids = index.search(x[probe_rows], k + 1)
            found, _ = _drop_self(ids, sims, probe_rows, k)
            recall = recall_at_k(found, truth)
            if recall >= target_recall or nprobe >= nlist:
                break
            nprobe = min(nlist, nprobe * 2)
        meta.update({"nlist": nlist, "nprobe": nprobe, "tuning_recall": round(recall, 4)})
    build_seconds = time.perf_counter() - started
    dst = np.empty((n, k), dtype=np.int32)
    weight = np.empty((n, k), dtype=np.float32)
    for lo in range(0, n, batch):
        rows = np.arange(lo, min(n, lo + batch))
        sims, ids = index.search(x[rows], k + 1)
        ids, sims = _drop_self(ids, sims, rows, k)
        dst[rows], weight[rows] = ids, sims
        if progress:
            progress(int(rows[-1]) + 1, n)
    meta["search_seconds"] = round(time.perf_counter() - started - build_seconds, 3)
    meta["build_seconds"] = round(build_seconds, 3)
    # Recall of the graph itself on the probe sample, against exact search (1.0 when exact).
    meta["recall_at_k"] = 1.0 if truth is None else round(recall_at_k(dst[probe_rows], truth), 4)
    meta["recall_sample"] = len(probe_rows)
    src = np.repeat(np.arange(n, dtype=np.int32), k)
    return KnnGraph(src, dst.ravel(), weight.ravel(), meta)
