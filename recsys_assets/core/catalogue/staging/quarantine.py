"""Quarantine rows: every raw record not staged as a row, with its file, line, code and reason;
and the parsed blocks of a dump, which feed both the staged rows and the quarantine."""

from __future__ import annotations

from collections.abc import Callable, Iterator, Sequence
from pathlib import Path

import pandas as pd
import pyarrow as pa

from recsys_assets.core.catalogue.amazon import (
    NOT_INVALID,
    ParsedBlock,
)
from recsys_assets.core.catalogue.blocks import CorruptInputError, map_blocks

QUARANTINE_SCHEMA = pa.schema(
    [("file", pa.string()), ("line", pa.int64()), ("code", pa.string()), ("reason", pa.string()),
     ("record", pa.string()), ("kept_line", pa.int64())]
)  # fmt: skip
QUARANTINE_COLUMNS = tuple(QUARANTINE_SCHEMA.names)
#: Quarantine rows carry the month they are charged to while they wait in a spill bucket.
SPILLED_QUARANTINE = QUARANTINE_SCHEMA.append(pa.field("ts", pa.int64()))
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


def block_quarantine(uri: str, block: ParsedBlock) -> pa.Table:
    n = len(block.quarantine_lines)
    return pa.Table.from_arrays(
        [pa.array([uri] * n, pa.string()), pa.array(block.quarantine_lines, pa.int64()),
         pa.array(block.quarantine_codes, pa.string()), pa.array(block.quarantine_reasons, pa.string()),
         pa.array(block.quarantine_records, pa.string()), pa.nulls(n, pa.int64()),
         pa.array(block.quarantine_ts, pa.int64())],
        schema=SPILLED_QUARANTINE,
    )  # fmt: skip


def quarantine_of(table: pa.Table) -> pd.DataFrame:
    frame = table.drop_columns(["ts"]).to_pandas() if "ts" in table.column_names else table.to_pandas()
    frame["kept_line"] = frame["kept_line"].astype("Int64")
    return frame


def parsed_blocks(
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


def invalid_only(quarantine: pd.DataFrame) -> pd.DataFrame:
    """The quarantine rows of invalid records: not the duplicates and repeated lines."""
    return quarantine[~quarantine["code"].isin(NOT_INVALID)]
