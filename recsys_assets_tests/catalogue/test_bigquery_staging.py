"""The BigQuery staging SQL, run on bqemulator, stages what the local staging stages.

Covered here: numbering the lines (and converting 2014 literals), and every SQL statement
that types, quarantines, deduplicates and assigns months, on the generator's quirky files.
Not covered (no emulator links BigQuery to GCS): the load job from ``gs://`` and
``EXPORT DATA``; their configuration and SQL text are checked as written.
"""

from __future__ import annotations

import uuid
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import pytest

from recsys_assets.core.catalogue.bigquery_numbering import (
    SEPARATOR,
    load_job_config,
    number_lines,
    numbered_block,
)
from recsys_assets.core.catalogue.bigquery_sql import (
    ItemTables,
    Tables,
    export_statement,
    item_export_statement,
    review_statements,
)
from recsys_assets.core.catalogue.bigquery_staging import (
    BigQueryStaging,
    stage_interactions_bigquery,
    stage_items_bigquery,
)
from recsys_assets.core.catalogue.staging import stage_interactions, stage_items
from recsys_assets.devdata.synthetic import generate

TINY = {
    "n_items": 200,
    "n_users": 80,
    "n_reviews": 1_500,
    "n_reviewed_items": 150,
    "duplicate_review_share": 0.01,
    "wrong_type_review_share": 0.003,
    "blank_lines": 3,
}


def test_numbering_keeps_line_numbers_and_converts_literals() -> None:
    block = b"{'asin': 'A', 'title': 'x\\x1fy'}\n\n{'asin': f(1)}\n  \n{'asin': {1, 2}}\nbad \x1f line\n"
    numbered = numbered_block("literal", 7, block)
    rows = [line.split(SEPARATOR) for line in numbered.text.decode().splitlines()]
    assert (numbered.records, numbered.blank_lines) == (4, 2)
    # The separator never leaks into a field: JSON escapes it, raw text replaces it.
    assert rows[0] == ["7", '{"asin":"A","title":"x\\u001fy"}', ""]
    assert rows[3][:2] == ["12", "bad \ufffd line"]
    assert (
        rows[1][0] == "9"
        and rows[1][2]
        == "not a valid Python dict literal: ValueError: malformed node or string on line 1: Call"
    )
    assert rows[2][0] == "11" and rows[2][2].startswith("not a valid Python dict literal: TypeError")


def _load(client: Any, dataset: str, shards: list[str]) -> None:
    client.create_dataset(dataset, exists_ok=True)
    _insert(client, f"{dataset}.raw", shards)


def _insert(client: Any, name: str, shards: list[str]) -> None:
    from google.cloud import bigquery

    table = bigquery.Table(f"{client.project}.{name}", schema=load_job_config().schema)
    client.create_table(table, exists_ok=True)
    rows = []
    for shard in shards:
        for line in Path(shard).read_text().splitlines():
            number, record, error = line.split(SEPARATOR)
            rows.append({"line": int(number), "record": record, "error": error or None})
    for start in range(0, len(rows), 500):
        assert client.insert_rows_json(table, rows[start : start + 500]) == []


def _query(client: Any, sql: str) -> pd.DataFrame:
    return client.query(sql).to_dataframe(create_bqstorage_client=False)


@pytest.mark.parametrize("fmt", ["2018", "2023"])
def test_the_sql_stages_what_the_local_staging_stages(tmp_path: Path, bigquery_client: Any, fmt: str) -> None:
    manifest = generate("small", tmp_path / "raw", fmt=fmt, image_files=False, overrides=TINY)
    uri = str(tmp_path / "raw" / manifest["files"]["reviews"])  # type: ignore[index]
    months = [str(m) for m in np.arange(np.datetime64("2012-08"), np.datetime64("2014-07"))]
    span = ("2012-08", "2014-07")  # the last month lies outside: its reviews are out of range
    local = stage_interactions(uri, fmt, months, span, tmp_path / "local", workers=1)

    numbered = number_lines(uri, "json", str(tmp_path / "numbered"), workers=1)
    assert (numbered.records, numbered.blank_lines) == (local.records_read, local.blank_lines)
    dataset = f"staging_{fmt}_{uuid.uuid4().hex[:6]}"
    _load(bigquery_client, dataset, numbered.shards)
    tables = Tables(*(f"{dataset}.{name}" for name in ("raw", "typed", "staged", "quarantine")))
    for statement in review_statements(fmt, tables, uri, span):
        bigquery_client.query(statement).result()

    staged = _query(
        bigquery_client,
        f"SELECT user_id, item_id, rating, ts, line, month, copy, kept_line FROM {tables.staged}",
    )
    events = staged[staged["copy"] == 1]
    ours = pd.concat([local.load(m).assign(month=m) for m in months], ignore_index=True)
    key = ["user_id", "item_id", "month"]
    assert len(events) == len(ours) == local.rows
    columns = [*key, "rating"]
    assert events.sort_values(columns)[columns].values.tolist() == (
        ours.sort_values(columns)[columns].values.tolist()
    )

    quarantine = _query(
        bigquery_client, f"SELECT line, code, reason, kept_line, month FROM {tables.quarantine}"
    )
    local_q = pd.concat(
        [local.months[m].load_quarantine() for m in months], ignore_index=True
    ).drop_duplicates("line")
    by_line = quarantine.set_index("line").sort_index()
    expected = local_q.set_index("line").sort_index()
    assert by_line["code"].to_dict() == expected["code"].to_dict()
    duplicates = by_line[by_line["code"] == "duplicate"]
    assert len(duplicates) == local.duplicates > 0
    assert duplicates["kept_line"].astype(int).to_dict() == (
        expected.loc[expected["code"] == "duplicate", "kept_line"].astype(int).to_dict()
    )
    # Reasons match the local ones word for word, but for values shown as JSON, not Python.
    same = by_line["code"].isin(["duplicate", "missing_field", "ts_out_of_range"])
    assert by_line.loc[same, "reason"].to_dict() == expected.loc[same[same].index, "reason"].to_dict()
    wrong = by_line[by_line["code"] == "wrong_type"]["reason"]
    assert len(wrong) == (expected["code"] == "wrong_type").sum() > 0
    assert any("is a list ([" in r for r in wrong) and any("is a dict ({" in r for r in wrong)


def test_export_and_load_configuration() -> None:
    config = load_job_config()
    assert (config.source_format, config.field_delimiter, config.quote_character) == ("CSV", SEPARATOR, "")
    assert [f.name for f in config.schema] == ["line", "record", "error"]
    sql = export_statement(
        Tables("d.raw", "d.typed", "d.staged", "d.q"), "2013-03", "gs://b/export/interactions/"
    )
    assert "uri = 'gs://b/export/interactions/2013-03/*.parquet'" in sql
    assert "WHERE month = '2013-03' AND copy = 1" in sql


class EmulatorStaging(BigQueryStaging):
    """A BigQuery staging run on bqemulator. The two requests that need BigQuery to reach GCS
    (a load job from the shards, EXPORT DATA) are recorded, and done through the emulator's
    own API instead: rows inserted, the export's SELECT run and written as parquet."""

    def __init__(self, client: Any, dataset: str, staging_uri: str) -> None:
        super().__init__(client, dataset, staging_uri)
        self.loads: list[tuple[list[str], str]] = []
        self.exports: list[str] = []

    def load(self, shards: list[str], table: str) -> None:
        self.loads.append((list(shards), table))
        _insert(self.client, table, shards)

    def export_items(self, tables: ItemTables, dest_prefix: str) -> list[str]:
        sql = item_export_statement(tables, dest_prefix)
        self.exports.append(sql)
        rows = _query(self.client, sql.split(") AS\n", 1)[1])
        target = Path(dest_prefix) / "items" / "000000000000.parquet"
        target.parent.mkdir(parents=True, exist_ok=True)
        rows.to_parquet(target, index=False)
        return [str(target)]

    def export(self, tables: Tables, month: str, dest_prefix: str) -> list[str]:
        sql = export_statement(tables, month, dest_prefix)
        self.exports.append(sql)
        rows = _query(self.client, sql.split(") AS\n", 1)[1])
        target = Path(dest_prefix) / month / "000000000000.parquet"
        target.parent.mkdir(parents=True, exist_ok=True)
        rows.to_parquet(target, index=False)
        return [str(target)]


def test_a_bigquery_staging_run_writes_what_the_local_run_writes(
    tmp_path: Path, bigquery_client: Any
) -> None:
    manifest = generate("small", tmp_path / "raw", fmt="2023", image_files=False, overrides=TINY)
    uri = str(tmp_path / "raw" / manifest["files"]["reviews"])  # type: ignore[index]
    months = [str(m) for m in np.arange(np.datetime64("2013-09"), np.datetime64("2014-07"))]
    span = ("2012-08", "2014-08")
    local = stage_interactions(uri, "2023", months, span, tmp_path / "local", workers=1)

    dataset = f"run_{uuid.uuid4().hex[:6]}"
    bigquery_client.create_dataset(dataset)
    engine = EmulatorStaging(bigquery_client, dataset, str(tmp_path / "gcs" / "staging"))
    remote = stage_interactions_bigquery(engine, uri, "2023", months, span, tmp_path / "bq", workers=1)

    assert (remote.records_read, remote.blank_lines, remote.records_other_months) == (
        local.records_read, local.blank_lines, local.records_other_months,
    )  # fmt: skip
    for month in months:
        ours, theirs = local.months[month], remote.months[month]
        assert (theirs.rows, theirs.duplicates, theirs.invalid) == (ours.rows, ours.duplicates, ours.invalid)
        # The same file: same rows, same order, same schema.
        assert pd.read_parquet(theirs.path).equals(pd.read_parquet(ours.path))
        local_q, remote_q = ours.load_quarantine(), theirs.load_quarantine()
        assert remote_q[["line", "code", "kept_line"]].equals(local_q[["line", "code", "kept_line"]])
    assert local.duplicates > 0

    # The requests that would go to BigQuery for GCS, as sent: one load of every shard, one
    # export per month; then the run's tables and its staging folder are gone.
    [(shards, table)] = engine.loads
    run = table.split(".")[1].split("_")[1]
    assert table == f"{dataset}.staging_{run}_reviews_raw" and len(shards) == 1
    assert [sql.split("uri = ")[1].split(",")[0] for sql in engine.exports] == [
        f"'{tmp_path}/gcs/staging/{run}/export/{month}/*.parquet'" for month in months
    ]
    assert not list(bigquery_client.list_tables(dataset))
    assert not (tmp_path / "gcs" / "staging").exists() or not any((tmp_path / "gcs" / "staging").iterdir())


@pytest.mark.parametrize("fmt", ["2014", "2023"])
def test_bigquery_merges_repeated_items_as_the_local_staging(
    tmp_path: Path, bigquery_client: Any, fmt: str
) -> None:
    quirks = {**TINY, "repeated_item_share": 0.1, "wrong_type_item_share": 0.02}
    manifest = generate("small", tmp_path / "raw", fmt=fmt, image_files=False, overrides=quirks)
    uri = str(tmp_path / "raw" / manifest["files"]["metadata"])  # type: ignore[index]
    local = stage_items(uri, fmt, tmp_path / "local", workers=1)

    dataset = f"items_{fmt}_{uuid.uuid4().hex[:6]}"
    bigquery_client.create_dataset(dataset)
    engine = EmulatorStaging(bigquery_client, dataset, str(tmp_path / "gcs" / "staging"))
    remote = stage_items_bigquery(engine, uri, fmt, tmp_path / "bq", workers=1)

    assert local.repeated_lines == 20 and local.invalid == 4 and sum(local.conflicts.values()) > 0
    assert (remote.items, remote.records_read, remote.blank_lines, remote.invalid, remote.repeated_lines) == (
        local.items, local.records_read, local.blank_lines, local.invalid, local.repeated_lines,
    )  # fmt: skip
    assert remote.conflicts == local.conflicts and remote.nulled == local.nulled
    assert pd.read_parquet(remote.path).equals(pd.read_parquet(local.path))
    columns = ["line", "code", "reason", "kept_line"]
    assert remote.load_quarantine()[columns].equals(local.load_quarantine()[columns])
    assert set(remote.conflict_examples["field"]) == set(local.conflicts)
    assert remote.conflict_examples["values"].str.contains(" | ").all()
    assert [sql.split("uri = ")[1].split(",")[0].rsplit("/", 2)[1] for sql in engine.exports] == ["items"]
    assert not list(bigquery_client.list_tables(dataset))
