"""Cosine kNN graphs over item embeddings with FAISS: exact when small, IVF when large.

Vectors are L2-normalised, so inner product is cosine. Up to ``exact_max_items`` the graph is
exact. Above it an IVF index (``core/ann.py``) is trained on a sample, and ``nprobe`` is
doubled until recall@k on a sample of items, measured against exact search for those items,
reaches ``target_recall``; the method, parameters and the measured recall are returned with the
graph. Self matches are removed; an approximate search that misses the item itself drops its
last neighbour instead, so every item has exactly ``k`` neighbours.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from recsys_assets.core import ann
from recsys_assets.settings.graphs import KnnConfig


@dataclass
class KnnGraph:
    src: np.ndarray
    dst: np.ndarray
    weight: np.ndarray
    meta: dict[str, Any] = field(default_factory=dict)

    def to_npz(self) -> dict[str, np.ndarray]:
        return {"src": self.src, "dst": self.dst, "weight": self.weight}


def _drop_self(ids: np.ndarray, sims: np.ndarray, rows: np.ndarray, k: int) -> tuple[np.ndarray, np.ndarray]:
    """Neighbour lists without the query itself, cut to ``k``."""
    is_self = ids == rows[:, None]
    # Where the item is absent from its own list, drop the last (weakest) entry instead.
    missing = ~is_self.any(axis=1)
    is_self[missing, -1] = True
    keep = ~is_self
    return ids[keep].reshape(len(ids), k), sims[keep].reshape(len(ids), k)


def knn_graph(
    embeddings: np.ndarray, config: KnnConfig, progress: Callable[[int, int], None] | None = None
) -> KnnGraph:
    """Each item's ``k`` most cosine-similar other items, as a directed edge list."""
    x = np.ascontiguousarray(embeddings, dtype=np.float32)
    n, dim = x.shape
    k = config.k
    if n <= k:
        raise ValueError(f"kNN with k={k} needs more than {k} items, got {n}")
    method = config.method
    if method == "auto":
        method = "exact" if n <= config.exact_max_items else "ivf"
    rng = np.random.default_rng(config.seed)
    probe_rows = np.sort(rng.choice(n, size=min(config.sample, n), replace=False))
    started = time.perf_counter()
    meta: dict[str, Any] = {"method": method, "k": k, "items": n, "dim": dim}
    truth: np.ndarray | None = None
    if method == "exact":
        index = ann.flat_index(x)
    else:
        nlist = ann.ivf_lists(n)
        index = ann.ivf_index(x, nlist, nprobe=4, seed=config.seed)
        truth, _ = ann.exact_neighbours(x, x[probe_rows], k + 1)
        truth, _ = _drop_self(truth, np.zeros_like(truth, dtype=np.float32), probe_rows, k)
        while True:
            sims, ids = index.search(x[probe_rows], k + 1)
            found, _ = _drop_self(ids, sims, probe_rows, k)
            recall = ann.recall_at_k(found, truth)
            if recall >= config.target_recall or index.nprobe >= nlist:
                break
            index.nprobe = min(nlist, index.nprobe * 2)
        meta.update({"nlist": nlist, "nprobe": int(index.nprobe), "tuning_recall": round(recall, 4)})
    build_seconds = time.perf_counter() - started
    dst = np.empty((n, k), dtype=np.int32)
    weight = np.empty((n, k), dtype=np.float32)
    for lo in range(0, n, config.batch):
        rows = np.arange(lo, min(n, lo + config.batch))
        sims, ids = index.search(x[rows], k + 1)
        ids, sims = _drop_self(ids, sims, rows, k)
        dst[rows], weight[rows] = ids, sims
        if progress:
            progress(int(rows[-1]) + 1, n)
    meta["search_seconds"] = round(time.perf_counter() - started - build_seconds, 3)
    meta["build_seconds"] = round(build_seconds, 3)
    # Recall of the graph itself on the probe sample, against exact search (1.0 when exact).
    meta["recall_at_k"] = 1.0 if truth is None else round(ann.recall_at_k(dst[probe_rows], truth), 4)
    meta["recall_sample"] = len(probe_rows)
    src = np.repeat(np.arange(n, dtype=np.int32), k)
    return KnnGraph(src, dst.ravel(), weight.ravel(), meta)
