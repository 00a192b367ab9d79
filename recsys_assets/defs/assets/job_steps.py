"""What every asset that hands its work to a job module shares: the blocking checks its contract
declares, and relaying what the job reported through Pipes."""

from collections.abc import Iterator

from dagster import AssetCheckResult, AssetCheckSpec, AssetExecutionContext, MaterializeResult

from recsys_assets.pipes.contracts import JobParams
from resources.job_runners import JobRunner

#: Steps that occupy an accelerator share this pool (limit in dagster.yaml).
GPU_POOL = "gpu"

Results = Iterator[MaterializeResult | AssetCheckResult]


def job_checks(asset: str, contract: type[JobParams]) -> list[AssetCheckSpec]:
    """Blocking checks ``<asset>_<name>`` for each check the contract's job evaluates on what it wrote."""
    return [
        AssetCheckSpec(f"{asset}_{name}", asset=asset, blocking=True, description=text)
        for name, text in contract.checks.items()
    ]


def run_job(context: AssetExecutionContext, runner: JobRunner, params: JobParams, machine: str) -> Results:
    """Run the params' job module on ``machine`` and yield what it reported."""
    invocation = runner.run(context, type(params).module, params.to_dict(), machine)
    # The materialization first, then the checks on it: in the order the job reported them, a
    # check's event (and the time the UI shows for it) came before the materialization it judged.
    results = sorted(invocation.get_results(), key=lambda r: isinstance(r, AssetCheckResult))
    for reported in results:
        # Pipes carries a check's verdict in its metadata; show it as the check's description too.
        if isinstance(reported, AssetCheckResult) and "description" in reported.metadata:
            yield reported._replace(description=str(reported.metadata["description"].value))
        else:
            yield reported
