"""Stage raw Amazon dumps into the ``items`` table and monthly ``interactions`` tables.

Nothing is dropped silently: every raw record ends up as a row of a table, as a quarantine
row that names the file, the line and the reason, or (a blank line) in a count.

Memory stays flat in the size of a dump: blocks are parsed on every core, their rows go to
on-disk buckets (one per month, one per item shard) as they come, and only one bucket is
held at a time to deduplicate, sort and write it. Results are parquet files under ``out``
(a local scratch folder); the caller publishes them (the IO manager copies them to the
artifact store), so a failure part-way leaves the stored partitions as they were.

Duplicates (see the README): a review with the same user, item and timestamp as an earlier
line is the same event and collapses into it; a metadata line for an item already seen is
merged into that item's record. Both are listed in the quarantine with the line of the
record kept (codes ``duplicate`` and ``repeated_item``) and counted apart from invalid
records, which alone count towards the quarantine rates.
"""

from recsys_assets.core.catalogue.staging.interactions import (
    INTERACTION_SCHEMA,
    StagedInteractions,
    StagedMonth,
    month_index,
    month_label,
    stage_interactions,
)
from recsys_assets.core.catalogue.staging.items import (
    MergedItems,
    StagedItems,
    merge_repeated_items,
    stage_items,
)
from recsys_assets.core.catalogue.staging.quarantine import (
    QUARANTINE_COLUMNS,
    QUARANTINE_SCHEMA,
    invalid_only,
    quarantine_frame,
    write_quarantine,
)

__all__ = [
    "INTERACTION_SCHEMA",
    "QUARANTINE_COLUMNS",
    "QUARANTINE_SCHEMA",
    "MergedItems",
    "StagedInteractions",
    "StagedItems",
    "StagedMonth",
    "invalid_only",
    "merge_repeated_items",
    "month_index",
    "month_label",
    "quarantine_frame",
    "stage_interactions",
    "stage_items",
    "write_quarantine",
]
