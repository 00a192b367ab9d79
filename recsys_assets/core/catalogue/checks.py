"""The data-quality verdicts on staged ``items`` and ``interactions``, keyed by check name.

The Dagster assets declare one asset check per key and report these outcomes unchanged;
the rules themselves live in ``quality``.
"""

from __future__ import annotations

from collections.abc import Callable

import pandas as pd

from recsys_assets.core.catalogue import quality
from recsys_assets.core.catalogue.amazon import TS_OUT_OF_RANGE
from recsys_assets.core.catalogue.staging import StagedInteractions, StagedItems, month_index, month_label
from recsys_assets.core.outcomes import MAX_OFFENDING, CheckOutcome


def items_outcomes(staged: StagedItems, uri: str, max_quarantine_rate: float) -> dict[str, CheckOutcome]:
    return {
        "items_item_id_not_null": quality.not_null(staged.items, ["item_id"]),
        "items_item_id_unique": quality.unique(staged.items, "item_id"),
        "items_quarantine_rate": quality.rate_at_most(
            len(staged.quarantine),
            staged.records_read,
            max_quarantine_rate,
            f"quarantined records of {uri}",
            staged.quarantine,
        ),
    }


def interactions_outcomes(
    staged: StagedInteractions,
    item_ids: pd.Series,
    *,
    first_month: str,
    max_quarantine_rate: float,
    row_count_tolerance: float,
    stored_rows: Callable[[str], int | None],
) -> dict[str, CheckOutcome]:
    """Every check over all months of one run; ``stored_rows(month)`` gives the row count of
    a month staged by an earlier run (or ``None``), for the month-over-month comparison."""
    months, quarantine = staged.months, staged.quarantine
    # Rules see every month of the run at once, each row tagged with its partition.
    frame = pd.concat([f.assign(partition=month) for month, f in months.items()], ignore_index=True)
    outcomes = {
        "interactions_ids_not_null": quality.not_null(frame, ["user_id", "item_id"]),
        "interactions_rating_in_range": quality.between(frame, "rating", 1, 5),
        "interactions_ts_in_month": _ts_in_month(frame, staged.unassigned),
        "interactions_item_in_items": quality.present_in(frame, "item_id", item_ids, "items"),
        "interactions_no_duplicate_events": quality.compound_unique(frame, ["user_id", "item_id", "ts"]),
    }

    rates = [
        quality.rate_at_most(
            len(quarantine[month]),
            len(quarantine[month]) + len(months[month]),
            max_quarantine_rate,
            f"month {month}",
            quarantine[month],
        )
        for month in months
    ]
    worst = max(rates, key=lambda outcome: float(outcome.observed))
    failing = [o for o in rates if not o.passed]
    worst.message = (
        f"{len(failing)} of {len(rates)} month(s) over the limit; worst {worst.message}"
        if failing
        else f"all {len(rates)} month(s) within the limit; worst {worst.message}"
    )
    outcomes["interactions_quarantine_rate"] = worst

    def previous_rows(month: str) -> int | None:
        if month == first_month:
            return None
        previous = month_label(month_index(month) - 1)
        return len(months[previous]) if previous in months else stored_rows(previous)

    changes = [
        quality.relative_change_at_most(len(months[m]), previous_rows(m), row_count_tolerance, m)
        for m in months
    ]
    flagged = [c for c in changes if not c.passed]
    summary = flagged[0] if flagged else max(changes, key=lambda c: abs(float(c.observed)))
    summary.message = "; ".join(c.message for c in flagged) if flagged else summary.message
    outcomes["interactions_row_count_vs_previous_month"] = summary
    return outcomes


def _ts_in_month(frame: pd.DataFrame, unassigned: pd.DataFrame) -> CheckOutcome:
    """Stored rows outside their partition's month, plus records outside every month."""
    tagged = frame.assign(ts_month=frame["ts"].dt.strftime("%Y-%m"))
    in_month = quality.columns_equal(tagged, "ts_month", "partition", "ts lies in the partition's month")
    out_of_range = unassigned[unassigned["code"] == TS_OUT_OF_RANGE]
    if not len(out_of_range):
        return in_month
    return CheckOutcome(
        False,
        f"{len(out_of_range):,} records have a ts outside every partitioned month "
        f"(quarantined; e.g. {out_of_range['reason'].iloc[0]}); {in_month.message}",
        in_month.observed + len(out_of_range),
        0,
        pd.concat([in_month.offending, out_of_range]).head(MAX_OFFENDING),
    )
