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

from __future__ import annotations

import time
from collections import Counter
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.parquet as pq

from recsys_assets.core.catalogue.amazon import (
    DUPLICATE,
    ITEM_SCHEMA,
    NOT_INVALID,
    REPEATED_ITEM,
    REVIEW_SCHEMA,
    TS_OUT_OF_RANGE,
    ParsedBlock,
    parse_metadata_block,
    parse_reviews_block,
)
from recsys_assets.core.catalogue.blocks import CorruptInputError, map_blocks
from recsys_assets.core.catalogue.spill import Spill
from recsys_assets.core.io.storage import size_of

QUARANTINE_SCHEMA = pa.schema(
    [("file", pa.string()), ("line", pa.int64()), ("code", pa.string()), ("reason", pa.string()),
     ("record", pa.string()), ("kept_line", pa.int64())]
)  # fmt: skip
QUARANTINE_COLUMNS = tuple(QUARANTINE_SCHEMA.names)
#: Quarantine rows carry the month they are charged to while they wait in a spill bucket.
_SPILLED_QUARANTINE = QUARANTINE_SCHEMA.append(pa.field("ts", pa.int64()))
#: Compressed bytes of metadata per item shard: a shard is merged in memory at once.
ITEM_SHARD_BYTES = 64 * 1024 * 1024
Progress = Callable[[str], None]


def quarantine_frame(
    file: str,
    lines: Sequence[int],
    codes: Sequence[str],
    reasons: Sequence[str],
    records: Sequence[str],
    kept_lines: Sequence[int | None] | None = None,
) -> pd.DataFrame:
    return pd.DataFrame(
        {
            "file": pd.Series([file] * len(lines), dtype=object),
            "line": pd.Series(lines, dtype="int64"),
            "code": pd.Series(codes, dtype=object),
            "reason": pd.Series(reasons, dtype=object),
            "record": pd.Series(records, dtype=object),
            "kept_line": pd.Series(
                kept_lines if kept_lines is not None else [None] * len(lines), dtype="Int64"
            ),
        },
        columns=list(QUARANTINE_COLUMNS),
    )


def _block_quarantine(uri: str, block: ParsedBlock) -> pa.Table:
    n = len(block.quarantine_lines)
    return pa.Table.from_arrays(
        [pa.array([uri] * n, pa.string()), pa.array(block.quarantine_lines, pa.int64()),
         pa.array(block.quarantine_codes, pa.string()), pa.array(block.quarantine_reasons, pa.string()),
         pa.array(block.quarantine_records, pa.string()), pa.nulls(n, pa.int64()),
         pa.array(block.quarantine_ts, pa.int64())],
        schema=_SPILLED_QUARANTINE,
    )  # fmt: skip


def _quarantine_of(table: pa.Table) -> pd.DataFrame:
    frame = table.drop_columns(["ts"]).to_pandas() if "ts" in table.column_names else table.to_pandas()
    frame["kept_line"] = frame["kept_line"].astype("Int64")
    return frame


def _blocks(
    uri: str,
    parse: Callable[[str, int, bytes], ParsedBlock],
    fmt: str,
    workers: int | None,
    progress: Progress | None,
) -> Iterator[ParsedBlock]:
    """Parsed blocks of ``uri``; a corrupt file stops with what was (not) written."""
    try:
        yield from map_blocks(uri, parse, fmt, workers=workers, progress=progress)
    except CorruptInputError as exc:
        raise CorruptInputError(
            f"{exc}. Nothing from this file was staged: the stored partitions are still those of "
            "the last successful run."
        ) from exc


def write_quarantine(parts: Sequence[pd.DataFrame], path: Path) -> Path:
    """The quarantine rows of ``parts`` as one file, ordered by line, in one schema."""
    frame = pd.concat(parts, ignore_index=True).astype({"line": "int64", "kept_line": "Int64"})
    path.parent.mkdir(parents=True, exist_ok=True)
    frame.sort_values("line", kind="stable").reset_index(drop=True).to_parquet(path, index=False)
    return path


# --------------------------------------------------------------------------------------------
# items


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
        for block in _blocks(uri, parse_metadata_block, fmt, workers, progress):
            records += block.records
            blank += block.blank_lines
            nulled.update(block.nulled)
            invalid_parts.append(_block_quarantine(uri, block))
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
        _quarantine_of(pa.concat_tables(invalid_parts))
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


# --------------------------------------------------------------------------------------------
# interactions


def month_index(month: str) -> int:
    """``"2013-01"`` -> months since 1970-01 (numpy's ``datetime64[M]`` integer)."""
    return int(np.datetime64(month, "M").astype(np.int64))


def month_label(index: int) -> str:
    return str(np.datetime64(int(index), "M"))


def _months_of(epoch_seconds: np.ndarray) -> np.ndarray:
    return epoch_seconds.astype("datetime64[s]").astype("datetime64[M]").astype(np.int64)


@dataclass
class StagedMonth:
    path: Path
    quarantine_path: Path
    rows: int
    #: Copies of an earlier review (same user, item and ts), collapsed into it.
    duplicates: int
    #: Invalid records charged to this month, including those of no month.
    invalid: int

    @property
    def records(self) -> int:
        """Every record of the month: staged, collapsed into another, or invalid."""
        return self.rows + self.duplicates + self.invalid

    @property
    def quarantine_rate(self) -> float:
        return self.invalid / self.records if self.records else 0.0

    def load(self) -> pd.DataFrame:
        return pd.read_parquet(self.path)

    def load_quarantine(self) -> pd.DataFrame:
        return pd.read_parquet(self.quarantine_path)


@dataclass
class StagedInteractions:
    #: One staged parquet file per requested month (``YYYY-MM``), rows ordered by ``ts``.
    #: Its quarantine holds the month's own invalid records and duplicates plus every record
    #: whose month is unknown or outside the partitioned range (it could be any month's).
    months: dict[str, StagedMonth]
    #: Records that belong to no partition: unparseable, or timestamp out of range.
    unassigned: pd.DataFrame
    records_read: int
    blank_lines: int
    #: Good records of partitioned months this run did not ask for (staged by other runs).
    records_other_months: int
    #: Up to ten duplicate reviews: the copy's line, the line kept, and the event.
    duplicate_examples: pd.DataFrame
    seconds: float

    def quarantine_rate(self, month: str) -> float:
        return self.months[month].quarantine_rate

    @property
    def rows(self) -> int:
        return sum(m.rows for m in self.months.values())

    @property
    def duplicates(self) -> int:
        return sum(m.duplicates for m in self.months.values())

    def load(self, month: str) -> pd.DataFrame:
        return self.months[month].load()

    def windows(self, max_rows: int) -> Iterator[pd.DataFrame]:
        """The staged rows, months tagged in a ``partition`` column, a few months at a time
        (about ``max_rows`` rows, at least one month), so checks never hold every month."""
        batch: list[pd.DataFrame] = []
        held = 0
        for month, staged in self.months.items():
            if batch and held + staged.rows > max_rows:
                yield pd.concat(batch, ignore_index=True)
                batch, held = [], 0
            batch.append(staged.load().assign(partition=month))
            held += staged.rows
        if batch:
            yield pd.concat(batch, ignore_index=True)

    def rows_by_month(self) -> str:
        """Rows staged, duplicates collapsed and records quarantined per month, as markdown."""
        return pd.DataFrame(
            {
                "month": list(self.months),
                "rows": [m.rows for m in self.months.values()],
                "duplicates": [m.duplicates for m in self.months.values()],
                "invalid": [m.invalid for m in self.months.values()],
            }
        ).to_markdown(index=False)


def stage_interactions(
    uri: str,
    fmt: str,
    months: Sequence[str],
    partitioned_range: tuple[str, str],
    out: Path,
    *,
    workers: int | None = None,
    progress: Progress | None = None,
) -> StagedInteractions:
    """Parse a reviews dump and stage the records of ``months`` by calendar month (UTC)
    into ``out/interactions/<month>.parquet`` and ``out/interactions_quarantine/<month>.parquet``.

    ``partitioned_range`` is ``(first_month, end_month_exclusive)`` of the partitions
    definition: a record outside it belongs to no partition and is quarantined.
    """
    started = time.perf_counter()
    lo, hi = month_index(partitioned_range[0]), month_index(partitioned_range[1])
    wanted = {month_index(m): m for m in months}
    first, last = partitioned_range[0], month_label(hi - 1)
    rows = Spill(out / ".spill-reviews", REVIEW_SCHEMA)
    bad = Spill(out / ".spill-quarantine", _SPILLED_QUARANTINE)
    records = blank = other = 0
    try:
        for block in _blocks(uri, parse_reviews_block, fmt, workers, progress):
            records += block.records
            blank += block.blank_lines
            other += _spill_reviews(block, uri, rows, bad, wanted, (lo, hi), (first, last))
        unassigned = _quarantine_of(bad.read("unassigned")).sort_values("line", kind="stable")
        unassigned = unassigned.reset_index(drop=True)
        staged = {
            label: _stage_month(label, rows.read(label), bad.read(label), unassigned, uri, out)
            for label in sorted(wanted.values())
        }
    finally:
        rows.close()
        bad.close()
    examples = [s.examples for s in staged.values() if len(s.examples)]
    return StagedInteractions(
        months={label: s.month for label, s in staged.items()},
        unassigned=unassigned,
        records_read=records,
        blank_lines=blank,
        records_other_months=other,
        duplicate_examples=pd.concat(examples, ignore_index=True).head(10) if examples else pd.DataFrame(),
        seconds=time.perf_counter() - started,
    )


def _spill_reviews(
    block: ParsedBlock,
    uri: str,
    rows: Spill,
    bad: Spill,
    wanted: dict[int, str],
    bounds: tuple[int, int],
    labels: tuple[str, str],
) -> int:
    """Send one block's rows to the buckets of their months; return the rows of partitioned
    months this run does not stage."""
    lo, hi = bounds
    table = block.table
    ts = table.column("ts").to_numpy()
    month_of = _months_of(ts)
    outside = (month_of < lo) | (month_of >= hi)
    # One sort by month, then a zero-copy slice per month of the block.
    order = np.argsort(month_of, kind="stable")
    by_month = table.take(pa.array(order))
    sorted_months = month_of[order]
    present, starts, counts = np.unique(sorted_months, return_index=True, return_counts=True)
    for index, start, count in zip(present.tolist(), starts.tolist(), counts.tolist(), strict=True):
        if index in wanted:
            rows.append(wanted[index], by_month.slice(start, count))
    staged = np.isin(month_of, np.fromiter(wanted, dtype=np.int64, count=len(wanted)))
    if outside.any():
        where = np.flatnonzero(outside)
        span = f"{labels[0]}..{labels[1]}"
        users, items = table.column("user_id").take(where), table.column("item_id").take(where)
        frame = quarantine_frame(
            uri,
            table.column("line").take(where).to_pylist(),
            [TS_OUT_OF_RANGE] * len(where),
            [
                f"ts {np.datetime64(int(ts[row]), 's')}Z outside the partitioned months {span}"
                for row in where
            ],
            [f"user_id={u} item_id={i}" for u, i in zip(users.to_pylist(), items.to_pylist(), strict=True)],
        )
        bad.append("unassigned", pa.Table.from_pandas(frame.assign(ts=-1), schema=_SPILLED_QUARANTINE,
                                                      preserve_index=False))  # fmt: skip

    invalid = _block_quarantine(uri, block)
    if invalid.num_rows:
        q_ts = np.asarray(block.quarantine_ts, dtype=np.int64)
        q_month = np.where(q_ts >= 0, _months_of(np.maximum(q_ts, 0)), -1)
        known = (q_ts >= 0) & (q_month >= lo) & (q_month < hi)
        # Bad records with a readable timestamp inside the range are charged to their month;
        # the rest (garbage lines, out-of-range timestamps) could be any month's.
        bad.append("unassigned", invalid.filter(pa.array(~known)))
        for index, label in wanted.items():
            mask = known & (q_month == index)
            if mask.any():
                bad.append(label, invalid.filter(pa.array(mask)))
    return int((~outside & ~staged).sum())


@dataclass
class _MonthResult:
    month: StagedMonth
    examples: pd.DataFrame


#: The staged interactions' schema: ``ts`` as pandas writes a UTC datetime column.
INTERACTION_SCHEMA = pa.schema(
    [("user_id", pa.string()), ("item_id", pa.string()), ("rating", pa.float64()),
     ("ts", pa.timestamp("ns", tz="UTC"))]
)  # fmt: skip


def _stage_month(
    label: str, table: pa.Table, invalid: pa.Table, unassigned: pd.DataFrame, uri: str, out: Path
) -> _MonthResult:
    """Deduplicate, order and write one month, and its quarantine (vectorised in Arrow: a
    month of a large dump holds millions of rows)."""
    # Copies of one event sit together once sorted by the key, the earliest line first.
    key = [("user_id", "ascending"), ("item_id", "ascending"), ("ts", "ascending"), ("line", "ascending")]
    table = table.take(pc.sort_indices(table, sort_keys=key))
    n = table.num_rows
    copy = np.zeros(n, dtype=bool)
    if n > 1:
        same = [
            pc.equal(table[name].slice(1), table[name].slice(0, n - 1)).to_numpy(zero_copy_only=False)
            for name in ("user_id", "item_id", "ts")
        ]
        copy[1:] = same[0] & same[1] & same[2]
    duplicates = quarantine_frame(uri, [], [], [], [])
    examples = pd.DataFrame()
    if copy.any():
        first = np.maximum.accumulate(np.where(copy, 0, np.arange(n)))  # each row's kept row
        where = np.flatnonzero(copy)
        lines = table["line"].to_numpy()
        ratings = table["rating"].to_numpy()
        kept_line, kept_rating = lines[first[where]], ratings[first[where]]
        copies = table.take(pa.array(where)).to_pandas()
        stamp = pd.to_datetime(copies["ts"], unit="s", utc=True).dt.strftime("%Y-%m-%dT%H:%M:%SZ")
        reasons = [
            f"same user_id, item_id and ts as line {k}, which is kept"
            + (f"; its rating {r:g} differs from the kept {kr:g}" if r != kr else "")
            for k, r, kr in zip(kept_line, copies["rating"], kept_rating, strict=True)
        ]
        records = [
            f"user_id={u} item_id={i} ts={t}"
            for u, i, t in zip(copies["user_id"], copies["item_id"], stamp, strict=True)
        ]
        duplicates = quarantine_frame(
            uri, copies["line"].tolist(), [DUPLICATE] * len(copies), reasons, records, kept_line.tolist()
        ).sort_values("line", kind="stable")
        examples = duplicates[["line", "kept_line", "record", "reason"]].head(10).assign(month=label)
        table = table.filter(pa.array(~copy))
    table = table.take(pc.sort_indices(table, sort_keys=[("ts", "ascending"), ("line", "ascending")]))
    staged = pa.Table.from_arrays(
        [table["user_id"], table["item_id"], table["rating"],
         table["ts"].cast(pa.timestamp("s", tz="UTC")).cast(pa.timestamp("ns", tz="UTC"))],
        schema=INTERACTION_SCHEMA,
    )  # fmt: skip
    path = out / "interactions" / f"{label}.parquet"
    path.parent.mkdir(parents=True, exist_ok=True)
    pq.write_table(staged, path)
    own = _quarantine_of(invalid)
    return _MonthResult(
        StagedMonth(
            path=path,
            quarantine_path=write_quarantine(
                [own, duplicates, unassigned], out / "interactions_quarantine" / f"{label}.parquet"
            ),
            rows=staged.num_rows,
            duplicates=len(duplicates),
            invalid=len(own) + len(unassigned),
        ),
        examples,
    )


def invalid_only(quarantine: pd.DataFrame) -> pd.DataFrame:
    """The quarantine rows of invalid records: not the duplicates and repeated lines."""
    return quarantine[~quarantine["code"].isin(NOT_INVALID)]
