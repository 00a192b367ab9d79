"""The catalogue family: raw dumps -> ``items`` and monthly ``interactions``, with their checks."""

from collections.abc import Iterator
from functools import partial
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

from recsys_assets.core.catalogue.bigquery_staging import stage_interactions_bigquery, stage_items_bigquery
from recsys_assets.core.catalogue.checks import interactions_outcomes, items_outcomes
from recsys_assets.core.catalogue.staging import month_index, month_label, stage_interactions, stage_items
from recsys_assets.core.io.artifacts import INTERACTIONS, INTERACTIONS_QUARANTINE, ITEMS, ITEMS_QUARANTINE
from recsys_assets.core.io.codecs import ParquetFile
from recsys_assets.core.io.storage import scratch_dir
from recsys_assets.defs.assets.check_results import check_result
from recsys_assets.defs.environments import SettingsResource
from recsys_assets.defs.io_manager import PerPartition, artifact_metadata
from recsys_assets.defs.partitions import interaction_months

GROUP = "catalogue"

raw_metadata = AssetSpec(
    "raw_metadata",
    group_name="raw",
    description="Item metadata dump (Amazon 2014/2018/2023 format); location: setting data.metadata_uri.",
)
raw_reviews = AssetSpec(
    "raw_reviews",
    group_name="raw",
    description="Reviews dump (Amazon 2014/2018/2023 format); location: setting data.reviews_uri.",
)


def _blocking(asset: str, name: str, description: str) -> AssetCheckSpec:
    return AssetCheckSpec(name, asset=asset, blocking=True, description=description)


SEVERITY = {
    name: AssetCheckSeverity.WARN
    for name in (
        "interactions_row_count_vs_previous_month",
        "interactions_duplicate_share",
        "items_repeated_lines",
    )
}


ITEMS_CHECKS = [
    _blocking("items", "items_item_id_not_null", "item_id is never null."),
    _blocking("items", "items_item_id_unique", "item_id identifies one row."),
    _blocking("items", "items_quarantine_rate", "Invalid metadata records stay under the limit."),
    AssetCheckSpec(
        "items_repeated_lines",  # severity WARN, see SEVERITY
        asset="items",
        blocking=False,
        description="Warns when many metadata lines repeat an item (they are merged) and shows conflicts.",
    ),
]


@multi_asset(
    outs={
        "items": AssetOut(
            description="One row per catalogue item: id, cleaned text fields, categories, price, image URL.",
            group_name=GROUP,
            metadata=artifact_metadata(ITEMS),
        ),
        "items_quarantine": AssetOut(
            description="Metadata records that could not be staged, with file, line and reason.",
            group_name=GROUP,
            metadata=artifact_metadata(ITEMS_QUARANTINE),
        ),
    },
    deps=[raw_metadata.key],
    check_specs=ITEMS_CHECKS,
)
def items(
    context: AssetExecutionContext, settings: SettingsResource
) -> Iterator[Output[Any] | AssetCheckResult]:
    """Stage the metadata dump into ``items.parquet`` and its quarantine."""
    data = settings.tree.data
    with scratch_dir("items") as scratch:
        stage = (
            partial(stage_items_bigquery, settings.bigquery_staging())
            if data.staging_engine == "bigquery"
            else stage_items
        )
        staged = stage(
            data.metadata_uri,
            data.format,
            scratch,
            workers=data.parser_workers or None,
            progress=context.log.info,
        )
        context.log.info(
            f"{staged.items:,} items staged from {staged.records_read:,} records in {staged.seconds:.1f}s: "
            f"{staged.repeated_lines:,} repeated lines merged, "
            f"{staged.invalid:,} invalid records quarantined, "
            f"{staged.blank_lines:,} blank lines"
        )
        texts = staged.load_items(["title", "description", "image_url"]).notna().sum()
        yield Output(
            ParquetFile(staged.path),
            output_name="items",
            metadata={
                "source": MetadataValue.path(data.metadata_uri),
                "records_read": staged.records_read,
                "blank_lines": staged.blank_lines,
                "repeated_lines_merged": staged.repeated_lines,
                "items_with_conflicting_lines": MetadataValue.json(dict(staged.conflicts)),
                "with_title": int(texts["title"]),
                "with_description": int(texts["description"]),
                "with_image_url": int(texts["image_url"]),
                "price_unparsed": staged.price_unparsed,
                "fields_set_to_null": MetadataValue.json(dict(staged.nulled)),
                "staging_engine": data.staging_engine,
                "stage_seconds": round(staged.seconds, 2),
            },
        )
        quarantine = staged.load_quarantine()
        yield Output(ParquetFile(staged.quarantine_path), output_name="items_quarantine",
                     metadata=_reason_counts(quarantine))  # fmt: skip

        outcomes = items_outcomes(
            staged, quarantine, data.metadata_uri, data.max_quarantine_rate, data.duplicate_warn_share
        )
    for name, outcome in outcomes.items():
        yield check_result("items", name, outcome, SEVERITY.get(name, AssetCheckSeverity.ERROR))


INTERACTIONS_CHECKS = [
    _blocking("interactions", "interactions_ids_not_null", "user_id and item_id are never null."),
    _blocking("interactions", "interactions_rating_in_range", "Ratings lie in [1, 5]."),
    _blocking(
        "interactions",
        "interactions_ts_in_month",
        "Every row's timestamp lies in its partition's month, and no record lies outside every month.",
    ),
    _blocking("interactions", "interactions_item_in_items", "Every item_id is a row of items."),
    _blocking(
        "interactions",
        "interactions_no_duplicate_events",
        "No repeated (user_id, item_id, ts) row is staged.",
    ),
    _blocking("interactions", "interactions_quarantine_rate", "Invalid review records stay under the limit."),
    AssetCheckSpec(
        "interactions_duplicate_share",  # severity WARN, see SEVERITY
        asset="interactions",
        blocking=False,
        description="Warns when many reviews repeat an earlier one (they are collapsed), with examples.",
    ),
    AssetCheckSpec(
        "interactions_row_count_vs_previous_month",  # severity WARN, see SEVERITY
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
            metadata=artifact_metadata(INTERACTIONS),
        ),
        "interactions_quarantine": AssetOut(
            description="Review records of the month (or of no month) that could not be staged.",
            group_name=GROUP,
            metadata=artifact_metadata(INTERACTIONS_QUARANTINE),
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
    context: AssetExecutionContext, items: pd.DataFrame, settings: SettingsResource
) -> Iterator[Output[Any] | AssetCheckResult]:
    """Stage the reviews of the run's months; rematerializing a month replaces exactly that month."""
    data = settings.tree.data
    months = list(context.partition_keys)
    keys = interaction_months.get_partition_keys()
    with scratch_dir("interactions") as scratch:
        span = (keys[0], month_label(month_index(keys[-1]) + 1))
        stage = (
            partial(stage_interactions_bigquery, settings.bigquery_staging())
            if data.staging_engine == "bigquery"
            else stage_interactions
        )
        staged = stage(
            data.reviews_uri, data.format, months, span, scratch,
            workers=data.parser_workers or None, progress=context.log.info,
        )  # fmt: skip
        context.log.info(
            f"{staged.rows:,} interactions in {len(months)} month(s) from {staged.records_read:,} records "
            f"in {staged.seconds:.1f}s: {staged.duplicates:,} duplicates collapsed, "
            f"{staged.blank_lines:,} blank lines"
        )
        yield Output(
            PerPartition({month: ParquetFile(m.path) for month, m in staged.months.items()}),
            output_name="interactions",
            metadata={
                "source": MetadataValue.path(data.reviews_uri),
                "records_read": staged.records_read,
                "blank_lines": staged.blank_lines,
                "duplicates_collapsed": staged.duplicates,
                "records_of_other_months": staged.records_other_months,
                "records_outside_every_month": len(staged.unassigned),
                "stage_seconds": round(staged.seconds, 2),
                "staging_engine": data.staging_engine,
                "rows_by_month": MetadataValue.md(staged.rows_by_month()),
            },
        )
        yield Output(
            PerPartition({month: ParquetFile(m.quarantine_path) for month, m in staged.months.items()}),
            output_name="interactions_quarantine",
            metadata=_reason_counts(staged.unassigned),
        )
        outcomes = interactions_outcomes(
            staged,
            items["item_id"],
            first_month=keys[0],
            max_quarantine_rate=data.max_quarantine_rate,
            row_count_tolerance=data.row_count_tolerance,
            duplicate_warn_share=data.duplicate_warn_share,
            stored_rows=lambda month: _stored_rows(context, month),
        )
    for name, outcome in outcomes.items():
        yield check_result("interactions", name, outcome, SEVERITY.get(name, AssetCheckSeverity.ERROR))


def _stored_rows(context: AssetExecutionContext, month: str) -> int | None:
    """Rows of ``month`` as recorded by its latest materialization, if any."""
    records = context.instance.fetch_materializations(
        AssetRecordsFilter(asset_key=AssetKey("interactions"), asset_partitions=[month]), limit=1
    ).records
    if not records or records[0].asset_materialization is None:
        return None
    rows = records[0].asset_materialization.metadata.get("rows")
    return int(rows.value) if rows is not None else None


def _reason_counts(quarantine: pd.DataFrame) -> dict[str, Any]:
    counts = {str(code): int(n) for code, n in quarantine["code"].value_counts().items()}
    return {"quarantined": len(quarantine), "by_code": MetadataValue.json(counts)}
