"""A job module for the Vertex AI client tests: echoes its extras back through Pipes."""

from __future__ import annotations

import os
import time
from typing import Any

from recsys_assets.jobs.pipes_io import TRANSPORT_ENV, JobResult, run_job


def run(params: dict[str, Any], pipes: Any, run_id: str) -> JobResult:
    pipes.log.info(f"echo job says {params['message']}")
    time.sleep(float(params.get("sleep", 0)))
    return JobResult(
        {"echo": params["message"], "transport": os.environ.get(TRANSPORT_ENV, ""), "run_id": run_id}
    )


if __name__ == "__main__":
    run_job(run)
