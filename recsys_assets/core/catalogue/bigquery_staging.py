"""Stage the dumps with BigQuery, for dumps beyond one machine (``data.staging_engine``).

The same rules as the local staging (``staging.py``), in SQL:

1. ``number_lines`` streams a dump once (blocks on every core, as locally) into uncompressed
   text shards ``line \\x1f record \\x1f error`` in GCS: BigQuery keeps no line numbers, and
   the quarantine must name each record's line. Blank lines are counted here. Reviews go as
   they are (``numbered_block``); metadata lines are parsed as locally on the way
   (``numbered_items_block``: ids typed, text cleaned, the 2014 Python literals, which
   BigQuery cannot parse, turned into JSON).
2. ``load_job_config`` loads the shards into a raw table (one load job, parallel over shards;
   uncompressed, since BigQuery reads a gzip file on one worker and caps it at 4 GB).
3. ``review_statements`` types every review, quarantines the invalid ones with the local
   reasons, collapses duplicates (the earliest line is kept) and tags each row with its month;
   ``item_statements`` merges repeated metadata lines and counts conflicts.
4. ``export_statement`` / ``item_export_statement`` write parquet files to GCS, which are
   combined into the same ``interactions/<month>.parquet`` and ``items.parquet`` the local
   staging writes.

The steps live in ``bigquery_numbering`` (1, 2) and ``bigquery_sql`` (3, 4); this module
runs them and writes the local staging's files.
"""

from __future__ import annotations

import time
import uuid
from collections import Counter
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import orjson
import pandas as pd
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.parquet as pq

from recsys_assets.core.catalogue.amazon import ITEM_SCHEMA, REPEATED_ITEM
from recsys_assets.core.catalogue.bigquery_numbering import (
    load_job_config,
    number_lines,
    numbered_items_block,
)
from recsys_assets.core.catalogue.bigquery_sql import (
    ITEM_FIELDS,
    ItemTables,
    Tables,
    conflict_counts_sql,
    conflict_examples_sql,
    duplicate_examples_sql,
    export_statement,
    invalid_by_month_sql,
    item_export_statement,
    item_statements,
    month_counts_sql,
    quarantine_sql,
    review_statements,
    unassigned_sql,
)
from recsys_assets.core.catalogue.staging import (
    INTERACTION_SCHEMA,
    StagedInteractions,
    StagedItems,
    StagedMonth,
    quarantine_frame,
    write_quarantine,
)
from recsys_assets.core.io.storage import join, list_files, remove_prefix, to_path


@dataclass
class BigQueryStaging:
    """Where a BigQuery staging run works: a client, a dataset for its tables, and a GCS
    folder for the numbered shards and the exports (both deleted when the run ends)."""

    client: Any
    dataset: str
    staging_uri: str

    @contextmanager
    def run(self, what: str, names: tuple[str, ...]) -> Iterator[tuple[list[str], str]]:
        """A run's own table names (``staging_<run>_<what>_<name>``) and GCS folder, both
        deleted when the run ends, whether or not it succeeds."""
        run = uuid.uuid4().hex[:12]
        tables = [f"{self.dataset}.staging_{run}_{what}_{name}" for name in names]
        work = join(self.staging_uri, run)
        try:
            yield tables, work
        finally:
            for table in tables:
                self.client.delete_table(table, not_found_ok=True)
            remove_prefix(work)

    def load(self, shards: list[str], table: str) -> None:
        """One load job of every shard into ``table``."""
        self.client.load_table_from_uri(shards, table, job_config=load_job_config()).result()

    def export(self, tables: Tables, month: str, dest_prefix: str) -> list[str]:
        """Export one month; returns the parquet files written."""
        self.client.query(export_statement(tables, month, dest_prefix)).result()
        return list_files(join(dest_prefix, month), ".parquet")

    def export_items(self, tables: ItemTables, dest_prefix: str) -> list[str]:
        """Export the merged items; returns the parquet files written."""
        self.client.query(item_export_statement(tables, dest_prefix)).result()
        return list_files(join(dest_prefix, "items"), ".parquet")

    def query(self, sql: str) -> pd.DataFrame:
        return self.client.query(sql).to_dataframe(create_bqstorage_client=False)


def _read_export(files: list[str], columns: list[str]) -> pa.Table:
    """The exported parquet files as one table (``columns``, untyped and empty if none)."""
    parts = []
    for uri in files:
        with to_path(uri).open("rb") as stream:
            parts.append(pq.read_table(stream))
    return pa.concat_tables(parts) if parts else pa.table({name: [] for name in columns})


def combine_export(files: list[str], path: Path) -> int:
    """One month's exported parquet files as the local staging writes them: ordered by
    ``ts`` then line, in the same schema. Returns the rows written."""
    table = _read_export(files, [*INTERACTION_SCHEMA.names, "line"])
    if table.num_rows:
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
    with engine.run("reviews", ("raw", "typed", "staged", "quarantine")) as (names, work):
        tables = Tables(*names)
        numbered = number_lines(uri, "json", join(work, "numbered"), workers=workers)
        say(f"{uri}: {numbered.records:,} records numbered into {len(numbered.shards)} shard(s) under {work}")
        engine.load(numbered.shards, tables.raw)
        for statement in review_statements(fmt, tables, uri, partitioned_range):
            engine.client.query(statement).result()
        counts = engine.query(month_counts_sql(tables)).set_index("month")
        invalid = engine.query(invalid_by_month_sql(tables))
        unassigned = engine.query(unassigned_sql(tables.quarantine))
        unassigned["kept_line"] = unassigned["kept_line"].astype("Int64")
        by_month = dict(
            zip(invalid["month"].dropna(), invalid.loc[invalid["month"].notna(), "n"], strict=True)
        )
        staged: dict[str, StagedMonth] = {}
        for month in sorted(months):
            path = out / "interactions" / f"{month}.parquet"
            rows = combine_export(engine.export(tables, month, join(work, "export")), path)
            own = engine.query(quarantine_sql(tables.quarantine, month))
            q_path = write_quarantine(
                [quarantine_frame(uri, [], [], [], []), own, unassigned],
                out / "interactions_quarantine" / f"{month}.parquet",
            )
            staged[month] = StagedMonth(
                path=path,
                quarantine_path=q_path,
                rows=rows,
                duplicates=int(counts["copies"].get(month, 0)),
                invalid=int(by_month.get(month, 0)) + len(unassigned),
            )
            say(f"{month}: {rows:,} rows exported")
        examples = engine.query(duplicate_examples_sql(tables))
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


def combine_items_export(files: list[str], path: Path) -> int:
    """The exported items as ``items.parquet``: in order of each item's first line, categories
    as lists, the local schema."""
    frame = _read_export(files, list(ITEM_SCHEMA.names)).to_pandas()
    frame = frame.sort_values("line", kind="stable").reset_index(drop=True)
    frame["categories"] = [orjson.loads(c) if isinstance(c, str) else [] for c in frame["categories"]]
    table = pa.Table.from_pandas(frame[list(ITEM_SCHEMA.names)], schema=ITEM_SCHEMA, preserve_index=False)
    path.parent.mkdir(parents=True, exist_ok=True)
    pq.write_table(table.drop_columns(["line"]), path)
    return table.num_rows


def stage_items_bigquery(
    engine: BigQueryStaging,
    uri: str,
    fmt: str,
    out: Path,
    *,
    workers: int | None = None,
    progress: Callable[[str], None] | None = None,
) -> StagedItems:
    """``stage_items`` with BigQuery merging repeated lines: the same files and counts."""
    say = progress or (lambda message: None)
    started = time.perf_counter()
    with engine.run("items", ("raw", "typed", "merged", "quarantine")) as (names, work):
        tables = ItemTables(*names)
        numbered = number_lines(uri, fmt, join(work, "numbered"), workers=workers, parse=numbered_items_block)
        say(f"{uri}: {numbered.records:,} records parsed into {len(numbered.shards)} shard(s) under {work}")
        engine.load(numbered.shards, tables.raw)
        for statement in item_statements(tables, uri):
            engine.client.query(statement).result()
        path = out / "items.parquet"
        n_items = combine_items_export(engine.export_items(tables, join(work, "export")), path)
        quarantine = engine.query(quarantine_sql(tables.quarantine))
        conflicts = engine.query(conflict_counts_sql(tables)).iloc[0]
        examples = engine.query(conflict_examples_sql(tables))
    quarantine_path = write_quarantine([quarantine], out / "items_quarantine.parquet")
    repeated = int((quarantine["code"] == REPEATED_ITEM).sum())
    return StagedItems(
        path=path,
        quarantine_path=quarantine_path,
        items=n_items,
        records_read=numbered.records,
        blank_lines=numbered.blank_lines,
        invalid=len(quarantine) - repeated,
        repeated_lines=repeated,
        conflicts=+Counter({name: int(conflicts[name]) for name in ITEM_FIELDS}),
        conflict_examples=examples,
        nulled=numbered.nulled,
        seconds=time.perf_counter() - started,
    )
