"""The SQL of BigQuery staging: the local staging's rules (``staging/``) as statements.

JSON types are read from the first character of ``JSON_QUERY``'s text (``"``, a digit, ``[``,
``{``, ``t``/``f``, ``n``) rather than ``JSON_TYPE``, whose names differ between BigQuery and
the DuckDB-backed emulator the tests run this SQL on; for the same reason the merge of
repeated items picks each field's best value with a window, not ``ARRAY_AGG(... LIMIT 1)``.
"""

from __future__ import annotations

from dataclasses import dataclass

from recsys_assets.core.catalogue.amazon import (
    DUPLICATE,
    INVALID,
    MAX_EPOCH_SECONDS,
    MISSING,
    QUARANTINE_SNIPPET_CHARS,
    REPEATED_ITEM,
    REVIEW_SCHEMAS,
    TS_OUT_OF_RANGE,
    WRONG_TYPE,
    check_format,
)
from recsys_assets.core.catalogue.staging import month_index, month_label


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


ITEM_TEXT = ("title", "description", "brand", "image_url")
#: The merge's fields in the order the local staging reports conflicts.
ITEM_FIELDS = (*ITEM_TEXT, "categories", "price")


@dataclass(frozen=True)
class ItemTables:
    raw: str
    typed: str
    merged: str
    quarantine: str


def item_statements(tables: ItemTables, uri: str) -> list[str]:
    """The SQL that merges repeated metadata lines as ``merge_repeated_items`` does: per field
    the longest text, the longest category list, the first price (ties to the earlier line);
    two different values of a field on one item's lines are a conflict."""
    text = ",\n  ".join(f"JSON_VALUE(record, '$.{name}') AS {name}" for name in ITEM_TEXT)
    typed = f"""
CREATE OR REPLACE TABLE {tables.typed} AS
SELECT line, JSON_VALUE(record, '$.item_id') AS item_id,
  {text},
  IF(JSON_VALUE(record, '$.n_categories') = '0', NULL, JSON_QUERY(record, '$.categories')) AS categories,
  CAST(JSON_VALUE(record, '$.n_categories') AS INT64) AS n_categories,
  SAFE_CAST(JSON_VALUE(record, '$.price') AS FLOAT64) AS price
FROM {tables.raw} WHERE error IS NULL OR error = ''
"""
    # Per field, the best value by a window (portable; BigQuery's ARRAY_AGG(... LIMIT 1) is not).
    order = {name: f"LENGTH({name}) DESC, line" for name in ITEM_TEXT}
    order |= {"categories": "n_categories DESC, line", "price": "line"}
    best = ",\n".join(
        f"""best_{name} AS (
  SELECT item_id, {name} FROM (
    SELECT item_id, {name}, ROW_NUMBER() OVER (PARTITION BY item_id ORDER BY {order[name]}) AS pick
    FROM {tables.typed} WHERE {name} IS NOT NULL)
  WHERE pick = 1)"""
        for name in ITEM_FIELDS
    )
    clashes = ",\n  ".join(f"COUNT(DISTINCT {name}) > 1 AS {name}_conflict" for name in ITEM_FIELDS)
    picks = ", ".join(f"best_{name}.{name}" for name in ITEM_FIELDS)
    joins = "\n".join(f"LEFT JOIN best_{name} USING (item_id)" for name in ITEM_FIELDS)
    merged = f"""
CREATE OR REPLACE TABLE {tables.merged} AS
WITH groups AS (
  SELECT item_id, MIN(line) AS line, COUNT(*) AS lines,
  {clashes}
  FROM {tables.typed} GROUP BY item_id
),
{best}
SELECT groups.*, {picks}
FROM groups
{joins}
"""
    names = ", ".join(f"IF(m.{name}_conflict, '{name}', NULL)" for name in ITEM_FIELDS)
    file = _literal(uri)
    quarantine = f"""
CREATE OR REPLACE TABLE {tables.quarantine} AS
SELECT {file} AS file, line, JSON_VALUE(error, '$.code') AS code, JSON_VALUE(error, '$.reason') AS reason,
       record, CAST(NULL AS INT64) AS kept_line
FROM {tables.raw} WHERE error IS NOT NULL AND error != ''
UNION ALL
SELECT {file}, t.line, '{REPEATED_ITEM}',
       CONCAT("repeats item '", t.item_id, "' of line ", CAST(m.line AS STRING), '; merged into one record',
              IF(c.conflicting != '', CONCAT(' (conflicting: ', c.conflicting, ')'), '')),
       CONCAT('item_id=', t.item_id), m.line
FROM {tables.typed} AS t
JOIN {tables.merged} AS m USING (item_id)
JOIN (SELECT m.item_id,
             ARRAY_TO_STRING(ARRAY(SELECT x FROM UNNEST([{names}]) AS x WHERE x IS NOT NULL), ', ')
               AS conflicting
      FROM {tables.merged} AS m WHERE m.lines > 1) AS c USING (item_id)
WHERE t.line != m.line
"""
    return [typed, merged, quarantine]


def item_export_statement(tables: ItemTables, dest_prefix: str) -> str:
    uri = _literal(f"{dest_prefix.rstrip('/')}/items/*.parquet")
    columns = ", ".join(["item_id", *ITEM_TEXT, "categories", "price", "line"])
    return f"""
EXPORT DATA OPTIONS (uri = {uri}, format = 'PARQUET', overwrite = true) AS
SELECT {columns} FROM {tables.merged}
"""


# Reading back what the statements above wrote.

_QUARANTINE_COLUMNS = "file, line, code, reason, record, kept_line"


def quarantine_sql(table: str, month: str | None = None) -> str:
    """The quarantine rows of ``month``, or all of them."""
    where = f" WHERE month = '{month}'" if month else ""
    return f"SELECT {_QUARANTINE_COLUMNS} FROM {table}{where} ORDER BY line"


def unassigned_sql(table: str) -> str:
    """The quarantine rows of no month (listed with every month, as locally)."""
    return f"SELECT {_QUARANTINE_COLUMNS} FROM {table} WHERE month IS NULL ORDER BY line"


def month_counts_sql(tables: Tables) -> str:
    """Events and collapsed copies per month."""
    return (
        "SELECT month, COUNTIF(copy = 1) AS events, COUNTIF(copy > 1) AS copies "
        f"FROM {tables.staged} GROUP BY month"
    )


def invalid_by_month_sql(tables: Tables) -> str:
    return f"SELECT month, COUNT(*) AS n FROM {tables.quarantine} WHERE code != '{DUPLICATE}' GROUP BY month"


def duplicate_examples_sql(tables: Tables) -> str:
    return (
        f"SELECT line, kept_line, record, reason, month FROM {tables.quarantine} "
        f"WHERE code = '{DUPLICATE}' ORDER BY line LIMIT 10"
    )


def conflict_counts_sql(tables: ItemTables) -> str:
    """Per field, the items whose lines disagree."""
    counts = ", ".join(f"COUNTIF({name}_conflict) AS {name}" for name in ITEM_FIELDS)
    return f"SELECT {counts} FROM {tables.merged}"


def conflict_examples_sql(tables: ItemTables) -> str:
    """Per field, up to ten conflicting items with their values."""
    return " UNION ALL ".join(
        f"(SELECT t.item_id, '{name}' AS field, "
        f"STRING_AGG(DISTINCT SUBSTR(CAST(t.{name} AS STRING), 1, 80), ' | ') AS `values` "
        f"FROM {tables.typed} AS t JOIN {tables.merged} AS m USING (item_id) "
        f"WHERE m.{name}_conflict GROUP BY t.item_id ORDER BY MIN(t.line) LIMIT 10)"
        for name in ITEM_FIELDS
    )
