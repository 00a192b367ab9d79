"""Request and feedback logs, written to the warehouse in batches off the request path.

Handlers only append a row to an in-memory buffer. A background task writes batches (in a
worker thread) to DuckDB locally or BigQuery in gcp. When a write fails the batch goes back
to the front of the buffer and is retried after a back-off that doubles up to 30 s; during
it, new rows do not wake the writer (a warehouse that fails fast would otherwise be retried
in a storm), and an outage is logged once when it starts and once when it ends. An outage
loses nothing until the buffer is full; beyond ``buffer_rows`` the oldest rows are dropped and
counted (``recsys_log_dropped_rows``), which bounds memory. ``recsys_log_buffered_rows`` is
kept current on every append.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections import deque
from typing import Any, Protocol

import anyio.to_thread

from recsys_assets.core.warehouse.clients import json_rows
from recsys_assets.core.warehouse.tables import LOG_TABLES, Table, connect_duckdb
from serving.metrics import Metrics

log = logging.getLogger("serving.request_log")


class Sink(Protocol):
    def write(self, table: Table, rows: list[dict[str, Any]]) -> None: ...


#: Longest wait between attempts while the warehouse is down.
MAX_BACKOFF_S = 30.0
#: Rows converted to Arrow per call (each call holds the GIL; see ``DuckDBSink.write``).
CHUNK_ROWS = 250


class DuckDBSink:
    """Appends to a DuckDB file, opening it per batch so other processes (the other API
    workers, the monitoring assets) can open it between batches."""

    def __init__(self, path: str):
        self.path = path

    def write(self, table: Table, rows: list[dict[str, Any]]) -> None:
        import pyarrow as pa

        names = table.column_names()
        # Column by column (much cheaper than pyarrow's row-wise from_pylist), in chunks:
        # pyarrow holds the GIL while it converts, and a 5,000-row batch at once stalled the
        # event loop for tens of milliseconds, which showed in the API's p99.
        schema = table.arrow_schema()
        chunks = [
            pa.record_batch([[row.get(name) for row in chunk] for name in names], schema=schema)
            for chunk in (rows[at : at + CHUNK_ROWS] for at in range(0, len(rows), CHUNK_ROWS))
        ]
        batch = pa.Table.from_batches(chunks, schema=schema)  # noqa: F841  # read in SQL
        with connect_duckdb(self.path) as con:
            # Every batch, not once: the file may have been replaced since the last one.
            con.execute(table.duckdb_ddl())
            columns = ", ".join(names)
            con.execute(f"INSERT INTO {table.name} ({columns}) SELECT {columns} FROM batch")


class BigQuerySink:
    """Streams rows with ``insert_rows_json`` into ``project.dataset.table`` (the tables are
    created by Terraform from the same definitions)."""

    def __init__(self, client: Any, dataset: str):
        self.client = client
        self.dataset = dataset

    def write(self, table: Table, rows: list[dict[str, Any]]) -> None:
        target = f"{self.client.project}.{self.dataset}.{table.name}"
        errors = self.client.insert_rows_json(target, json_rows(rows))
        if errors:
            raise RuntimeError(f"BigQuery refused rows of {target}: {errors[:3]}")


class RequestLog:
    def __init__(
        self, sink: Sink | None, metrics: Metrics, batch_rows: int, flush_s: float, buffer_rows: int
    ):
        self.sink, self.metrics = sink, metrics
        self.batch_rows, self.flush_s, self.buffer_rows = batch_rows, flush_s, buffer_rows
        self.buffers: dict[str, deque[dict[str, Any]]] = {name: deque() for name in LOG_TABLES}
        self._wake = asyncio.Event()
        self._stop = asyncio.Event()
        self._stopping = False
        #: Failed writes since the last one that worked (an outage while above 0).
        self.failing = 0
        self._task: asyncio.Task[None] | None = None
        self.dropped = dict.fromkeys(LOG_TABLES, 0)
        # Set on every append: the labelled gauges looked up once, not per request.
        self._buffered = {name: metrics.log_buffered.labels(name) for name in LOG_TABLES}
        self.written = dict.fromkeys(LOG_TABLES, 0)

    def append(self, table: str, row: dict[str, Any]) -> None:
        if self.sink is None:
            return
        buffer = self.buffers[table]
        if len(buffer) >= self.buffer_rows:
            buffer.popleft()
            self.dropped[table] += 1
            self.metrics.log_dropped.labels(table).inc()
        buffer.append(row)
        self._buffered[table].set(len(buffer))
        if len(buffer) >= self.batch_rows:
            self._wake.set()

    async def flush(self) -> bool:
        """Write what was buffered when called, batch by batch; False when a write failed
        (rows kept). Rows that arrive meanwhile wait for the next flush: chasing them would
        keep the writer busy with many tiny batches, each paying a write's fixed cost."""
        assert self.sink is not None
        for name, buffer in self.buffers.items():
            left = len(buffer)
            while left and buffer:
                batch = [buffer.popleft() for _ in range(min(self.batch_rows, left, len(buffer)))]
                left -= len(batch)
                try:
                    await anyio.to_thread.run_sync(self.sink.write, LOG_TABLES[name], batch)
                except Exception as error:  # any warehouse failure: keep the rows, retry later
                    if not self.failing:
                        log.warning("warehouse writes failing, rows kept and retried with back-off: "
                                    "%d %s rows: %s", len(batch), name, error)  # fmt: skip
                    self.failing += 1
                    self.metrics.log_failures.labels(name).inc()
                    room = self.buffer_rows - len(buffer)
                    if room < len(batch):
                        self.dropped[name] += len(batch) - room
                        self.metrics.log_dropped.labels(name).inc(len(batch) - room)
                    buffer.extendleft(reversed(batch[len(batch) - room :] if room < len(batch) else batch))
                    self._buffered[name].set(len(buffer))
                    return False
                if self.failing:
                    log.warning("warehouse writes work again after %d failed attempts", self.failing)
                    self.failing = 0
                self.written[name] += len(batch)
                self.metrics.log_written.labels(name).inc(len(batch))
            self._buffered[name].set(len(buffer))
        return True

    def start(self) -> None:
        if self.sink is not None:
            self._task = asyncio.create_task(self._run())

    async def close(self) -> bool:
        """Let a write in flight finish, then write what is left; False if rows remain."""
        if self._task is None:
            return True
        self._stopping = True
        self._stop.set()
        self._wake.set()
        await self._task
        return await self.flush()

    async def _run(self) -> None:
        backoff = 0.0  # while writes fail: seconds until the next attempt
        while not self._stopping:
            # Healthy: wake on a full batch or after the flush interval, whichever comes first.
            # Failing: wait out the back-off (only closing cuts it short).
            with contextlib.suppress(TimeoutError):
                event = self._stop if backoff else self._wake
                await asyncio.wait_for(event.wait(), timeout=backoff or self.flush_s)
            self._wake.clear()
            ok = await self.flush()
            backoff = 0.0 if ok else min(max(2 * backoff, self.flush_s), MAX_BACKOFF_S)
