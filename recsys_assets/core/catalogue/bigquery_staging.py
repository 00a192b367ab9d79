"""Stage a reviews dump with BigQuery, for dumps beyond one machine (``data.staging_engine``).

The same rules as the local staging (``staging.py``), in SQL:

1. ``number_lines`` streams the dump once (blocks parsed on every core, as locally) into
   uncompressed text shards ``line \\x1f record \\x1f error`` in GCS: BigQuery keeps no line
   numbers, and the quarantine must name each record's line. The 2014 metadata's Python
   literals, which BigQuery cannot parse, become JSON in this step (a line that is not a
   literal keeps its text and the parser's error). Blank lines are counted here.
2. ``load_job_config`` loads the shards into a raw table (one load job, parallel over shards;
   uncompressed, since BigQuery reads a gzip file on one worker and caps it at 4 GB).
3. ``review_statements`` types every record, quarantines the invalid ones with the local
   reasons, collapses duplicates (the earliest line is kept) and tags each row with its month.
4. ``export_statement`` writes one month's rows to parquet files in GCS, which the asset
   combines into the same ``interactions/<month>.parquet`` the local staging writes.

JSON types are read from the first character of ``JSON_QUERY``'s text (``"``, a digit, ``[``,
``{``, ``t``/``f``, ``n``) rather than ``JSON_TYPE``, whose names differ between BigQuery and
the DuckDB-backed emulator the tests run this SQL on.
"""

from __future__ import annotations

import ast
import time
import uuid
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import orjson
import pandas as pd
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.parquet as pq

from recsys_assets.core.catalogue.amazon import (
    DUPLICATE,
    INVALID,
    MAX_EPOCH_SECONDS,
    MISSING,
    QUARANTINE_SNIPPET_CHARS,
    REVIEW_SCHEMAS,
    TS_OUT_OF_RANGE,
    WRONG_TYPE,
    check_format,
    error_reason,
    iter_block_lines,
)
from recsys_assets.core.catalogue.blocks import map_blocks
from recsys_assets.core.catalogue.staging import (
    INTERACTION_SCHEMA,
    StagedInteractions,
    StagedMonth,
    month_index,
    month_label,
    quarantine_frame,
)
from recsys_assets.core.io.storage import join, list_files, remove_prefix, to_path

SEPARATOR = "\x1f"  # never in valid JSON text (control characters must be escaped there)
#: Bytes of text per shard: BigQuery loads shards in parallel.
SHARD_BYTES = 256 * 1024 * 1024


def numbered_block(kind: str, start_line: int, block: bytes) -> tuple[bytes, int, int]:
    """One block as ``line \\x1f record \\x1f error`` rows; returns (text, records, blank lines).

    ``kind`` is ``json`` or ``literal`` (2014 metadata, converted to JSON here).
    """
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
        record = text.decode("utf-8", errors="replace").replace(SEPARATOR, "\ufffd").replace("\r", " ")
        out += f"{number}{SEPARATOR}{record}{SEPARATOR}{error}\n".encode()
    return bytes(out), len(lines), blank


@dataclass
class NumberedDump:
    shards: list[str] = field(default_factory=list)
    records: int = 0
    blank_lines: int = 0


def number_lines(uri: str, kind: str, dest_prefix: str, *, workers: int | None = None) -> NumberedDump:
    """Stream ``uri`` into numbered text shards under ``dest_prefix`` (a folder or ``gs://``)."""
    if kind not in ("json", "literal"):
        raise ValueError(f"kind must be json or literal, got {kind!r}")
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
        for text, records, blank in map_blocks(uri, numbered_block, kind, workers=workers):
            dump.records += records
            dump.blank_lines += blank
            if sink is None or written >= SHARD_BYTES:
                if sink is not None:
                    sink.close()
                sink, written = next_shard(), 0
            sink.write(text)
            written += len(text)
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


def _type_of(path: str) -> str:
    """A field's JSON type from the first character of its JSON text: null when absent."""
    text = f"JSON_QUERY(record, '{path}')"
    return f"""CASE
        WHEN {text} IS NULL THEN NULL
        WHEN STARTS_WITH({text}, '"') THEN 'string'
        WHEN STARTS_WITH({text}, '{{') THEN 'dict'
        WHEN STARTS_WITH({text}, '[') THEN 'list'
        WHEN {text} IN ('true', 'false') THEN 'boolean'
        WHEN {text} = 'null' THEN 'null'
        WHEN REGEXP_CONTAINS({text}, r'^-?[0-9]+(\\.0+)?$') THEN 'integer'
        ELSE 'fraction' END"""


_TYPE_WORDS = {
    "dict": "a dict",
    "list": "a list",
    "boolean": "a boolean",
    "fraction": "a fractional number",
}


def _wrong_id(name: str, kind_column: str) -> str:
    words = " ".join(f"WHEN '{k}' THEN '{v}'" for k, v in _TYPE_WORDS.items())
    return (
        f"CONCAT('{name} is ', CASE {kind_column} {words} ELSE {kind_column} END, ' (', "
        f"SUBSTR(JSON_QUERY(record, '$.{name}'), 1, 40), '), expected a string or an integer')"
    )


@dataclass(frozen=True)
class Tables:
    """The dataset's tables one staging run uses (``dataset.name``)."""

    raw: str
    typed: str
    staged: str
    quarantine: str


def review_statements(fmt: str, tables: Tables, uri: str, partitioned_range: tuple[str, str]) -> list[str]:
    """The SQL statements, in order, that stage the raw table's reviews.

    ``staged``: ``user_id, item_id, rating, ts (TIMESTAMP), line, month``, one row per event.
    ``quarantine``: ``file, line, code, reason, record, kept_line, month``; ``month`` is null
    for a record that belongs to no month (it is listed with every month, as locally).
    """
    schema = REVIEW_SCHEMAS[check_format(fmt)]
    per_second = schema.ts_per_second
    limit = MAX_EPOCH_SECONDS * per_second
    first, end = partitioned_range
    last = month_label(month_index(end) - 1)
    file = _literal(uri)
    user, item, rating, ts = (f"$.{name}" for name in (schema.user, schema.item, schema.rating, schema.ts))
    snippet = f"SUBSTR(record, 1, {QUARANTINE_SNIPPET_CHARS})"
    typed = f"""
CREATE OR REPLACE TABLE {tables.typed} AS
WITH objects AS (
  SELECT line, record, error,
         error IS NULL AND SAFE.PARSE_JSON(record) IS NOT NULL
           AND STARTS_WITH(LTRIM(record), '{{') AS is_object
  FROM {tables.raw}
),
fields AS (
  SELECT line, record,
         {_type_of(user)} AS user_kind, JSON_VALUE(record, '{user}') AS user_text,
         {_type_of(item)} AS item_kind, JSON_VALUE(record, '{item}') AS item_text,
         {_type_of(rating)} AS rating_kind, JSON_VALUE(record, '{rating}') AS rating_text,
         {_type_of(ts)} AS ts_kind, JSON_VALUE(record, '{ts}') AS ts_text
  FROM objects WHERE is_object
)
SELECT line, record, user_kind, item_kind, rating_kind, ts_kind, rating_text, ts_text,
       CASE WHEN user_kind = 'integer' THEN CAST(CAST(SAFE_CAST(user_text AS FLOAT64) AS INT64) AS STRING)
            ELSE TRIM(user_text) END AS user_id,
       CASE WHEN item_kind = 'integer' THEN CAST(CAST(SAFE_CAST(item_text AS FLOAT64) AS INT64) AS STRING)
            ELSE TRIM(item_text) END AS item_id,
       SAFE_CAST(rating_text AS FLOAT64) AS rating,
       CASE WHEN ts_kind IN ('integer', 'fraction') AND ABS(SAFE_CAST(ts_text AS FLOAT64)) < {limit}
            THEN DIV(CAST(FLOOR(SAFE_CAST(ts_text AS FLOAT64)) AS INT64), {per_second}) END AS seconds
FROM fields
UNION ALL
SELECT line, record, 'invalid' AS user_kind, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL
FROM objects WHERE NOT is_object
"""
    missing = " ".join(
        f"IF({kind} IS NULL OR {kind} = 'null' OR ({col} IS NOT NULL AND {col} = ''), '{name}', NULL),"
        for name, kind, col in (
            (schema.user, "user_kind", "user_id"),
            (schema.item, "item_kind", "item_id"),
            (schema.rating, "rating_kind", "rating_text"),
            (schema.ts, "ts_kind", "ts_text"),
        )
    )
    month = "FORMAT_TIMESTAMP('%Y-%m', TIMESTAMP_SECONDS(seconds))"
    classified = f"""
WITH raw AS (SELECT line, record, error FROM {tables.raw}),
checked AS (
  SELECT t.*,
    ARRAY_TO_STRING(ARRAY(SELECT x FROM UNNEST([{missing.rstrip(",")}]) AS x WHERE x IS NOT NULL), ', ')
      AS missing
  FROM {tables.typed} AS t WHERE user_kind != 'invalid'
),
verdicts AS (
  SELECT line, record, seconds,
    CASE
      WHEN missing != '' THEN '{MISSING}'
      WHEN user_kind NOT IN ('string', 'integer') THEN '{WRONG_TYPE}'
      WHEN item_kind NOT IN ('string', 'integer') THEN '{WRONG_TYPE}'
      WHEN rating_kind NOT IN ('integer', 'fraction') THEN '{WRONG_TYPE}'
      WHEN seconds IS NULL THEN '{WRONG_TYPE}'
      WHEN {month} < '{first}' OR {month} >= '{end}' THEN '{TS_OUT_OF_RANGE}'
    END AS code,
    CASE
      WHEN missing != '' THEN CONCAT('missing field: ', missing)
      WHEN user_kind NOT IN ('string', 'integer') THEN {_wrong_id(schema.user, "user_kind")}
      WHEN item_kind NOT IN ('string', 'integer') THEN {_wrong_id(schema.item, "item_kind")}
      WHEN rating_kind NOT IN ('integer', 'fraction') THEN
        CONCAT('{schema.rating} is not a finite number: ', SUBSTR(JSON_QUERY(record, '{rating}'), 1, 40))
      WHEN seconds IS NULL THEN
        CONCAT('{schema.ts} is not an epoch timestamp: ', SUBSTR(JSON_QUERY(record, '{ts}'), 1, 40))
      WHEN {month} < '{first}' OR {month} >= '{end}' THEN
        CONCAT('ts ', FORMAT_TIMESTAMP('%Y-%m-%dT%H:%M:%SZ', TIMESTAMP_SECONDS(seconds)),
               ' outside the partitioned months {first}..{last}')
    END AS reason,
    user_id, item_id, rating
  FROM checked
)
"""
    # Partitioned by month: each month's export then reads only its own partition.
    staged = f"""
CREATE OR REPLACE TABLE {tables.staged}
PARTITION BY DATE_TRUNC(DATE(ts), MONTH) AS
{classified},
events AS (
  SELECT user_id, item_id, rating, TIMESTAMP_SECONDS(seconds) AS ts, line, {month} AS month,
         ROW_NUMBER() OVER (PARTITION BY user_id, item_id, seconds ORDER BY line) AS copy,
         FIRST_VALUE(line) OVER (PARTITION BY user_id, item_id, seconds ORDER BY line) AS kept_line,
         FIRST_VALUE(rating) OVER (PARTITION BY user_id, item_id, seconds ORDER BY line) AS kept_rating
  FROM verdicts WHERE code IS NULL
)
SELECT * FROM events
"""
    quarantine = f"""
CREATE OR REPLACE TABLE {tables.quarantine} AS
{classified}
SELECT {file} AS file, line, '{INVALID}' AS code,
       COALESCE(error, 'invalid JSON or not a JSON object') AS reason,
       {snippet} AS record, CAST(NULL AS INT64) AS kept_line, CAST(NULL AS STRING) AS month
FROM raw WHERE line IN (SELECT line FROM {tables.typed} WHERE user_kind = 'invalid')
UNION ALL
SELECT {file}, line, code, reason, {snippet}, CAST(NULL AS INT64),
       IF(code != '{TS_OUT_OF_RANGE}' AND seconds IS NOT NULL
          AND {month} >= '{first}' AND {month} < '{end}', {month}, NULL)
FROM verdicts WHERE code IS NOT NULL
UNION ALL
SELECT {file}, line, '{DUPLICATE}',
       CONCAT('same user_id, item_id and ts as line ', CAST(kept_line AS STRING), ', which is kept',
              IF(rating != kept_rating,
                 CONCAT('; its rating ', FORMAT('%g', rating),
                        ' differs from the kept ', FORMAT('%g', kept_rating)),
                 '')),
       CONCAT('user_id=', user_id, ' item_id=', item_id, ' ts=', FORMAT_TIMESTAMP('%Y-%m-%dT%H:%M:%SZ', ts)),
       kept_line, month
FROM {tables.staged} WHERE copy > 1
"""
    return [typed, staged, quarantine]


def export_statement(tables: Tables, month: str, dest_prefix: str) -> str:
    """Export one month's events (the copies left out) to parquet files
    ``<dest_prefix>/<month>/*.parquet``. BigQuery names the files and does not order rows
    across them: ``combine_export`` sorts by ``ts, line`` and writes the local layout."""
    uri = _literal(f"{dest_prefix.rstrip('/')}/{month}/*.parquet")
    return f"""
EXPORT DATA OPTIONS (uri = {uri}, format = 'PARQUET', overwrite = true) AS
SELECT user_id, item_id, rating, ts, line FROM {tables.staged}
WHERE month = '{month}' AND copy = 1
"""


def _literal(text: str) -> str:
    """``text`` as a GoogleSQL string literal."""
    return "'" + text.replace("\\", "\\\\").replace("'", "\\'") + "'"


@dataclass
class BigQueryStaging:
    """Where a BigQuery staging run works: a client, a dataset for its tables, and a GCS
    folder for the numbered shards and the exports (both deleted when the run ends)."""

    client: Any
    dataset: str
    staging_uri: str

    def load(self, shards: list[str], table: str) -> None:
        """One load job of every shard into ``table``."""
        self.client.load_table_from_uri(shards, table, job_config=load_job_config()).result()

    def export(self, tables: Tables, month: str, dest_prefix: str) -> list[str]:
        """Export one month; returns the parquet files written."""
        self.client.query(export_statement(tables, month, dest_prefix)).result()
        return list_files(join(dest_prefix, month), ".parquet")

    def query(self, sql: str) -> pd.DataFrame:
        return self.client.query(sql).to_dataframe(create_bqstorage_client=False)

    def drop(self, tables: Tables) -> None:
        for table in (tables.raw, tables.typed, tables.staged, tables.quarantine):
            self.client.delete_table(table, not_found_ok=True)


def combine_export(files: list[str], path: Path) -> int:
    """One month's exported parquet files as the local staging writes them: ordered by
    ``ts`` then line, in the same schema. Returns the rows written."""
    parts = []
    for uri in files:
        with to_path(uri).open("rb") as stream:
            parts.append(pq.read_table(stream))
    table = (
        pa.concat_tables(parts) if parts else pa.table({n: [] for n in [*INTERACTION_SCHEMA.names, "line"]})
    )
    if parts:
        table = table.take(pc.sort_indices(table, sort_keys=[("ts", "ascending"), ("line", "ascending")]))
    staged = pa.Table.from_arrays(
        [table["user_id"].cast(pa.string()), table["item_id"].cast(pa.string()),
         table["rating"].cast(pa.float64()), table["ts"].cast(INTERACTION_SCHEMA.field("ts").type)],
        schema=INTERACTION_SCHEMA,
    )  # fmt: skip
    path.parent.mkdir(parents=True, exist_ok=True)
    pq.write_table(staged, path)
    return staged.num_rows


def stage_interactions_bigquery(
    engine: BigQueryStaging,
    uri: str,
    fmt: str,
    months: Sequence[str],
    partitioned_range: tuple[str, str],
    out: Path,
    *,
    workers: int | None = None,
    progress: Callable[[str], None] | None = None,
) -> StagedInteractions:
    """``stage_interactions`` with BigQuery doing the typing, quarantine and deduplication:
    the same files under ``out`` and the same counts, so the same checks follow."""
    say = progress or (lambda message: None)
    started = time.perf_counter()
    run = uuid.uuid4().hex[:12]
    tables = Tables(
        *(f"{engine.dataset}.staging_{run}_{name}" for name in ("raw", "typed", "staged", "quarantine"))
    )
    work = join(engine.staging_uri, run)
    try:
        numbered = number_lines(uri, "json", join(work, "numbered"), workers=workers)
        say(f"{uri}: {numbered.records:,} records numbered into {len(numbered.shards)} shard(s) under {work}")
        engine.load(numbered.shards, tables.raw)
        for statement in review_statements(fmt, tables, uri, partitioned_range):
            engine.client.query(statement).result()
        counts = engine.query(
            f"SELECT month, COUNTIF(copy = 1) AS events, COUNTIF(copy > 1) AS copies "
            f"FROM {tables.staged} GROUP BY month"
        ).set_index("month")
        invalid = engine.query(
            f"SELECT month, COUNT(*) AS n FROM {tables.quarantine} WHERE code != '{DUPLICATE}' GROUP BY month"
        )
        columns = "file, line, code, reason, record, kept_line"
        unassigned = engine.query(
            f"SELECT {columns} FROM {tables.quarantine} WHERE month IS NULL ORDER BY line"
        )
        unassigned["kept_line"] = unassigned["kept_line"].astype("Int64")
        by_month = dict(
            zip(invalid["month"].dropna(), invalid.loc[invalid["month"].notna(), "n"], strict=True)
        )
        staged: dict[str, StagedMonth] = {}
        for month in sorted(months):
            path = out / "interactions" / f"{month}.parquet"
            rows = combine_export(engine.export(tables, month, join(work, "export")), path)
            own = engine.query(
                f"SELECT {columns} FROM {tables.quarantine} WHERE month = '{month}' ORDER BY line"
            )
            quarantine = pd.concat(
                [quarantine_frame(uri, [], [], [], []), own, unassigned], ignore_index=True
            )
            quarantine = quarantine.astype({"line": "int64", "kept_line": "Int64"})
            q_path = out / "interactions_quarantine" / f"{month}.parquet"
            q_path.parent.mkdir(parents=True, exist_ok=True)
            quarantine.sort_values("line", kind="stable").reset_index(drop=True).to_parquet(
                q_path, index=False
            )
            staged[month] = StagedMonth(
                path=path,
                quarantine_path=q_path,
                rows=rows,
                duplicates=int(counts["copies"].get(month, 0)),
                invalid=int(by_month.get(month, 0)) + len(unassigned),
            )
            say(f"{month}: {rows:,} rows exported")
        examples = engine.query(
            f"SELECT line, kept_line, record, reason, month FROM {tables.quarantine} "
            f"WHERE code = '{DUPLICATE}' ORDER BY line LIMIT 10"
        )
    finally:
        engine.drop(tables)
        remove_prefix(work)
    # Good records of other months, copies included, as the local staging counts them.
    in_range = int(counts["events"].sum() + counts["copies"].sum())
    return StagedInteractions(
        months=staged,
        unassigned=unassigned,
        records_read=numbered.records,
        blank_lines=numbered.blank_lines,
        records_other_months=in_range - sum(m.rows + m.duplicates for m in staged.values()),
        duplicate_examples=examples,
        seconds=time.perf_counter() - started,
    )
