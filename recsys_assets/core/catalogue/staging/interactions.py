"""Staging the reviews dump into monthly ``interactions``: bucketed by month on disk, duplicates
collapsed into the event kept (and listed in the quarantine), sorted and written a month at a time."""

from __future__ import annotations

import time
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.parquet as pq

from recsys_assets.core.catalogue.amazon import (
    DUPLICATE,
    REVIEW_SCHEMA,
    TS_OUT_OF_RANGE,
    ParsedBlock,
    parse_reviews_block,
)
from recsys_assets.core.catalogue.spill import Spill
from recsys_assets.core.catalogue.staging.quarantine import (
    SPILLED_QUARANTINE,
    Progress,
    block_quarantine,
    parsed_blocks,
    quarantine_frame,
    quarantine_of,
    write_quarantine,
)


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
    bad = Spill(out / ".spill-quarantine", SPILLED_QUARANTINE)
    records = blank = other = 0
    try:
        for block in parsed_blocks(uri, parse_reviews_block, fmt, workers, progress):
            records += block.records
            blank += block.blank_lines
            other += _spill_reviews(block, uri, rows, bad, wanted, (lo, hi), (first, last))
        unassigned = quarantine_of(bad.read("unassigned")).sort_values("line", kind="stable")
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
        bad.append("unassigned", pa.Table.from_pandas(frame.assign(ts=-1), schema=SPILLED_QUARANTINE,
                                                      preserve_index=False))  # fmt: skip

    invalid = block_quarantine(uri, block)
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
    own = quarantine_of(invalid)
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
