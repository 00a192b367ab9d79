"""A ranker's scores of each split's candidates, as the evaluation reads them and as they are
stored (one ``.npz`` of CSR arrays per split, prefixed ``val_`` and ``test_``)."""

from __future__ import annotations

import numpy as np
import scipy.sparse as sp

from recsys_assets.core.io.sparse import csr_arrays, csr_from_arrays
from recsys_assets.core.models.metrics import Score

#: A non-candidate's score: below every candidate, above the excluded items (-inf).
NOT_A_CANDIDATE = -1e9
SPLITS = ("val", "test")


def sparse_scorer(scores: sp.csr_matrix) -> Score:
    """Every item's score for a batch of users: the ranker's for their candidates (stored
    explicitly, zeros too), below every candidate for the rest: a held-out item that was not a
    candidate is a miss."""

    def score(rows: np.ndarray) -> np.ndarray:
        part = scores[rows].tocoo()
        dense = np.full((len(rows), scores.shape[1]), NOT_A_CANDIDATE, dtype=np.float32)
        dense[part.row, part.col] = part.data
        return dense

    return score


def scores_arrays(split_scores: dict[str, sp.csr_matrix]) -> dict[str, np.ndarray]:
    """What ``models/<ranker>/scores.npz`` holds."""
    return {f"{split}_{k}": v for split in SPLITS for k, v in csr_arrays(split_scores[split]).items()}


def scores_from_arrays(arrays: dict[str, np.ndarray], source: str) -> dict[str, sp.csr_matrix]:
    """``scores_arrays`` read back; a missing split or array is named with ``source``."""
    return {
        split: csr_from_arrays(
            {k.removeprefix(f"{split}_"): v for k, v in arrays.items() if k.startswith(f"{split}_")},
            f"{source} ({split})",
        )
        for split in SPLITS
    }
