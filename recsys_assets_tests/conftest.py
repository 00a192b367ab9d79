"""Shared fixtures and helpers: hermetic settings and resources, a GCS emulator, a BigQuery
emulator, an HTTP file server, and starting and stopping test servers."""

from __future__ import annotations

import gzip
import http.server
import os
import socket
import subprocess
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from recsys_assets.settings import Settings

# gcsfs probes for hierarchical-namespace buckets on first use; against the emulator each
# probe stalls for a minute or more. It must be set before gcsfs is imported.
os.environ.setdefault("GCSFS_EXPERIMENTAL_ZB_HNS_SUPPORT", "false")

GCS_BUCKET = "test-bucket"


@pytest.hookimpl(tryfirst=True)  # before xdist reads the groups
def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    """``--dist loadgroup`` keeps a file's tests on one worker (its module fixtures are built
    once), and every test of an ``xdist_group`` together (the pipeline is materialized once)."""
    for item in items:
        if not item.get_closest_marker("xdist_group"):
            item.add_marker(pytest.mark.xdist_group(item.nodeid.split("::")[0]))


def make_settings(root: Path, **sections: Any) -> Settings:
    """Settings for a test, independent of the process environment: artifacts under ``root``,
    the local warehouse beside them, and ``sections`` (nested dicts) over the defaults."""
    values: dict[str, Any] = {
        "artifacts": {"root": str(root / "artifacts")},
        "warehouse": {"duckdb_path": str(root / "warehouse.duckdb")},
    }
    for name, section in sections.items():
        values[name] = {**values.get(name, {}), **section}
    return Settings.model_validate(values)


def make_resources(settings: Settings, runner_env: dict[str, str] | None = None) -> dict[str, Any]:
    """The local resources for ``settings``; job subprocesses get ``runner_env`` on top of ours."""
    from recsys_assets.defs.environments import build_resources
    from resources.job_runners import LocalJobRunner

    return {**build_resources(settings), "job_runner": LocalJobRunner(env=runner_env or {})}


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def wait_for_port(process: subprocess.Popen[bytes], port: int, log: Path, what: str, timeout: float) -> None:
    """Until ``process`` accepts connections on ``port``; fails with its log if it exits."""
    deadline = time.monotonic() + timeout
    while True:
        assert process.poll() is None, log.read_text(errors="replace")[-3000:]
        try:
            socket.create_connection(("127.0.0.1", port), timeout=0.2).close()
            return
        except OSError:
            assert time.monotonic() < deadline, f"{what} did not start"
            time.sleep(0.1)


def stop(process: subprocess.Popen[bytes]) -> None:
    """SIGTERM, then SIGKILL if it has not exited within 30 s (a busy machine)."""
    process.terminate()
    try:
        process.wait(timeout=30)
    except subprocess.TimeoutExpired:
        process.kill()
        process.wait(timeout=30)


def write_gz(path: Path, lines: list[str]) -> Path:
    with gzip.open(path, "wt", encoding="utf-8") as fh:
        fh.write("\n".join(lines) + "\n")
    return path


@pytest.fixture(scope="session")
def gcs_emulator() -> Iterator[str]:
    """A real GCS API (gcp-storage-emulator) on loopback; yields its endpoint."""
    from gcp_storage_emulator.server import create_server

    port = free_port()
    server = create_server("127.0.0.1", port, in_memory=True, default_bucket=GCS_BUCKET)
    server.start()
    endpoint = f"http://127.0.0.1:{port}"
    previous = os.environ.get("STORAGE_EMULATOR_HOST")
    os.environ["STORAGE_EMULATOR_HOST"] = endpoint
    try:
        yield endpoint
    finally:
        server.stop()
        if previous is None:
            os.environ.pop("STORAGE_EMULATOR_HOST", None)
        else:
            os.environ["STORAGE_EMULATOR_HOST"] = previous


@pytest.fixture
def gcs_options(gcs_emulator: str) -> dict[str, str]:
    """fsspec storage options that point gcsfs at the emulator, without credentials."""
    return {"endpoint_url": gcs_emulator, "token": "anon"}


@pytest.fixture(scope="session")
def http_root(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[Path, str]]:
    """A folder served over HTTP on loopback: ``(folder, base_url)``."""
    root = tmp_path_factory.mktemp("http")

    class Handler(http.server.SimpleHTTPRequestHandler):
        def __init__(self, *args, **kwargs):  # type: ignore[no-untyped-def]
            super().__init__(*args, directory=str(root), **kwargs)

        def log_message(self, format, *args):  # type: ignore[no-untyped-def]
            pass

    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield root, f"http://127.0.0.1:{server.server_address[1]}"
    finally:
        server.shutdown()


@pytest.fixture(scope="session")
def bigquery_client(tmp_path_factory: pytest.TempPathFactory) -> Iterator[object]:
    """A BigQuery client on a real BigQuery REST API (bqemulator, DuckDB-backed) on loopback,
    started here; project ``test-project``."""
    import sys

    import duckdb
    from duckdb_extensions import import_extension

    from recsys_assets.core.warehouse.clients import bigquery_client

    # The emulator loads DuckDB's spatial extension; install it from its PyPI wheel (offline)
    # into a private extension folder, where the emulator's own INSTALL then finds it.
    home = tmp_path_factory.mktemp("bq_home")
    env = {**os.environ, "HOME": str(home)}
    con = duckdb.connect(config={"extension_directory": str(home / ".duckdb" / "extensions")})
    import_extension("spatial", con=con)
    con.close()
    rest, grpc = free_port(), free_port()
    log = (home / "bqemulator.log").open("w")
    process = subprocess.Popen(
        [str(Path(sys.executable).with_name("bqemulator")), "start", "--rest-host", "127.0.0.1",
         "--rest-port", str(rest), "--grpc-host", "127.0.0.1", "--grpc-port", str(grpc), "--ephemeral",
         "--project", "test-project"],
        env=env, stdout=log, stderr=subprocess.STDOUT,
    )  # fmt: skip
    wait_for_port(process, rest, home / "bqemulator.log", "bqemulator", 60)
    yield bigquery_client("test-project", f"http://127.0.0.1:{rest}")
    stop(process)
    log.close()


def crafted_warehouse(
    request: pytest.FixtureRequest, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, write: Any
) -> Any:
    """``write(sink)``'s crafted logs in a DuckDB file (``request.param`` "duckdb") or in BigQuery
    (bqemulator, started by the session fixture, a dataset of their own); the warehouse over them."""
    import uuid

    from recsys_assets.core.warehouse.clients import BigQueryWarehouse, DuckDBWarehouse
    from recsys_assets.core.warehouse.tables import TABLES
    from serving.request_log import BigQuerySink, DuckDBSink

    if request.param == "duckdb":
        path = str(tmp_path / "warehouse.duckdb")
        write(DuckDBSink(path))
        return DuckDBWarehouse(path)
    # bqemulator refuses the client's generic "*/*" upload part of a load job (DESIGN.md).
    monkeypatch.setattr("google.cloud.bigquery.client._GENERIC_CONTENT_TYPE", "application/octet-stream")
    client = request.getfixturevalue("bigquery_client")
    dataset = f"crafted_{uuid.uuid4().hex[:8]}"
    client.create_dataset(dataset)
    for table in TABLES.values():
        table.create_in_bigquery(client, dataset)
    write(BigQuerySink(client, dataset))
    return BigQueryWarehouse(client, dataset)
