"""What every asset that hands its work to a job module shares: blocking check specs the job
evaluates, and relaying the job's Pipes results."""

from collections.abc import Iterator
from typing import Any

from dagster import AssetCheckResult, AssetCheckSpec, AssetExecutionContext, MaterializeResult

from resources.job_runners import JobRunner

#: Steps that occupy an accelerator share this pool (limit in dagster.yaml).
GPU_POOL = "gpu"

Results = Iterator[MaterializeResult | AssetCheckResult]


def job_checks(asset: str, **descriptions: str) -> list[AssetCheckSpec]:
    """Blocking checks ``<asset>_<name>``, evaluated by the job on what it wrote."""
    return [
        AssetCheckSpec(f"{asset}_{name}", asset=asset, blocking=True, description=text)
        for name, text in descriptions.items()
    ]


def run_job_module(
    context: AssetExecutionContext, runner: JobRunner, job: str, params: dict[str, Any], machine: str
) -> Results:
    """Run ``recsys_assets.jobs.<job>`` on ``machine`` and yield what it reported."""
    for reported in runner.run(context, f"recsys_assets.jobs.{job}", params, machine).get_results():
        # Pipes carries a check's verdict in its metadata; show it as the check's description too.
        if isinstance(reported, AssetCheckResult) and "description" in reported.metadata:
            yield reported._replace(description=str(reported.metadata["description"].value))
        else:
            yield reported
