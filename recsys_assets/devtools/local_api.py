"""The API as a local subprocess, for the demos: started on a free loopback port over a
manifest and a DuckDB warehouse, waited for, stopped."""

from __future__ import annotations

import os
import socket
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import httpx

from recsys_assets.settings import PROJECT_ROOT


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


@contextmanager
def local_api(manifest: Path, duckdb_path: str, **env: str) -> Iterator[str]:
    """A uvicorn API over ``manifest`` logging to ``duckdb_path``, checking for new versions
    every 2 s; yields its URL and stops it on exit."""
    port = free_port()
    variables = {
        **os.environ,
        "RECSYS_RELOAD_INTERVAL_S": "2",
        "RECSYS_LOG_FLUSH_S": "1",
        "RECSYS_SERVING_MANIFEST": str(manifest),
        "RECSYS_WAREHOUSE_DUCKDB": duckdb_path,
        **env,
    }
    api = subprocess.Popen(
        [str(Path(sys.executable).with_name("uvicorn")), "--factory", "serving.app:create_app",
         "--port", str(port), "--log-level", "warning"],
        env=variables, cwd=PROJECT_ROOT,
    )  # fmt: skip
    try:
        yield f"http://127.0.0.1:{port}"
    finally:
        api.terminate()
        api.wait(timeout=30)


def wait_for(
    url: str, predicate: Callable[[dict[str, Any]], bool], what: str, timeout: float = 120.0
) -> dict[str, Any]:
    """``/readyz``'s body once ``predicate`` holds for it (``SystemExit`` saying ``what`` the
    API did not do in time)."""
    deadline = time.monotonic() + timeout
    while True:
        try:
            body: dict[str, Any] = httpx.get(f"{url}/readyz", timeout=5).json()
            if predicate(body):
                return body
        except httpx.HTTPError:
            pass
        if time.monotonic() > deadline:
            raise SystemExit(f"the API did not {what} within {timeout:.0f} s")
        time.sleep(0.5)


def logged_rows(path: str, table: str, where: str = "TRUE", params: dict[str, Any] | None = None) -> int:
    """Rows of a local warehouse table matching ``where`` (0 before the API's first batch
    creates the file or the table)."""
    from recsys_assets.core.warehouse.tables import connect_duckdb

    if not Path(path).is_file():
        return 0
    with connect_duckdb(path, read_only=True) as con:
        tables = {r[0] for r in con.execute("SELECT table_name FROM information_schema.tables").fetchall()}
        if table not in tables:
            return 0
        return int(con.execute(f"SELECT count(*) FROM {table} WHERE {where}", params or {}).fetchone()[0])
