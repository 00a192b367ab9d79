"""The data-quality verdicts on staged ``items`` and ``interactions``, keyed by check name.

The Dagster assets declare one asset check per key and report these outcomes unchanged;
the rules themselves live in ``quality``.
"""

from __future__ import annotations

from collections.abc import Callable

import pandas as pd

from recsys_assets.core.catalogue import quality
from recsys_assets.core.catalogue.amazon import TS_OUT_OF_RANGE
from recsys_assets.core.catalogue.staging import (
    StagedInteractions,
    StagedItems,
    invalid_only,
    month_index,
    month_label,
)
from recsys_assets.core.outcomes import MAX_OFFENDING, CheckOutcome

#: Rows the interaction checks hold at once: months are validated a few at a time.
WINDOW_ROWS = 500_000


def items_outcomes(
    staged: StagedItems,
    quarantine: pd.DataFrame,
    uri: str,
    max_quarantine_rate: float,
    duplicate_warn_share: float,
) -> dict[str, CheckOutcome]:
    """``quarantine``: the staged quarantine, as loaded by the caller (who shows it too)."""
    ids = staged.load_items(["item_id"])
    return {
        "items_item_id_not_null": quality.not_null(ids, ["item_id"]),
        "items_item_id_unique": quality.unique(ids, "item_id"),
        "items_quarantine_rate": quality.rate_at_most(
            staged.invalid,
            staged.records_read,
            max_quarantine_rate,
            f"invalid records of {uri}",
            invalid_only(quarantine),
        ),
        "items_repeated_lines": _repeated_items(staged, quarantine, duplicate_warn_share),
    }


def _repeated_items(staged: StagedItems, quarantine: pd.DataFrame, warn_share: float) -> CheckOutcome:
    share = staged.repeated_lines / staged.records_read if staged.records_read else 0.0
    clashes = ", ".join(f"{name} x{n}" for name, n in staged.conflicts.most_common()) or "none"
    examples = staged.conflict_examples
    if not len(examples):
        examples = quarantine[quarantine["code"] == "repeated_item"].head(MAX_OFFENDING)
    return CheckOutcome(
        share <= warn_share,
        f"{staged.repeated_lines:,} of {staged.records_read:,} metadata lines ({share:.2%}) repeat an item "
        f"already seen and were merged into its record; items with conflicting fields: {clashes}",
        share,
        warn_share,
        examples.head(MAX_OFFENDING),
        {"repeated_lines": staged.repeated_lines, "conflicting_items": dict(staged.conflicts)},
    )


def interactions_outcomes(
    staged: StagedInteractions,
    item_ids: pd.Series,
    *,
    first_month: str,
    max_quarantine_rate: float,
    row_count_tolerance: float,
    duplicate_warn_share: float,
    stored_rows: Callable[[str], int | None],
) -> dict[str, CheckOutcome]:
    """Every check over all months of one run; ``stored_rows(month)`` gives the row count of
    a month staged by an earlier run (or ``None``), for the month-over-month comparison.

    The row-level rules read the staged months back a window at a time, so a backfill of
    every month is checked without holding them all.
    """
    months = staged.months
    known = pd.Index(item_ids)
    parts: dict[str, list[CheckOutcome]] = {}
    for frame in staged.windows(WINDOW_ROWS):
        # Months as datetimes: comparing them is far cheaper than formatting every ts.
        frame["ts_month"] = (
            frame["ts"].dt.tz_localize(None).to_numpy().astype("datetime64[M]").astype("datetime64[ns]")
        )
        frame["partition_month"] = pd.to_datetime(frame["partition"]).to_numpy().astype("datetime64[ns]")
        window = _window_outcomes(frame, known)
        for name, outcome in window.items():
            parts.setdefault(name, []).append(outcome)
    outcomes = {name: quality.combine(found) for name, found in parts.items()}
    outcomes["interactions_ts_in_month"] = _with_out_of_range(
        outcomes["interactions_ts_in_month"], staged.unassigned
    )

    rates = [
        quality.rate_at_most(
            m.invalid,
            m.records,
            max_quarantine_rate,
            f"month {month}",
            invalid_only(m.load_quarantine()),
        )
        for month, m in months.items()
    ]
    worst = max(rates, key=lambda outcome: float(outcome.observed))
    failing = [o for o in rates if not o.passed]
    worst.message = (
        f"{len(failing)} of {len(rates)} month(s) over the limit; worst {worst.message}"
        if failing
        else f"all {len(rates)} month(s) within the limit; worst {worst.message}"
    )
    outcomes["interactions_quarantine_rate"] = worst
    outcomes["interactions_duplicate_share"] = _duplicate_share(staged, duplicate_warn_share)

    def previous_rows(month: str) -> int | None:
        if month == first_month:
            return None
        previous = month_label(month_index(month) - 1)
        return months[previous].rows if previous in months else stored_rows(previous)

    changes = [
        quality.relative_change_at_most(m.rows, previous_rows(month), row_count_tolerance, month)
        for month, m in months.items()
    ]
    flagged = [c for c in changes if not c.passed]
    summary = flagged[0] if flagged else max(changes, key=lambda c: abs(float(c.observed)))
    summary.message = "; ".join(c.message for c in flagged) if flagged else summary.message
    outcomes["interactions_row_count_vs_previous_month"] = summary
    return outcomes


def _window_outcomes(frame: pd.DataFrame, known: pd.Index) -> dict[str, CheckOutcome]:
    """The row-level rules on one window, validated by GX as one suite."""
    ids = ["user_id", "item_id"]
    *nulls, rating, in_month, distinct = quality.check_rules(
        frame,
        [
            *(quality.rule_not_null(c) for c in ids),
            quality.rule_between("rating", 1, 5),
            quality.rule_equal("ts_month", "partition_month", "ts lies in the partition's month"),
            quality.rule_compound_unique(["user_id", "item_id", "ts"]),
        ],
    )
    return {
        "interactions_ids_not_null": quality.no_nulls(frame, ids, nulls),
        "interactions_rating_in_range": rating,
        "interactions_ts_in_month": in_month,
        "interactions_item_in_items": quality.present_in(frame, "item_id", known, "items"),
        "interactions_no_duplicate_events": distinct,
    }


def _duplicate_share(staged: StagedInteractions, warn_share: float) -> CheckOutcome:
    events = staged.rows + staged.duplicates
    share = staged.duplicates / events if events else 0.0
    worst = max(staged.months.items(), key=lambda kv: kv[1].duplicates, default=None)
    where = f"; most in {worst[0]} ({worst[1].duplicates:,})" if worst and worst[1].duplicates else ""
    return CheckOutcome(
        share <= warn_share,
        f"{staged.duplicates:,} of {events:,} review records ({share:.2%}) repeat an earlier review "
        f"(same user_id, item_id and ts) and were collapsed into it{where}",
        share,
        warn_share,
        staged.duplicate_examples,
        {"duplicates": staged.duplicates},
    )


def _with_out_of_range(in_month: CheckOutcome, unassigned: pd.DataFrame) -> CheckOutcome:
    """Stored rows outside their partition's month, plus records outside every month."""
    out_of_range = unassigned[unassigned["code"] == TS_OUT_OF_RANGE]
    if not len(out_of_range):
        return in_month
    return CheckOutcome(
        False,
        f"{len(out_of_range):,} records have a ts outside every partitioned month "
        f"(quarantined; e.g. {out_of_range['reason'].iloc[0]}); {in_month.message}",
        float(in_month.observed) + len(out_of_range),
        0,
        pd.concat([in_month.offending, out_of_range]).head(MAX_OFFENDING),
    )
