"""Open the Pipes connection a job module was launched with.

A local subprocess gets its context and message channel from temp files (Dagster's
defaults); a Vertex AI container gets them through GCS, which the launcher announces with
``RECSYS_PIPES_TRANSPORT=gcs``.
"""

from __future__ import annotations

import os
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import Any

import numpy as np
from dagster_pipes import PipesContext, open_dagster_pipes

TRANSPORT_ENV = "RECSYS_PIPES_TRANSPORT"


@contextmanager
def open_job_pipes() -> Iterator[PipesContext]:
    if os.environ.get(TRANSPORT_ENV) == "gcs":
        from dagster_pipes import PipesGCSContextLoader, PipesGCSMessageWriter
        from google.cloud import storage

        client = storage.Client(project=os.environ.get("GOOGLE_CLOUD_PROJECT"))
        with open_dagster_pipes(
            context_loader=PipesGCSContextLoader(client=client),
            message_writer=PipesGCSMessageWriter(client=client, interval=2),
        ) as pipes:
            yield pipes
    else:
        with open_dagster_pipes() as pipes:
            yield pipes


def progress_logger(pipes: PipesContext, what: str, every_seconds: float = 5.0) -> Callable[[int, int], None]:
    """A ``progress(done, total)`` callback that logs through Pipes at most every few seconds."""
    start = time.perf_counter()
    last = [-every_seconds]

    def report(done: int, total: int) -> None:
        now = time.perf_counter() - start
        if now - last[0] >= every_seconds or done == total:
            last[0] = now
            rate = done / now if now > 0 else 0.0
            pipes.log.info(f"{what}: {done:,}/{total:,} ({rate:,.0f}/s)")

    return report


def unit_rows_check(name: str, vectors: np.ndarray, expected_rows: int, expected_dim: int) -> Check:
    """Rows and width as expected, every value finite, every row of unit length."""
    finite = bool(np.isfinite(vectors).all())
    norms = np.linalg.norm(vectors, axis=1) if len(vectors) else np.ones(0)
    off = int((np.abs(norms - 1.0) > 1e-3).sum()) if finite else len(vectors)
    passed = vectors.shape == (expected_rows, expected_dim) and finite and off == 0
    return Check(
        name,
        passed,
        f"shape {list(vectors.shape)} (expected [{expected_rows}, {expected_dim}]), "
        f"{'all finite' if finite else 'NON-FINITE values'}, {off} row(s) not of unit length",
        {"rows": int(vectors.shape[0]), "rows_not_unit_length": off},
    )


def md(text: str) -> dict[str, Any]:
    """A markdown metadata value in the Pipes wire format."""
    return {"raw_value": text, "type": "md"}


def json_value(value: dict[str, Any] | list[Any]) -> dict[str, Any]:
    """A JSON metadata value in the Pipes wire format."""
    return {"raw_value": value, "type": "json"}


@dataclass
class Check:
    """An asset check the job evaluated on what it wrote; the asset declares it (blocking)."""

    name: str
    passed: bool
    description: str
    metadata: dict[str, Any] = field(default_factory=dict)


@dataclass
class JobResult:
    metadata: dict[str, Any]
    checks: list[Check] = field(default_factory=list)


def run_job(run: Callable[[dict[str, Any], PipesContext, str], JobResult]) -> None:
    """A job module's entry point: ``run(extras, pipes, run_id)`` returns metadata and checks."""
    # Model loaders draw progress bars on stderr; the job reports progress through Pipes.
    os.environ.setdefault("HF_HUB_DISABLE_PROGRESS_BARS", "1")
    with open_job_pipes() as pipes:
        result = run(dict(pipes.extras), pipes, pipes.run_id)
        pipes.report_asset_materialization(
            metadata={k: v for k, v in result.metadata.items() if v is not None}
        )
        for check in result.checks:
            pipes.report_asset_check(
                check_name=check.name,
                passed=check.passed,
                metadata={"description": check.description, **check.metadata},
            )
