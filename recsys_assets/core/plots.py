"""Plots for asset metadata: matplotlib without a display, figures as PNG bytes (the assets
embed them in markdown, which the Dagster UI renders)."""

from __future__ import annotations

import io
from typing import Any


def pyplot() -> Any:
    """``matplotlib.pyplot`` on the Agg backend (no display; safe in worker threads)."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    return plt


def png(figure: Any) -> bytes:
    """The figure laid out, as PNG bytes; the figure is closed."""
    figure.tight_layout()
    out = io.BytesIO()
    figure.savefig(out, format="png", dpi=80)
    pyplot().close(figure)
    return out.getvalue()
