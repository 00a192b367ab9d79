"""Materialize the whole graph into the Dagster instance under ``DAGSTER_HOME``.

``python -m recsys_assets.materialize`` runs the ``all_assets`` job over every monthly
partition in one run (the partitioned assets use single-run backfills), records it in the
instance so the UI shows it, prints each asset and check, and exits non-zero when any
asset or blocking check failed.
"""

from __future__ import annotations

import argparse
import sys

from dagster import DagsterEventType, DagsterInstance
from dagster._core.storage.tags import (
    ASSET_PARTITION_RANGE_END_TAG,
    ASSET_PARTITION_RANGE_START_TAG,
)

from recsys_assets.definitions import defs
from recsys_assets.partitions import interaction_months


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description="Materialize every asset of the graph.")
    keys = interaction_months.get_partition_keys()
    parser.add_argument("--first-month", default=keys[0], help=f"default {keys[0]}")
    parser.add_argument("--last-month", default=keys[-1], help=f"default {keys[-1]}")
    parser.add_argument(
        "--job", default="all_assets", help="job to run: all_assets (default), ablation, search"
    )
    parser.add_argument(
        "--partition", help="the partition of a job over static partitions (search: the model)"
    )
    args = parser.parse_args(argv)

    job = defs.resolve_job_def(args.job)
    if job.partitions_def is not None and not args.partition and args.job != "all_assets":
        keys = job.partitions_def.get_partition_keys()
        parser.error(f"job {args.job} needs --partition, one of {keys}")
    graph = job.asset_layer.asset_graph
    partitioned = any(
        graph.get(key).partitions_def is not None for key in job.asset_layer.executable_asset_keys
    )
    with DagsterInstance.get() as instance:
        result = job.execute_in_process(
            instance=instance,
            # INFO keeps the parser's progress lines and drops Dagster's per-event DEBUG chatter.
            run_config={"loggers": {"console": {"config": {"log_level": "INFO"}}}},
            tags={
                ASSET_PARTITION_RANGE_START_TAG: args.first_month,
                ASSET_PARTITION_RANGE_END_TAG: args.last_month,
            }
            if partitioned and not args.partition
            else {},
            partition_key=args.partition,
            raise_on_error=False,
        )
    materialized: dict[str, int] = {}
    for event in result.all_events:
        if event.event_type == DagsterEventType.ASSET_MATERIALIZATION:
            key = event.asset_key.to_user_string() if event.asset_key else "?"
            materialized[key] = materialized.get(key, 0) + 1
    for key, count in sorted(materialized.items()):
        print(f"materialized {key}: {count} partition(s)" if count > 1 else f"materialized {key}")
    failed_checks = []
    for evaluation in result.get_asset_check_evaluations():
        status = "passed" if evaluation.passed else f"FAILED ({evaluation.severity.value})"
        print(f"check {evaluation.check_name}: {status}: {evaluation.description}")
        if not evaluation.passed and evaluation.blocking:
            failed_checks.append(evaluation.check_name)
    if not result.success or failed_checks:
        print(
            f"run {result.run_id} failed; blocking checks failed: {failed_checks or 'none'}", file=sys.stderr
        )
        return 1
    print(f"run {result.run_id} succeeded")
    return 0


if __name__ == "__main__":
    sys.exit(main())
