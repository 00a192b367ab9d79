"""Sparse matrices as the arrays an ``.npz`` artifact holds (``indptr``, ``indices``, ``data``,
``shape``): item-item neighbour lists, written by training, read by evaluation and the API."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import scipy.sparse as sp

ARRAYS = ("indptr", "indices", "data", "shape")
#: A sparse matrix multiplies faster dense when it holds at least this share of non-zeros and
#: fits this many floats (a sparse history times a dense matrix is 2.5x faster than the sparse
#: product for EASE's 1,000 neighbours among 3,900 items, and the same numbers).
DENSE_FLOATS, DENSE_SHARE = 64 * 1024 * 1024, 0.01


def dense_enough(matrix: sp.spmatrix) -> bool:
    size = matrix.shape[0] * matrix.shape[1]
    return bool(size <= DENSE_FLOATS and matrix.nnz >= DENSE_SHARE * size)


def csr_arrays(matrix: sp.csr_matrix) -> dict[str, np.ndarray]:
    return {
        "indptr": matrix.indptr.astype(np.int64),
        "indices": matrix.indices.astype(np.int32),
        "data": matrix.data.astype(np.float32),
        "shape": np.array(matrix.shape, dtype=np.int64),
    }


def csr_from_arrays(arrays: dict[str, np.ndarray], source: str) -> sp.csr_matrix:
    """The matrix back from its arrays; inconsistent arrays are named with ``source``."""
    missing = [name for name in ARRAYS if name not in arrays]
    if missing:
        raise ValueError(f"{source}: missing array(s) {missing}")
    n_rows, n_columns = (int(v) for v in arrays["shape"])
    indptr, indices, data = arrays["indptr"], arrays["indices"], arrays["data"]
    problems = []
    if len(indptr) != n_rows + 1 or (len(indptr) and (indptr[0] != 0 or indptr[-1] != len(indices))):
        problems.append(f"indptr of {len(indptr)} entries for {n_rows} rows and {len(indices)} values")
    if len(indices) != len(data):
        problems.append(f"{len(indices)} indices for {len(data)} values")
    if len(indices) and (indices.min() < 0 or indices.max() >= n_columns):
        problems.append(f"column indices outside 0..{n_columns - 1}")
    if len(data) and not np.isfinite(data).all():
        problems.append("non-finite values")
    if problems:
        raise ValueError(f"{source}: " + "; ".join(problems))
    return sp.csr_matrix((data, indices, indptr), shape=(n_rows, n_columns))


@dataclass(frozen=True)
class Csr:
    """Per-row item lists: the items of row ``r`` are ``indices[indptr[r]:indptr[r + 1]]``,
    with ``values`` (when given) one per item, in the same order."""

    indptr: np.ndarray
    indices: np.ndarray
    values: np.ndarray | None = None

    @classmethod
    def from_pairs(
        cls, rows: np.ndarray, items: np.ndarray, n_rows: int, values: np.ndarray | None = None
    ) -> Csr:
        order = np.lexsort((items, rows))
        rows, items = rows[order], items[order]
        indptr = np.zeros(n_rows + 1, dtype=np.int64)
        np.add.at(indptr, rows + 1, 1)
        return cls(np.cumsum(indptr), items.astype(np.int64), None if values is None else values[order])

    def lengths(self) -> np.ndarray:
        return np.diff(self.indptr)

    def row(self, r: int) -> np.ndarray:
        return self.indices[self.indptr[r] : self.indptr[r + 1]]

    def pairs(self, rows: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """(position in ``rows``, item) for every item of the given rows."""
        starts, ends = self.indptr[rows], self.indptr[rows + 1]
        counts = ends - starts
        position = np.repeat(np.arange(len(rows)), counts)
        offsets = np.arange(counts.sum()) - np.repeat(np.cumsum(counts) - counts, counts)
        return position, self.indices[np.repeat(starts, counts) + offsets]
