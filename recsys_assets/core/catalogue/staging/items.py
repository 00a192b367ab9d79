"""Staging the metadata dump into ``items``: sharded by item, repeated lines merged into the
item's record (and listed in the quarantine)."""

from __future__ import annotations

import time
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.parquet as pq

from recsys_assets.core.catalogue.amazon import (
    ITEM_SCHEMA,
    REPEATED_ITEM,
    parse_metadata_block,
)
from recsys_assets.core.catalogue.spill import Spill
from recsys_assets.core.catalogue.staging.quarantine import (
    Progress,
    block_quarantine,
    parsed_blocks,
    quarantine_frame,
    quarantine_of,
    write_quarantine,
)
from recsys_assets.core.io.storage import size_of

#: Compressed bytes of metadata per item shard: a shard is merged in memory at once.
ITEM_SHARD_BYTES = 64 * 1024 * 1024


@dataclass
class StagedItems:
    #: ``items.parquet`` and its quarantine, under the scratch folder.
    path: Path
    quarantine_path: Path
    items: int
    records_read: int
    blank_lines: int
    #: Records that could not be staged (not counting repeated lines).
    invalid: int
    #: Lines repeating an item already seen, merged into its record.
    repeated_lines: int
    #: Items whose repeated lines disagree, per field.
    conflicts: Counter[str]
    #: Up to ten conflicting items per field: item_id, field, values found.
    conflict_examples: pd.DataFrame
    #: Optional fields stored as null because their value was unusable, by ``field: what``.
    nulled: Counter[str]
    seconds: float

    @property
    def quarantine_rate(self) -> float:
        return self.invalid / self.records_read if self.records_read else 0.0

    @property
    def price_unparsed(self) -> int:
        return sum(n for key, n in self.nulled.items() if key.startswith("price:"))

    def load_items(self, columns: list[str] | None = None) -> pd.DataFrame:
        return pd.read_parquet(self.path, columns=columns)

    def load_quarantine(self) -> pd.DataFrame:
        return pd.read_parquet(self.quarantine_path)


def item_shards(uri: str) -> int:
    """How many buckets a metadata dump is merged in: one per ``ITEM_SHARD_BYTES`` of file."""
    size = size_of(uri)
    return 1 if size is None else max(1, -(-size // ITEM_SHARD_BYTES))


def _shard_of(item_ids: pa.Array, shards: int) -> np.ndarray:
    # pandas' hash is seeded with a fixed key: the same id lands in the same shard in every
    # process and run.
    hashes = pd.util.hash_array(np.asarray(item_ids.to_numpy(zero_copy_only=False), dtype=object))
    return (hashes % np.uint64(shards)).astype(np.int64)


def stage_items(
    uri: str,
    fmt: str,
    out: Path,
    *,
    workers: int | None = None,
    progress: Progress | None = None,
    shards: int | None = None,
) -> StagedItems:
    """Parse a metadata dump into one row per item, written to ``out/items.parquet``.

    Repeated lines of one item merge into one record (see ``merge_repeated_items``); items
    keep the order of their first line within each shard (one shard per 64 MB of dump).
    """
    started = time.perf_counter()
    shards = shards or item_shards(uri)
    spill = Spill(out / ".spill-items", ITEM_SCHEMA)
    invalid_parts: list[pa.Table] = []
    records = blank = 0
    nulled: Counter[str] = Counter()
    try:
        for block in parsed_blocks(uri, parse_metadata_block, fmt, workers, progress):
            records += block.records
            blank += block.blank_lines
            nulled.update(block.nulled)
            invalid_parts.append(block_quarantine(uri, block))
            if shards == 1:
                spill.append("0", block.table)
                continue
            shard = _shard_of(block.table.column("item_id").combine_chunks(), shards)
            for index in np.unique(shard):
                spill.append(str(index), block.table.filter(pa.array(shard == index)))

        path, quarantine_path = out / "items.parquet", out / "items_quarantine.parquet"
        writer = pq.ParquetWriter(path, ITEM_SCHEMA.remove(ITEM_SCHEMA.get_field_index("line")))
        repeated_parts = []
        conflicts: Counter[str] = Counter()
        examples = []
        n_items = 0
        try:
            for index in range(shards):
                table = spill.read(str(index))
                # Only the items on several lines go through pandas to be merged; the rest
                # (nearly all, usually) stay Arrow columns.
                counts = pc.value_counts(table["item_id"])
                many = counts.field("values").filter(pc.greater(counts.field("counts"), 1))
                repeated = pc.is_in(table["item_id"], value_set=many)
                merged = merge_repeated_items(table.filter(repeated).to_pandas(), uri)
                combined = pa.concat_tables(
                    [table.filter(pc.invert(repeated)),
                     pa.Table.from_pandas(merged.items[list(ITEM_SCHEMA.names)], schema=ITEM_SCHEMA,
                                          preserve_index=False)]
                )  # fmt: skip
                combined = combined.take(pc.sort_indices(combined, sort_keys=[("line", "ascending")]))
                writer.write_table(combined.drop_columns(["line"]))
                n_items += combined.num_rows
                repeated_parts.append(merged.repeated)
                conflicts.update(merged.conflicts)
                examples.append(merged.examples)
        finally:
            writer.close()
    finally:
        spill.close()
    invalid = (
        quarantine_of(pa.concat_tables(invalid_parts))
        if invalid_parts
        else quarantine_frame(uri, [], [], [], [])
    )
    write_quarantine([invalid, *repeated_parts], quarantine_path)
    example_frame = pd.concat(examples, ignore_index=True) if examples else _EMPTY_EXAMPLES
    return StagedItems(
        path=path,
        quarantine_path=quarantine_path,
        items=n_items,
        records_read=records,
        blank_lines=blank,
        invalid=len(invalid),
        repeated_lines=sum(len(part) for part in repeated_parts),
        conflicts=conflicts,
        conflict_examples=example_frame.groupby("field").head(10).reset_index(drop=True),
        nulled=nulled,
        seconds=time.perf_counter() - started,
    )


_EMPTY_EXAMPLES = pd.DataFrame({"item_id": [], "field": [], "values": []}, dtype=object)
_TEXT_FIELDS = ("title", "description", "brand", "image_url")


@dataclass
class MergedItems:
    items: pd.DataFrame
    repeated: pd.DataFrame
    conflicts: Counter[str] = field(default_factory=Counter)
    examples: pd.DataFrame = field(default_factory=lambda: _EMPTY_EXAMPLES)


def merge_repeated_items(frame: pd.DataFrame, uri: str) -> MergedItems:
    """One row per item from parsed metadata rows (with ``line``), in order of first line.

    For an item on several lines each field takes its most complete value: the longest
    text, the longest category list, the first price; ties go to the earlier line. A field
    with two or more different values among the lines is a conflict, counted per field.
    Every line after an item's first is returned as a ``repeated_item`` quarantine row.
    """
    frame = frame.sort_values("line", kind="stable").reset_index(drop=True)
    repeated = frame["item_id"].duplicated(keep=False)
    if not repeated.any():
        return MergedItems(frame, quarantine_frame(uri, [], [], [], []))
    group = frame[repeated]
    first = group.drop_duplicates("item_id").set_index("item_id")
    merged = first.copy()
    conflicts: Counter[str] = Counter()
    examples = []
    conflicting: dict[str, list[str]] = {}

    def pick(name: str, values: pd.DataFrame, size: pd.Series | None, key: pd.Series) -> None:
        ranked = values.assign(_size=0 if size is None else -size).sort_values(
            ["item_id", "_size", "line"], kind="stable"
        )
        best = ranked.drop_duplicates("item_id").set_index("item_id")[name]
        merged[name] = best.reindex(merged.index).where(lambda s: s.notna(), None)
        distinct = values.assign(_key=key).groupby("item_id")["_key"].agg(lambda s: list(dict.fromkeys(s)))
        clashing = distinct[distinct.map(len) > 1]
        conflicts[name] = len(clashing)
        for item_id in clashing.index:
            conflicting.setdefault(item_id, []).append(name)
        examples.append(
            pd.DataFrame(
                {
                    "item_id": clashing.index[:10],
                    "field": name,
                    "values": [" | ".join(v[:80] for v in vals[:3]) for vals in clashing.iloc[:10]],
                }
            )
        )

    for name in _TEXT_FIELDS:
        values = group.loc[group[name].notna(), ["item_id", "line", name]]
        pick(name, values, values[name].str.len(), values[name])
    values = group.loc[group["categories"].map(len) > 0, ["item_id", "line", "categories"]]
    pick("categories", values, values["categories"].map(len), values["categories"].map(" > ".join))
    values = group.loc[group["price"].notna(), ["item_id", "line", "price"]]
    pick("price", values, None, values["price"].map(repr))
    merged["categories"] = merged["categories"].map(lambda c: c if isinstance(c, list | np.ndarray) else [])
    merged["price"] = merged["price"].astype("float64")
    items = pd.concat([frame[~repeated], merged.reset_index()], ignore_index=True)
    items = items.sort_values("line", kind="stable").reset_index(drop=True)

    later = group[group["item_id"].duplicated(keep="first")]
    kept = first["line"].reindex(later["item_id"]).to_numpy()
    reasons = [
        f"repeats item {item_id!r} of line {line}; merged into one record"
        + (f" (conflicting: {', '.join(conflicting[item_id])})" if item_id in conflicting else "")
        for item_id, line in zip(later["item_id"], kept, strict=True)
    ]
    quarantine = quarantine_frame(
        uri,
        later["line"].tolist(),
        [REPEATED_ITEM] * len(later),
        reasons,
        [f"item_id={item_id}" for item_id in later["item_id"]],
        kept.tolist(),
    )
    example_frame = pd.concat(examples, ignore_index=True) if examples else _EMPTY_EXAMPLES
    return MergedItems(items, quarantine, +conflicts, example_frame)
