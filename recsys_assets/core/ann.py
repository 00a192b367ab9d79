"""Nearest neighbours over embeddings with FAISS: the one place indexes are built and their
recall measured. The item-item kNN graphs and the serving index both use it.

Vectors are compared by inner product (cosine, for the unit vectors this project stores).
"""

from __future__ import annotations

from typing import Any

import numpy as np

#: FAISS wants at least 39 training points per IVF list.
POINTS_PER_LIST = 39
#: IVF lists are trained on a sample of this many points per list (FAISS samples down to 256).
TRAIN_POINTS_PER_LIST = 64


def faiss() -> Any:
    """The faiss module, imported on first use (it loads BLAS and OpenMP)."""
    import faiss as module

    return module


def _contiguous(vectors: np.ndarray) -> np.ndarray:
    return np.ascontiguousarray(vectors, dtype=np.float32)


def flat_index(vectors: np.ndarray) -> Any:
    """Exact search."""
    x = _contiguous(vectors)
    index = faiss().IndexFlatIP(x.shape[1])
    index.add(x)
    return index


def hnsw_index(vectors: np.ndarray, m: int, ef_construction: int, ef_search: int) -> Any:
    x = _contiguous(vectors)
    index = faiss().IndexHNSWFlat(x.shape[1], m, faiss().METRIC_INNER_PRODUCT)
    index.hnsw.efConstruction = ef_construction
    index.hnsw.efSearch = ef_search
    index.add(x)
    return index


def ivf_lists(n: int, requested: int = 0) -> int:
    """``requested`` lists, else 4 sqrt(n); at most n / 39, so that every list trains on enough points."""
    return requested or max(1, min(n // POINTS_PER_LIST, int(4 * np.sqrt(n))))


def ivf_index(vectors: np.ndarray, nlist: int, nprobe: int, seed: int) -> Any:
    """An inverted-file index of ``nlist`` lists, trained on a seeded sample, probing ``nprobe``."""
    x = _contiguous(vectors)
    n, dim = x.shape
    # index_factory owns its coarse quantizer; an IndexIVFFlat built around a Python-side
    # quantizer would outlive it once that object is garbage-collected.
    index = faiss().index_factory(dim, f"IVF{nlist},Flat", faiss().METRIC_INNER_PRODUCT)
    rng = np.random.default_rng(seed)
    train = np.sort(rng.choice(n, size=min(n, nlist * TRAIN_POINTS_PER_LIST), replace=False))
    index.train(x[train])
    index.add(x)
    index.nprobe = min(nprobe, nlist)
    return index


def exact_neighbours(vectors: np.ndarray, queries: np.ndarray, k: int) -> tuple[np.ndarray, np.ndarray]:
    """Exact top-``k`` inner-product neighbours of ``queries`` among ``vectors``: (ids, scores)."""
    scores, ids = flat_index(vectors).search(_contiguous(queries), k)
    return ids, scores


def recall_at_k(found: np.ndarray, truth: np.ndarray) -> float:
    """Mean share of each row's true neighbours that were found (-1, "nothing found", never counts)."""
    if truth.size == 0:
        return 1.0
    hits = sum(len(np.intersect1d(t, f[f >= 0])) for f, t in zip(found, truth, strict=True))
    return hits / truth.size
