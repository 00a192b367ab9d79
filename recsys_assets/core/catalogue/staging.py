"""Stage raw Amazon dumps into the ``items`` table and monthly ``interactions`` tables.

Nothing is dropped silently: every raw record ends up either as a row of a table or as a
quarantine row that names the file, the line and the reason.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass

import numpy as np
import pandas as pd

from recsys_assets.core.catalogue.amazon import (
    DUPLICATE_ITEM,
    ITEM_COLUMNS,
    REVIEW_COLUMNS,
    TS_OUT_OF_RANGE,
    ParsedBlock,
    parse_metadata_block,
    parse_reviews_block,
)
from recsys_assets.core.catalogue.blocks import map_blocks

QUARANTINE_COLUMNS = ("file", "line", "code", "reason", "record")
Progress = Callable[[str], None]


def quarantine_frame(
    file: str,
    lines: Sequence[int],
    codes: Sequence[str],
    reasons: Sequence[str],
    records: Sequence[str],
) -> pd.DataFrame:
    return pd.DataFrame(
        {
            "file": pd.Series([file] * len(lines), dtype=object),
            "line": pd.Series(lines, dtype="int64"),
            "code": pd.Series(codes, dtype=object),
            "reason": pd.Series(reasons, dtype=object),
            "record": pd.Series(records, dtype=object),
        },
        columns=list(QUARANTINE_COLUMNS),
    )


def _merge(blocks: Iterable[ParsedBlock], columns: Sequence[str]) -> ParsedBlock:
    merged = ParsedBlock(columns={name: [] for name in columns})
    for block in blocks:
        for name in columns:
            merged.columns[name].extend(block.columns[name])
        merged.lines.extend(block.lines)
        merged.quarantine_lines.extend(block.quarantine_lines)
        merged.quarantine_codes.extend(block.quarantine_codes)
        merged.quarantine_reasons.extend(block.quarantine_reasons)
        merged.quarantine_records.extend(block.quarantine_records)
        merged.quarantine_ts.extend(block.quarantine_ts)
        merged.price_unparsed += block.price_unparsed
    return merged


@dataclass
class StagedItems:
    items: pd.DataFrame
    quarantine: pd.DataFrame
    records_read: int
    price_unparsed: int
    seconds: float

    @property
    def quarantine_rate(self) -> float:
        return len(self.quarantine) / self.records_read if self.records_read else 0.0


def stage_items(
    uri: str, fmt: str, *, workers: int | None = None, progress: Progress | None = None
) -> StagedItems:
    """Parse a metadata dump into one row per item.

    A repeated ``item_id`` keeps its first record; later ones are quarantined with the
    line of the first, since two records for one item would make every join ambiguous.
    """
    started = time.perf_counter()
    parsed = _merge(
        map_blocks(uri, parse_metadata_block, fmt, workers=workers, progress=progress),
        ITEM_COLUMNS,
    )
    items = pd.DataFrame({name: pd.Series(parsed.columns[name], dtype=object) for name in ITEM_COLUMNS})
    items["price"] = items["price"].astype("float64")
    lines = np.asarray(parsed.lines, dtype=np.int64)
    dup = items["item_id"].duplicated(keep="first").to_numpy()
    q_lines, q_codes, q_reasons, q_records = (
        list(parsed.quarantine_lines),
        list(parsed.quarantine_codes),
        list(parsed.quarantine_reasons),
        list(parsed.quarantine_records),
    )
    if dup.any():
        first_line = dict(zip(items["item_id"][~dup], lines[~dup], strict=True))
        for item_id, line in zip(items["item_id"][dup], lines[dup], strict=True):
            q_lines.append(int(line))
            q_codes.append(DUPLICATE_ITEM)
            q_reasons.append(f"duplicate item_id {item_id!r}: first seen on line {first_line[item_id]}")
            q_records.append(f"item_id={item_id}")
        items = items[~dup].reset_index(drop=True)
    quarantine = quarantine_frame(uri, q_lines, q_codes, q_reasons, q_records).sort_values(
        "line", kind="stable"
    )
    return StagedItems(
        items=items,
        quarantine=quarantine.reset_index(drop=True),
        records_read=len(parsed.lines) + len(parsed.quarantine_lines),
        price_unparsed=parsed.price_unparsed,
        seconds=time.perf_counter() - started,
    )


def month_index(month: str) -> int:
    """``"2013-01"`` -> months since 1970-01 (numpy's ``datetime64[M]`` integer)."""
    return int(np.datetime64(month, "M").astype(np.int64))


def month_label(index: int) -> str:
    return str(np.datetime64(int(index), "M"))


def _months_of(epoch_seconds: np.ndarray) -> np.ndarray:
    return epoch_seconds.astype("datetime64[s]").astype("datetime64[M]").astype(np.int64)


@dataclass
class StagedInteractions:
    #: One frame per requested month (``YYYY-MM``), rows ordered by ``ts``.
    months: dict[str, pd.DataFrame]
    #: Quarantine per requested month: the month's own bad records plus every record
    #: whose month is unknown or outside the partitioned range (it could be any month's).
    quarantine: dict[str, pd.DataFrame]
    #: Records that belong to no partition: unparseable, or timestamp out of range.
    unassigned: pd.DataFrame
    records_read: int
    #: Good records of partitioned months this run did not ask for (staged by other runs).
    records_other_months: int
    seconds: float

    def quarantine_rate(self, month: str) -> float:
        bad = len(self.quarantine[month])
        total = bad + len(self.months[month])
        return bad / total if total else 0.0

    def rows_by_month(self) -> str:
        """Rows staged and records quarantined per month, as a markdown table."""
        return pd.DataFrame(
            {
                "month": list(self.months),
                "rows": [len(frame) for frame in self.months.values()],
                "quarantined": [len(self.quarantine[m]) for m in self.months],
            }
        ).to_markdown(index=False)


def stage_interactions(
    uri: str,
    fmt: str,
    months: Sequence[str],
    partitioned_range: tuple[str, str],
    *,
    workers: int | None = None,
    progress: Progress | None = None,
) -> StagedInteractions:
    """Parse a reviews dump and split the records of ``months`` by calendar month (UTC).

    ``partitioned_range`` is ``(first_month, end_month_exclusive)`` of the partitions
    definition: a record outside it belongs to no partition and is quarantined.
    """
    started = time.perf_counter()
    parsed = _merge(
        map_blocks(uri, parse_reviews_block, fmt, workers=workers, progress=progress),
        REVIEW_COLUMNS,
    )
    ts = np.asarray(parsed.columns["ts"], dtype=np.int64)
    month_of = _months_of(ts)
    lo, hi = month_index(partitioned_range[0]), month_index(partitioned_range[1])
    outside = (month_of < lo) | (month_of >= hi)
    lines = np.asarray(parsed.lines, dtype=np.int64)

    # Bad records with a readable timestamp inside the range are charged to their month;
    # the rest (garbage lines, out-of-range timestamps) could be any month's.
    q_ts = np.asarray(parsed.quarantine_ts, dtype=np.int64)
    q_month = np.where(q_ts >= 0, _months_of(np.maximum(q_ts, 0)), -1)
    q_known = (q_ts >= 0) & (q_month >= lo) & (q_month < hi)
    bad = quarantine_frame(
        uri,
        parsed.quarantine_lines,
        parsed.quarantine_codes,
        parsed.quarantine_reasons,
        parsed.quarantine_records,
    )
    first, last = partitioned_range[0], month_label(hi - 1)
    rows_outside = np.flatnonzero(outside)
    out_of_range = quarantine_frame(
        uri,
        lines[rows_outside].tolist(),
        [TS_OUT_OF_RANGE] * len(rows_outside),
        [
            f"ts {np.datetime64(int(ts[row]), 's')}Z outside the partitioned months {first}..{last}"
            for row in rows_outside
        ],
        [
            f"user_id={parsed.columns['user_id'][row]} item_id={parsed.columns['item_id'][row]}"
            for row in rows_outside
        ],
    )
    unassigned = pd.concat([bad[~q_known], out_of_range], ignore_index=True)
    unassigned = unassigned.sort_values("line", kind="stable").reset_index(drop=True)

    wanted = {month_index(m): m for m in months}
    users = np.asarray(parsed.columns["user_id"], dtype=object)
    items = np.asarray(parsed.columns["item_id"], dtype=object)
    ratings = np.asarray(parsed.columns["rating"], dtype=np.float64)
    by_month: dict[str, pd.DataFrame] = {}
    for index, label in wanted.items():
        rows = np.flatnonzero(month_of == index)
        rows = rows[np.argsort(ts[rows], kind="stable")]
        by_month[label] = pd.DataFrame(
            {
                "user_id": users[rows],
                "item_id": items[rows],
                "rating": ratings[rows],
                "ts": pd.to_datetime(ts[rows], unit="s", utc=True),
            }
        )
    in_range = ~outside
    other = int(in_range.sum()) - sum(len(frame) for frame in by_month.values())
    return StagedInteractions(
        months=by_month,
        quarantine={
            label: pd.concat([bad[q_known & (q_month == index)], unassigned], ignore_index=True)
            .sort_values("line", kind="stable")
            .reset_index(drop=True)
            for index, label in wanted.items()
        },
        unassigned=unassigned,
        records_read=len(parsed.lines) + len(parsed.quarantine_lines),
        records_other_months=other,
        seconds=time.perf_counter() - started,
    )
