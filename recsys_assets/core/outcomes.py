"""What a check found, free of Dagster: the verdict, a message that names the problem, the
observed value against its threshold, and the offending rows. Assets turn these into asset
check results; job modules report them through Pipes; either way the UI shows the same fields."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import numpy as np
import pandas as pd

from recsys_assets.core.markdown import Markdown

#: Offending rows shown with a failed check.
MAX_OFFENDING = 10


@dataclass
class CheckOutcome:
    passed: bool
    message: str
    observed: float
    threshold: float | str
    offending: pd.DataFrame = field(default_factory=pd.DataFrame)
    #: Further measurements, shown beside the verdict.
    metadata: dict[str, Any] = field(default_factory=dict)

    def details(self) -> dict[str, Any]:
        """What a check result shows beside its verdict, as plain values (markdown as
        ``Markdown``), the same whether the check ran in the asset or in a job."""
        details: dict[str, Any] = {
            "observed": float(self.observed),
            "threshold": self.threshold if isinstance(self.threshold, str) else float(self.threshold),
        }
        if len(self.offending):
            details["offending_rows"] = Markdown(self.offending.astype(str).to_markdown(index=False))
        return {**details, **self.metadata}


def unit_rows(vectors: np.ndarray, expected_rows: int, expected_dim: int) -> CheckOutcome:
    """Rows and width as expected, every value finite, every row of unit length."""
    finite = bool(np.isfinite(vectors).all())
    norms = np.linalg.norm(vectors, axis=1) if len(vectors) else np.ones(0)
    off = int((np.abs(norms - 1.0) > 1e-3).sum()) if finite else len(vectors)
    passed = vectors.shape == (expected_rows, expected_dim) and finite and off == 0
    return CheckOutcome(
        passed,
        f"shape {list(vectors.shape)} (expected [{expected_rows}, {expected_dim}]), "
        f"{'all finite' if finite else 'NON-FINITE values'}, {off} row(s) not of unit length",
        off,
        0,
        metadata={"rows": int(vectors.shape[0]), "rows_not_unit_length": off},
    )
