"""What a run of the graph did, printed the same way whether it ran in this process
(``materialize``) or was launched in the UI's instance and followed there (``live_run``):
each asset materialized and each check's verdict, and whether a blocking check failed."""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterable

from dagster import AssetCheckEvaluation, DagsterEvent, DagsterEventType


def materialized(events: Iterable[DagsterEvent]) -> Counter[str]:
    """Materializations per asset key (a partitioned asset counts each partition)."""
    counts: Counter[str] = Counter()
    for event in events:
        if event.event_type == DagsterEventType.ASSET_MATERIALIZATION:
            counts[event.asset_key.to_user_string() if event.asset_key else "?"] += 1
    return counts


def check_evaluations(events: Iterable[DagsterEvent]) -> list[AssetCheckEvaluation]:
    return [
        event.event_specific_data
        for event in events
        if event.event_type == DagsterEventType.ASSET_CHECK_EVALUATION
        and isinstance(event.event_specific_data, AssetCheckEvaluation)
    ]


def print_summary(events: list[DagsterEvent]) -> list[str]:
    """Print every materialized asset and every check; return the blocking checks that failed."""
    for key, count in sorted(materialized(events).items()):
        print(f"materialized {key}: {count} partition(s)" if count > 1 else f"materialized {key}")
    failed = []
    for evaluation in check_evaluations(events):
        status = "passed" if evaluation.passed else f"FAILED ({evaluation.severity.value})"
        print(f"check {evaluation.check_name}: {status}: {evaluation.description}")
        if not evaluation.passed and evaluation.blocking:
            failed.append(evaluation.check_name)
    return failed
