"""A job module's side of Dagster Pipes: open the connection it was launched with, validate its
params, and report what it wrote (metadata and the checks its contract declares).

A local subprocess gets its context and message channel from temp files (Dagster's defaults);
a Vertex AI container gets them through GCS. Which one it is shows in the bootstrap
parameters themselves (a GCS context names its bucket), so the launcher sets nothing else.
"""

from __future__ import annotations

import os
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import Any, TypeVar

from dagster_pipes import PipesContext, PipesEnvVarParamsLoader, open_dagster_pipes
from pydantic import TypeAdapter, ValidationError

from recsys_assets.core.markdown import Markdown
from recsys_assets.core.outcomes import CheckOutcome
from recsys_assets.core.processes import die_with_parent
from recsys_assets.pipes.contracts import JobParams
from recsys_assets.settings.base import describe_errors

P = TypeVar("P", bound=JobParams)


@contextmanager
def open_job_pipes() -> Iterator[PipesContext]:
    if "bucket" in PipesEnvVarParamsLoader().load_context_params():
        from dagster_pipes import PipesGCSContextLoader, PipesGCSMessageWriter
        from google.cloud import storage

        client = storage.Client(project=os.environ.get("GOOGLE_CLOUD_PROJECT"))
        with open_dagster_pipes(
            context_loader=PipesGCSContextLoader(client=client),
            message_writer=PipesGCSMessageWriter(client=client, interval=2),
        ) as pipes:
            yield pipes
    else:
        # A local job process is the step's child: it must not run on after the step dies.
        die_with_parent()
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


def md(text: str) -> dict[str, Any]:
    """A markdown metadata value in the Pipes wire format."""
    return {"raw_value": text, "type": "md"}


def json_value(value: dict[str, Any] | list[Any]) -> dict[str, Any]:
    """A JSON metadata value in the Pipes wire format."""
    return {"raw_value": value, "type": "json"}


@dataclass
class JobResult:
    """What the asset's materialization shows, and each declared check's outcome by suffix."""

    metadata: dict[str, Any]
    checks: dict[str, CheckOutcome] = field(default_factory=dict)


def wire_metadata(metadata: dict[str, Any]) -> dict[str, Any]:
    """Metadata for Pipes: markdown stays markdown, ``None`` (nothing to show) is left out."""
    return {k: md(v) if isinstance(v, Markdown) else v for k, v in metadata.items() if v is not None}


def validate_params(kind: type[P] | TypeAdapter[Any], extras: dict[str, Any]) -> Any:
    """The Pipes extras as the job's params; every invalid field is named."""
    adapter = kind if isinstance(kind, TypeAdapter) else TypeAdapter(kind)
    try:
        return adapter.validate_python(extras)
    except ValidationError as error:
        raise ValueError(f"invalid job params: {describe_errors(error)}") from error


def run_job(run: Callable[[Any, PipesContext], JobResult], kind: type[P] | TypeAdapter[Any]) -> None:
    """A job module's entry point: ``run(params, pipes)`` returns metadata and check outcomes."""
    # Model loaders draw progress bars on stderr; the job reports progress through Pipes.
    os.environ.setdefault("HF_HUB_DISABLE_PROGRESS_BARS", "1")
    with open_job_pipes() as pipes:
        params: JobParams = validate_params(kind, dict(pipes.extras))
        result = run(params, pipes)
        declared = type(params).checks
        if set(result.checks) != set(declared):
            raise RuntimeError(
                f"{type(params).module}: reported checks {sorted(result.checks)}, its contract declares "
                f"{sorted(declared)}"
            )
        pipes.report_asset_materialization(metadata=wire_metadata(result.metadata))
        for suffix, outcome in result.checks.items():
            pipes.report_asset_check(
                check_name=f"{params.asset}_{suffix}",
                passed=outcome.passed,
                metadata=wire_metadata({"description": outcome.message, **outcome.details()}),
            )
