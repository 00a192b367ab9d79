"""The warehouse the monitoring assets read and write: a DuckDB file locally, a BigQuery dataset
in gcp, behind one small interface so the asset code and most SQL are shared.

SQL is written once with ``{table_name}`` placeholders and ``@name`` parameters (BigQuery's
form); ``DuckDBWarehouse`` rewrites the parameters to DuckDB's ``$name``. Where the dialects
differ, a query asks ``dialect`` and picks its snippet.
"""

from __future__ import annotations

import datetime as dt
import re
from typing import Any, Literal, Protocol

import pandas as pd

from recsys_assets.core.warehouse.tables import TABLES, Table, connect_duckdb
from recsys_assets.settings.warehouse import WarehouseSettings

Dialect = Literal["duckdb", "bigquery"]


class Warehouse(Protocol):
    dialect: Dialect

    def query(self, sql: str, params: dict[str, Any] | None = None) -> pd.DataFrame:
        """Run ``sql`` (``{table}`` placeholders, ``@name`` parameters) and return the rows."""
        ...

    def replace_day(self, table: Table, day: dt.date, rows: pd.DataFrame) -> None:
        """Replace every row of ``table`` whose partition column is ``day`` with ``rows``."""
        ...


def json_rows(rows: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """Rows as BigQuery's JSON APIs take them: dates and timestamps in ISO form."""
    return [{k: (v.isoformat() if hasattr(v, "isoformat") else v) for k, v in row.items()} for row in rows]


def open_warehouse(settings: WarehouseSettings, project: str) -> Warehouse:
    """The warehouse the settings name: a DuckDB file, or a BigQuery dataset of ``project``."""
    if settings.kind == "duckdb":
        return DuckDBWarehouse(settings.duckdb_path)
    return BigQueryWarehouse(bigquery_client(project, settings.endpoint), settings.dataset)


def bigquery_client(project: str, endpoint: str = "") -> Any:
    """A BigQuery client; ``endpoint`` points it at an emulator, which takes no credentials."""
    from google.cloud import bigquery

    if not endpoint:
        return bigquery.Client(project=project)
    from google.auth.credentials import AnonymousCredentials

    return bigquery.Client(
        project=project,
        credentials=AnonymousCredentials(),
        client_options={"api_endpoint": endpoint},
    )


class DuckDBWarehouse:
    dialect: Dialect = "duckdb"

    def __init__(self, path: str):
        self.path = path
        self._created = False

    def _sql(self, sql: str) -> str:
        return re.sub(r"@(\w+)", r"$\1", sql.format(**{name: name for name in TABLES}))

    def query(self, sql: str, params: dict[str, Any] | None = None) -> pd.DataFrame:
        with connect_duckdb(self.path) as con:
            if not self._created:  # a fresh warehouse has no tables until the API's first batch
                for table in TABLES.values():
                    con.execute(table.duckdb_ddl())
                self._created = True
            frame: pd.DataFrame = con.execute(self._sql(sql), params or {}).df()
            return frame

    def replace_day(self, table: Table, day: dt.date, rows: pd.DataFrame) -> None:
        columns = ", ".join(table.column_names())
        frame = rows[table.column_names()]  # noqa: F841  # read in SQL
        with connect_duckdb(self.path) as con:
            con.execute(table.duckdb_ddl())
            con.execute("BEGIN TRANSACTION")
            con.execute(f"DELETE FROM {table.name} WHERE {table.partition} = $day", {"day": day})
            con.execute(f"INSERT INTO {table.name} ({columns}) SELECT {columns} FROM frame")
            con.execute("COMMIT")


class BigQueryWarehouse:
    dialect: Dialect = "bigquery"

    def __init__(self, client: Any, dataset: str):
        self.client = client
        self.dataset = dataset

    def _sql(self, sql: str) -> str:
        names = {name: f"`{self.client.project}.{self.dataset}.{name}`" for name in TABLES}
        return sql.format(**names)

    def _job_config(self, params: dict[str, Any] | None) -> Any:
        from google.cloud import bigquery

        return bigquery.QueryJobConfig(
            query_parameters=[_bigquery_parameter(name, value) for name, value in (params or {}).items()]
        )

    def query(self, sql: str, params: dict[str, Any] | None = None) -> pd.DataFrame:
        job = self.client.query(self._sql(sql), job_config=self._job_config(params))
        frame: pd.DataFrame = job.result().to_dataframe(create_bqstorage_client=False)
        return frame

    def replace_day(self, table: Table, day: dt.date, rows: pd.DataFrame) -> None:
        """Delete the day, then append its rows with a load job. Not streaming inserts: rows in
        the streaming buffer cannot be deleted for a while, so a rerun of the day would fail.
        (DML and a load job share no transaction: a failure between them leaves the day empty
        until the partition is materialized again.)"""
        from google.cloud import bigquery

        target = f"{self.client.project}.{self.dataset}.{table.name}"
        self.query(f"DELETE FROM `{target}` WHERE {table.partition} = @day", {"day": day})
        payload = json_rows(rows[table.column_names()].to_dict("records"))
        if payload:
            config = bigquery.LoadJobConfig(
                schema=[bigquery.SchemaField.from_api_repr(f) for f in table.bigquery_schema()],
                write_disposition=bigquery.WriteDisposition.WRITE_APPEND,
            )
            self.client.load_table_from_json(payload, target, job_config=config).result()


#: Python type -> BigQuery parameter type, most specific first (bool is an int, datetime a date).
_PARAMETER_TYPES: tuple[tuple[type, str], ...] = (
    (bool, "BOOL"),
    (int, "INT64"),
    (float, "FLOAT64"),
    (dt.datetime, "TIMESTAMP"),
    (dt.date, "DATE"),
)


def _bigquery_parameter(name: str, value: Any) -> Any:
    from google.cloud import bigquery

    if isinstance(value, list):
        kind = "FLOAT64" if value and isinstance(value[0], float) else "STRING"
        return bigquery.ArrayQueryParameter(name, kind, value)
    scalar = next((kind for python, kind in _PARAMETER_TYPES if isinstance(value, python)), None)
    if scalar is None:
        return bigquery.ScalarQueryParameter(name, "STRING", str(value))
    return bigquery.ScalarQueryParameter(name, scalar, value)
