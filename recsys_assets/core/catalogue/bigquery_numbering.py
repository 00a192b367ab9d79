"""The first step of BigQuery staging: a dump streamed once into numbered text shards.

BigQuery keeps no line numbers, and the quarantine names each record's line, so every line
is written as ``line \\x1f record \\x1f error``, uncompressed (BigQuery reads a gzip file on
one worker and caps it at 4 GB). Blocks are parsed on every core, as the local staging does.
"""

from __future__ import annotations

import ast
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import orjson

from recsys_assets.core.catalogue.amazon import error_reason, iter_block_lines, parse_metadata_block
from recsys_assets.core.catalogue.blocks import map_blocks
from recsys_assets.core.io.storage import join, to_path

SEPARATOR = "\x1f"  # never in valid JSON text (control characters must be escaped there)
#: Bytes of text per shard: BigQuery loads shards in parallel.
SHARD_BYTES = 256 * 1024 * 1024


@dataclass
class NumberedBlock:
    text: bytes
    records: int
    blank_lines: int
    nulled: Counter[str] = field(default_factory=Counter)


def _row(number: int, record: bytes | str, error: str) -> str:
    text = record.decode("utf-8", errors="replace") if isinstance(record, bytes) else record
    # The separator cannot be in a field, nor a carriage return (a line end to the loader).
    text = text.replace(SEPARATOR, "\ufffd").replace("\r", " ")
    return f"{number}{SEPARATOR}{text}{SEPARATOR}{error}\n"


def numbered_block(kind: str, start_line: int, block: bytes) -> NumberedBlock:
    """One block as ``line \\x1f record \\x1f error`` rows.

    ``kind`` is ``json`` or ``literal`` (2014 metadata, converted to JSON here).
    """
    if kind not in ("json", "literal"):
        raise ValueError(f"kind must be json or literal, got {kind!r}")
    lines, blank = iter_block_lines(start_line, block)
    out = bytearray()
    for number, raw in lines:
        error = ""
        text = raw
        if kind == "literal":
            try:
                text = orjson.dumps(ast.literal_eval(raw.decode("utf-8")))
            except (
                ValueError,
                SyntaxError,
                TypeError,
                MemoryError,
                RecursionError,
                UnicodeDecodeError,
            ) as exc:
                error = f"not a valid Python dict literal: {error_reason(exc)}"
            except orjson.JSONEncodeError as exc:  # a literal JSON cannot hold (a set, bytes, inf)
                error = f"not a valid Python dict literal: {error_reason(exc)}"
        out += _row(number, text, error).encode()
    return NumberedBlock(bytes(out), len(lines), blank)


def numbered_items_block(fmt: str, start_line: int, block: bytes) -> NumberedBlock:
    """Metadata lines parsed as locally (``parse_metadata_block``: ids typed, text cleaned,
    categories flattened) into ``line \\x1f item JSON \\x1f`` rows, and the invalid ones
    into ``line \\x1f record \\x1f {code, reason}``. What needs every line of an item at
    once, merging its repeated lines, is left to BigQuery (``item_statements``)."""
    parsed = parse_metadata_block(fmt, start_line, block)
    rows: list[tuple[int, str]] = []
    table = parsed.table.to_pylist()
    for row in table:
        row["n_categories"] = len(row["categories"])
        rows.append((row["line"], _row(row.pop("line"), orjson.dumps(row), "")))
    for line, code, reason, record in zip(
        parsed.quarantine_lines, parsed.quarantine_codes, parsed.quarantine_reasons,
        parsed.quarantine_records, strict=True,
    ):  # fmt: skip
        rows.append((line, _row(line, record, orjson.dumps({"code": code, "reason": reason}).decode())))
    text = "".join(row for _, row in sorted(rows)).encode()
    return NumberedBlock(text, parsed.records, parsed.blank_lines, parsed.nulled)


@dataclass
class NumberedDump:
    shards: list[str] = field(default_factory=list)
    records: int = 0
    blank_lines: int = 0
    nulled: Counter[str] = field(default_factory=Counter)


def number_lines(
    uri: str,
    kind: str,
    dest_prefix: str,
    *,
    workers: int | None = None,
    parse: Callable[[str, int, bytes], NumberedBlock] = numbered_block,
) -> NumberedDump:
    """Stream ``uri`` into numbered text shards under ``dest_prefix`` (a folder or ``gs://``):
    each block through ``parse(kind, first_line, block)`` on every core."""
    dump = NumberedDump()
    sink: Any = None
    written = 0

    def next_shard() -> Any:
        path = join(dest_prefix, f"part-{len(dump.shards):05d}.txt")
        dump.shards.append(path)
        target = to_path(path)
        if "://" not in path:
            target.parent.mkdir(parents=True, exist_ok=True)
        return target.open("wb")

    try:
        for block in map_blocks(uri, parse, kind, workers=workers):
            dump.records += block.records
            dump.blank_lines += block.blank_lines
            dump.nulled.update(block.nulled)
            if sink is None or written >= SHARD_BYTES:
                if sink is not None:
                    sink.close()
                sink, written = next_shard(), 0
            sink.write(block.text)
            written += len(block.text)
    finally:
        if sink is not None:
            sink.close()
    return dump


def load_job_config() -> Any:
    """The load job of numbered shards into a raw table (``line, record, error``)."""
    from google.cloud import bigquery

    return bigquery.LoadJobConfig(
        source_format=bigquery.SourceFormat.CSV,
        field_delimiter=SEPARATOR,
        quote_character="",
        schema=[
            bigquery.SchemaField("line", "INT64", mode="REQUIRED"),
            bigquery.SchemaField("record", "STRING"),
            bigquery.SchemaField("error", "STRING"),
        ],
        write_disposition=bigquery.WriteDisposition.WRITE_TRUNCATE,
        max_bad_records=0,
    )
