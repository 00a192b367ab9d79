"""A job module for the job runner tests: echoes its params back through Pipes, and says which
transport its Pipes context arrived by."""

from __future__ import annotations

import os
import time

from dagster_pipes import PipesContext, PipesEnvVarParamsLoader

from recsys_assets.pipes.contracts import JobParams
from recsys_assets.pipes.pipes_io import JobResult, run_job


class EchoParams(JobParams):
    module = "recsys_assets_tests.pipes_echo_job"

    message: str
    sleep: float = 0.0


def run(params: EchoParams, pipes: PipesContext) -> JobResult:
    pipes.log.info(f"echo job says {params.message}")
    time.sleep(params.sleep)
    transport = "gcs" if "bucket" in PipesEnvVarParamsLoader().load_context_params() else "temp files"
    return JobResult(
        {"echo": params.message, "transport": transport, "run_id": pipes.run_id,
         "omp_wait_policy": os.environ.get("OMP_WAIT_POLICY", "")}
    )  # fmt: skip


if __name__ == "__main__":
    run_job(run, EchoParams)
