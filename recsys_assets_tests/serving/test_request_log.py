"""Request and feedback logs: to DuckDB and the BigQuery emulator, through a warehouse outage
(nothing lost within the buffer), a locked or replaced file, an older table."""

from __future__ import annotations

import asyncio
from pathlib import Path
from typing import Any

import duckdb
import pytest
from litestar.testing import AsyncTestClient

from recsys_assets_tests.serving.versions import (
    publish_version,
    settings,
)
from serving.app import create_app
from serving.request_log import DuckDBSink

pytestmark = pytest.mark.anyio


async def test_requests_and_feedback_are_logged_to_duckdb(tmp_path: Path) -> None:
    publish_version(tmp_path, "v1")
    async with AsyncTestClient(app=create_app(settings(tmp_path))) as client:
        ids = []
        for user in ("u0", "u1", "stranger"):
            ids.append((await client.post("/recommend", json={"user_id": user, "k": 3})).json()["request_id"])
        accepted = await client.post(
            "/feedback", json={"request_id": ids[0], "user_id": "u0", "item_id": "I003", "event": "click"}
        )
        assert accepted.status_code == 202 and accepted.json() == {"status": "accepted"}
    # Leaving the client shuts the app down, which flushes what is left.
    with duckdb.connect(str(tmp_path / "warehouse.duckdb"), read_only=True) as con:
        rows = con.execute(
            "SELECT request_id, user_id, strategy, model_version, k, len(items), len(scores), latency_ms > 0 "
            "FROM recommendation_requests ORDER BY ts"
        ).fetchall()
        events = con.execute("SELECT request_id, user_id, item_id, event FROM feedback_events").fetchall()
    assert rows == [
        (ids[0], "u0", "user", "v1", 3, 3, 3, True),
        (ids[1], "u1", "user", "v1", 3, 3, 3, True),
        (ids[2], "stranger", "popular", "v1", 3, 3, 3, True),
    ]
    assert events == [(ids[0], "u0", "I003", "click")]


class FlakySink:
    """Fails its first ``failures`` writes, then writes to DuckDB."""

    def __init__(self, path: str, failures: int):
        self.inner, self.failures, self.calls = DuckDBSink(path), failures, 0

    def write(self, table: Any, rows: list[dict[str, Any]]) -> None:
        self.calls += 1
        if self.calls <= self.failures:
            raise ConnectionError("warehouse unreachable")
        self.inner.write(table, rows)


async def test_a_warehouse_outage_loses_no_rows_within_the_buffer(tmp_path: Path) -> None:
    publish_version(tmp_path, "v1")
    sink = FlakySink(str(tmp_path / "warehouse.duckdb"), failures=3)
    app = create_app(settings(tmp_path, log_batch_rows=4), sink=sink)
    async with AsyncTestClient(app=app) as client:
        for i in range(10):
            assert (await client.post("/recommend", json={"user_id": f"x{i}", "k": 1})).status_code == 200
        for _ in range(200):
            if app.state.services.request_log.written["recommendation_requests"] == 10:
                break
            await asyncio.sleep(0.05)
        text = (await client.get("/metrics")).text
    assert sink.calls > 3
    assert 'recsys_log_write_failures_total{table="recommendation_requests"} 3.0' in text
    with duckdb.connect(str(tmp_path / "warehouse.duckdb"), read_only=True) as con:
        users = [
            r[0] for r in con.execute("SELECT user_id FROM recommendation_requests ORDER BY ts").fetchall()
        ]
    assert users == [f"x{i}" for i in range(10)]


async def test_beyond_the_buffer_the_oldest_rows_are_dropped_and_counted(tmp_path: Path) -> None:
    publish_version(tmp_path, "v1")
    sink = FlakySink(str(tmp_path / "warehouse.duckdb"), failures=10**6)
    app = create_app(settings(tmp_path, log_buffer_rows=5, log_flush_s=3600.0), sink=sink)
    async with AsyncTestClient(app=app) as client:
        for i in range(8):
            await client.post("/recommend", json={"user_id": f"x{i}", "k": 1})
        buffered = [r["user_id"] for r in app.state.services.request_log.buffers["recommendation_requests"]]
        assert buffered == [f"x{i}" for i in range(3, 8)]
        assert app.state.services.request_log.dropped["recommendation_requests"] == 3
        text = (await client.get("/metrics")).text
        assert 'recsys_log_dropped_rows_total{table="recommendation_requests"} 3.0' in text


async def test_requests_and_feedback_are_logged_to_bigquery(tmp_path: Path, bigquery_client: Any) -> None:
    from recsys_assets.core.warehouse.tables import LOG_TABLES
    from serving.request_log import BigQuerySink

    bigquery_client.create_dataset("serving_logs", exists_ok=True)
    for table in LOG_TABLES.values():
        table.create_in_bigquery(bigquery_client, "serving_logs")
    created = bigquery_client.get_table("test-project.serving_logs.recommendation_requests")
    assert created.time_partitioning.field == "ts" and created.clustering_fields == [
        "strategy",
        "model_version",
    ]
    publish_version(tmp_path, "v1")
    app = create_app(settings(tmp_path), sink=BigQuerySink(bigquery_client, "serving_logs"))
    async with AsyncTestClient(app=app) as client:
        first = (await client.post("/recommend", json={"user_id": "u2", "k": 2})).json()
        await client.post("/recommend", json={"user_id": "nobody", "k": 1, "recent_items": ["I001"]})
        event = {"request_id": first["request_id"], "user_id": "u2", "item_id": "I044", "event": "purchase"}
        assert (await client.post("/feedback", json=event)).status_code == 202
    rows = [
        dict(r)
        for r in bigquery_client.query(
            "SELECT user_id, strategy, model_version, k, items, scores "
            "FROM serving_logs.recommendation_requests ORDER BY ts"
        ).result()
    ]
    assert [(r["user_id"], r["strategy"], r["model_version"], r["k"]) for r in rows] == [
        ("u2", "user", "v1", 2),
        ("nobody", "recent_items", "v1", 1),
    ]
    assert rows[0]["items"] == [i["item_id"] for i in first["items"]]
    assert rows[0]["scores"] == pytest.approx([i["score"] for i in first["items"]])
    events = bigquery_client.query(
        "SELECT request_id, item_id, event FROM serving_logs.feedback_events"
    ).result()
    assert [tuple(r.values()) for r in events] == [(first["request_id"], "I044", "purchase")]


def _hold_lock(path: Path, seconds: float) -> Any:
    """Another process holding the DuckDB file (DuckDB's lock is per process)."""
    import subprocess
    import sys

    code = (
        f"import duckdb, time\ncon = duckdb.connect({str(path)!r})\n"
        f"print('held', flush=True)\ntime.sleep({seconds})"
    )
    holder = subprocess.Popen([sys.executable, "-c", code], stdout=subprocess.PIPE, text=True)
    assert holder.stdout is not None and holder.stdout.readline() == "held\n"
    return holder


def test_duckdb_waits_for_another_writer_then_names_the_file(tmp_path: Path) -> None:
    import time

    from recsys_assets.core.warehouse.tables import connect_duckdb

    path = tmp_path / "warehouse.duckdb"
    holder = _hold_lock(path, 1.0)
    start = time.monotonic()
    with connect_duckdb(str(path), wait_s=30) as con:  # waits for the holder to exit
        assert con.execute("SELECT 1").fetchone() == (1,)
    assert time.monotonic() - start > 0.3
    holder.wait(timeout=10)

    holder = _hold_lock(path, 30.0)
    try:
        with pytest.raises(duckdb.IOException, match=r"Could not set lock on file .*warehouse\.duckdb"):
            connect_duckdb(str(path), wait_s=0.3)
    finally:
        holder.kill()
        holder.wait(timeout=10)


def test_the_duckdb_sink_recreates_a_table_whose_file_was_replaced(tmp_path: Path) -> None:
    from datetime import UTC, datetime

    from recsys_assets.core.warehouse.tables import LOG_TABLES

    path = tmp_path / "warehouse.duckdb"
    sink = DuckDBSink(str(path))
    row = {"request_id": "r", "ts": datetime.now(UTC), "user_id": "u", "item_id": "i", "event": "click"}
    sink.write(LOG_TABLES["feedback_events"], [row] * 600)  # more than one Arrow chunk
    path.unlink()
    sink.write(LOG_TABLES["feedback_events"], [row])
    with duckdb.connect(str(path), read_only=True) as con:
        assert con.execute("SELECT count(*), min(event) FROM feedback_events").fetchone() == (1, "click")


def test_an_older_local_warehouse_gets_the_new_columns(tmp_path: Path) -> None:
    from datetime import UTC, datetime

    from recsys_assets.core.warehouse.tables import LOG_TABLES

    path = tmp_path / "warehouse.duckdb"
    with duckdb.connect(str(path)) as con:  # the table as it was before experiments
        columns = ", ".join(f"{c} VARCHAR NOT NULL" for c in ("request_id", "user_id", "item_id", "event"))
        con.execute(f"CREATE TABLE feedback_events ({columns}, ts TIMESTAMPTZ NOT NULL)")
        con.execute("INSERT INTO feedback_events VALUES ('old', 'u', 'i', 'click', now())")
    row = {"request_id": "new", "ts": datetime.now(UTC), "user_id": "u", "item_id": "i", "event": "click",
           "experiment": "e1", "arm": "treatment"}  # fmt: skip
    DuckDBSink(str(path)).write(LOG_TABLES["feedback_events"], [row])
    with duckdb.connect(str(path), read_only=True) as con:
        rows = con.execute(
            "SELECT request_id, experiment, arm FROM feedback_events ORDER BY request_id"
        ).fetchall()
    assert rows == [("new", "e1", "treatment"), ("old", None, None)]
