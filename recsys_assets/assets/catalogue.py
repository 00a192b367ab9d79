"""The catalogue family: raw dumps -> ``items`` and monthly ``interactions``, with their checks."""

from collections.abc import Iterator
from typing import Any

import pandas as pd
from dagster import (
    AssetCheckResult,
    AssetCheckSeverity,
    AssetCheckSpec,
    AssetExecutionContext,
    AssetIn,
    AssetKey,
    AssetOut,
    AssetRecordsFilter,
    AssetSpec,
    BackfillPolicy,
    MetadataValue,
    Output,
    multi_asset,
)

from recsys_assets.checks import check_result
from recsys_assets.core import quality
from recsys_assets.core.amazon import TS_OUT_OF_RANGE
from recsys_assets.core.staging import stage_interactions, stage_items
from recsys_assets.partitions import interaction_months
from resources.io_managers import PerPartition
from resources.raw_data import QualityPolicy, RawDataSource

GROUP = "catalogue"

raw_metadata = AssetSpec(
    "raw_metadata",
    group_name="raw",
    description="Item metadata dump (Amazon 2014/2018/2023 format); location set by RawDataSource.",
)
raw_reviews = AssetSpec(
    "raw_reviews",
    group_name="raw",
    description="Reviews dump (Amazon 2014/2018/2023 format); location set by RawDataSource.",
)


def _blocking(asset: str, name: str, description: str) -> AssetCheckSpec:
    return AssetCheckSpec(name, asset=asset, blocking=True, description=description)


ITEMS_CHECKS = [
    _blocking("items", "items_item_id_not_null", "item_id is never null."),
    _blocking("items", "items_item_id_unique", "item_id identifies one row."),
    _blocking("items", "items_quarantine_rate", "Quarantined metadata records stay under the limit."),
]


@multi_asset(
    outs={
        "items": AssetOut(
            description="One row per catalogue item: id, cleaned text fields, categories, price, image URL.",
            group_name=GROUP,
            metadata={"storage_path": "items"},
        ),
        "items_quarantine": AssetOut(
            description="Metadata records that could not be staged, with file, line and reason.",
            group_name=GROUP,
            metadata={"storage_path": "quarantine/items"},
        ),
    },
    deps=[raw_metadata.key],
    check_specs=ITEMS_CHECKS,
)
def items(
    context: AssetExecutionContext, raw_data: RawDataSource, quality_policy: QualityPolicy
) -> Iterator[Output[Any] | AssetCheckResult]:
    """Stage the metadata dump into ``items.parquet`` and its quarantine."""
    staged = stage_items(
        raw_data.metadata_uri, raw_data.format, workers=raw_data.parser_workers, progress=context.log.info
    )
    frame = staged.items
    context.log.info(
        f"{len(frame):,} items staged, {len(staged.quarantine):,} records quarantined "
        f"from {staged.records_read:,} in {staged.seconds:.1f}s"
    )
    yield Output(
        frame,
        output_name="items",
        metadata={
            "source": MetadataValue.path(raw_data.metadata_uri),
            "records_read": staged.records_read,
            "with_title": int(frame["title"].notna().sum()),
            "with_description": int(frame["description"].notna().sum()),
            "with_image_url": int(frame["image_url"].notna().sum()),
            "price_unparsed": staged.price_unparsed,
            "stage_seconds": round(staged.seconds, 2),
        },
    )
    yield Output(
        staged.quarantine, output_name="items_quarantine", metadata=_reason_counts(staged.quarantine)
    )

    yield check_result("items", "items_item_id_not_null", quality.not_null(frame, ["item_id"]))
    yield check_result("items", "items_item_id_unique", quality.unique(frame, "item_id"))
    yield check_result(
        "items",
        "items_quarantine_rate",
        quality.rate_at_most(
            len(staged.quarantine),
            staged.records_read,
            quality_policy.max_quarantine_rate,
            f"quarantined records of {raw_data.metadata_uri}",
            staged.quarantine,
        ),
    )


INTERACTIONS_CHECKS = [
    _blocking("interactions", "interactions_ids_not_null", "user_id and item_id are never null."),
    _blocking("interactions", "interactions_rating_in_range", "Ratings lie in [1, 5]."),
    _blocking(
        "interactions",
        "interactions_ts_in_month",
        "Every row's timestamp lies in its partition's month, and no record lies outside every month.",
    ),
    _blocking("interactions", "interactions_item_in_items", "Every item_id is a row of items."),
    _blocking("interactions", "interactions_no_duplicate_events", "No repeated (user_id, item_id, ts) row."),
    _blocking(
        "interactions", "interactions_quarantine_rate", "Quarantined review records stay under the limit."
    ),
    AssetCheckSpec(
        "interactions_row_count_vs_previous_month",
        asset="interactions",
        blocking=False,
        description="Warns when a month's row count moves more than the tolerance from the month before.",
    ),
]


@multi_asset(
    outs={
        "interactions": AssetOut(
            description=(
                "Reviews as implicit feedback (user_id, item_id, rating, ts), one partition per month."
            ),
            group_name=GROUP,
            metadata={"storage_path": "interactions"},
        ),
        "interactions_quarantine": AssetOut(
            description="Review records of the month (or of no month) that could not be staged.",
            group_name=GROUP,
            metadata={"storage_path": "quarantine/interactions"},
        ),
    },
    ins={"items": AssetIn(metadata={"columns": ["item_id"]})},
    deps=[raw_reviews.key],
    partitions_def=interaction_months,
    # One pass over the dump serves every month of a backfill; a per-month run would
    # re-read the whole file once per month.
    backfill_policy=BackfillPolicy.single_run(),
    check_specs=INTERACTIONS_CHECKS,
)
def interactions(
    context: AssetExecutionContext,
    items: pd.DataFrame,
    raw_data: RawDataSource,
    quality_policy: QualityPolicy,
) -> Iterator[Output[Any] | AssetCheckResult]:
    """Stage the reviews of the run's months; rematerializing a month replaces exactly that month."""
    months = list(context.partition_keys)
    keys = interaction_months.get_partition_keys()
    staged = stage_interactions(
        raw_data.reviews_uri,
        raw_data.format,
        months,
        (keys[0], _month_after(keys[-1])),
        workers=raw_data.parser_workers,
        progress=context.log.info,
    )
    rows = {month: len(frame) for month, frame in staged.months.items()}
    context.log.info(
        f"{sum(rows.values()):,} interactions in {len(months)} month(s) from "
        f"{staged.records_read:,} records in {staged.seconds:.1f}s"
    )
    yield Output(
        PerPartition(staged.months),
        output_name="interactions",
        metadata={
            "source": MetadataValue.path(raw_data.reviews_uri),
            "records_read": staged.records_read,
            "records_of_other_months": staged.records_other_months,
            "records_outside_every_month": len(staged.unassigned),
            "stage_seconds": round(staged.seconds, 2),
            "rows_by_month": MetadataValue.md(
                pd.DataFrame(
                    {
                        "month": months,
                        "rows": [rows[m] for m in months],
                        "quarantined": [len(staged.quarantine[m]) for m in months],
                    }
                ).to_markdown(index=False)
            ),
        },
    )
    yield Output(
        PerPartition(staged.quarantine),
        output_name="interactions_quarantine",
        metadata=_reason_counts(staged.unassigned),
    )
    yield from _interaction_checks(
        context, staged.months, staged.quarantine, staged.unassigned, items, quality_policy
    )


def _interaction_checks(
    context: AssetExecutionContext,
    months: dict[str, pd.DataFrame],
    quarantine: dict[str, pd.DataFrame],
    unassigned: pd.DataFrame,
    items: pd.DataFrame,
    policy: QualityPolicy,
) -> Iterator[AssetCheckResult]:
    # Checks see every month of the run at once, each row tagged with its partition.
    frame = pd.concat([f.assign(partition=month) for month, f in months.items()], ignore_index=True)
    yield check_result(
        "interactions", "interactions_ids_not_null", quality.not_null(frame, ["user_id", "item_id"])
    )
    yield check_result("interactions", "interactions_rating_in_range", quality.between(frame, "rating", 1, 5))

    frame["ts_month"] = frame["ts"].dt.strftime("%Y-%m")
    in_month = quality.columns_equal(frame, "ts_month", "partition", "ts lies in the partition's month")
    out_of_range = unassigned[unassigned["code"] == TS_OUT_OF_RANGE]
    if len(out_of_range):
        in_month = quality.CheckOutcome(
            False,
            f"{len(out_of_range):,} records have a ts outside every partitioned month "
            f"(quarantined; e.g. {out_of_range['reason'].iloc[0]}); {in_month.message}",
            in_month.observed + len(out_of_range),
            0,
            pd.concat([in_month.offending, out_of_range]).head(quality.MAX_OFFENDING),
        )
    yield check_result("interactions", "interactions_ts_in_month", in_month)
    frame = frame.drop(columns="ts_month")

    yield check_result(
        "interactions",
        "interactions_item_in_items",
        quality.present_in(frame, "item_id", items["item_id"], "items"),
    )
    yield check_result(
        "interactions",
        "interactions_no_duplicate_events",
        quality.compound_unique(frame, ["user_id", "item_id", "ts"]),
    )

    rates = [
        quality.rate_at_most(
            len(quarantine[month]),
            len(quarantine[month]) + len(months[month]),
            policy.max_quarantine_rate,
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
    yield check_result("interactions", "interactions_quarantine_rate", worst)

    changes = [
        quality.relative_change_at_most(
            len(months[month]), _previous_rows(context, month, months), policy.row_count_tolerance, month
        )
        for month in months
    ]
    flagged = [c for c in changes if not c.passed]
    summary = flagged[0] if flagged else max(changes, key=lambda c: abs(float(c.observed)))
    summary.message = "; ".join(c.message for c in flagged) if flagged else summary.message
    yield check_result(
        "interactions", "interactions_row_count_vs_previous_month", summary, AssetCheckSeverity.WARN
    )


def _previous_rows(context: AssetExecutionContext, month: str, months: dict[str, pd.DataFrame]) -> int | None:
    keys = interaction_months.get_partition_keys()
    index = keys.index(month)
    if index == 0:
        return None
    previous = keys[index - 1]
    if previous in months:
        return len(months[previous])
    records = context.instance.fetch_materializations(
        AssetRecordsFilter(asset_key=AssetKey("interactions"), asset_partitions=[previous]), limit=1
    ).records
    if not records or records[0].asset_materialization is None:
        return None
    rows = records[0].asset_materialization.metadata.get("rows")
    return int(rows.value) if rows is not None else None


def _month_after(month: str) -> str:
    year, mon = (int(part) for part in month.split("-"))
    return f"{year + mon // 12:04d}-{mon % 12 + 1:02d}"


def _reason_counts(quarantine: pd.DataFrame) -> dict[str, Any]:
    counts = {str(code): int(n) for code, n in quarantine["code"].value_counts().items()}
    return {"quarantined": len(quarantine), "by_code": MetadataValue.json(counts)}
