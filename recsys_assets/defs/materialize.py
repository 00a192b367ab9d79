"""Materialize the whole graph into the Dagster instance under ``DAGSTER_HOME``.

``python -m recsys_assets.defs.materialize`` runs the ``all_assets`` job over every monthly
partition in one run (the partitioned assets use single-run backfills), records it in the
instance so the UI shows it, prints each asset and check, and exits non-zero when any
asset or blocking check failed. ``--select`` runs only some of the job's assets over the files
the others left (retraining the ranker and re-evaluating, say).
"""

from __future__ import annotations

import argparse
import sys

from dagster import AssetKey, DagsterInstance
from dagster._core.storage.tags import (
    ASSET_PARTITION_RANGE_END_TAG,
    ASSET_PARTITION_RANGE_START_TAG,
)

from recsys_assets.definitions import defs
from recsys_assets.defs.partitions import interaction_months
from recsys_assets.defs.run_summary import print_summary

#: Run config that keeps the steps' progress lines (INFO) and drops Dagster's per-event DEBUG chatter.
INFO_LOGS = {"loggers": {"console": {"config": {"log_level": "INFO"}}}}


def partition_range_tags(job_name: str, first: str | None = None, last: str | None = None) -> dict[str, str]:
    """The tags that run ``job_name`` over the months ``first``..``last`` (default: all) as one
    single-run backfill; none for a job without partitioned assets."""
    job = defs.resolve_job_def(job_name)
    graph = job.asset_layer.asset_graph
    if not any(graph.get(key).partitions_def is not None for key in job.asset_layer.executable_asset_keys):
        return {}
    keys = interaction_months.get_partition_keys()
    return {
        ASSET_PARTITION_RANGE_START_TAG: first or keys[0],
        ASSET_PARTITION_RANGE_END_TAG: last or keys[-1],
    }


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
    parser.add_argument(
        "--select",
        help="only these assets of the job, comma-separated (e.g. ranker_model,eval_report); the "
        "others' files are read as they are",
    )
    args = parser.parse_args(argv)

    job = defs.resolve_job_def(args.job)
    if job.partitions_def is not None and not args.partition and args.job != "all_assets":
        keys = job.partitions_def.get_partition_keys()
        parser.error(f"job {args.job} needs --partition, one of {keys}")
    selection = [AssetKey(key.strip()) for key in args.select.split(",")] if args.select else None
    if selection:
        known = job.asset_layer.executable_asset_keys
        unknown = sorted(k.to_user_string() for k in selection if k not in known)
        if unknown:
            parser.error(f"--select: {unknown} not in job {args.job}")
        job = job.get_subset(asset_selection=set(selection))
    with DagsterInstance.get() as instance:
        result = job.execute_in_process(
            instance=instance,
            run_config=INFO_LOGS,
            tags={} if args.partition else partition_range_tags(args.job, args.first_month, args.last_month),
            partition_key=args.partition,
            raise_on_error=False,
        )
    failed_checks = print_summary(list(result.all_events))
    if not result.success or failed_checks:
        print(
            f"run {result.run_id} failed; blocking checks failed: {failed_checks or 'none'}", file=sys.stderr
        )
        return 1
    print(f"run {result.run_id} succeeded")
    return 0


if __name__ == "__main__":
    sys.exit(main())
