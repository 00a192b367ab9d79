"""The production Dagster configuration loads: the instance in ``docker/dagster_home`` against a
real Postgres (pgserver, started here) and the GCS emulator, and its gRPC workspace against a
real code server."""

from __future__ import annotations

import contextlib
import json
import os
import shutil
import socket
import subprocess
import sys
import threading
from collections.abc import Iterator
from pathlib import Path

import pytest

from recsys_assets_tests.conftest import GCS_BUCKET, free_port, stop, wait_for_port

ROOT = Path(__file__).resolve().parents[2]
PRODUCTION_HOME = ROOT / "docker" / "dagster_home"

DESCRIBE = """
import json
from dagster import DagsterInstance
with DagsterInstance.get() as instance:
    print(json.dumps({
        "run_storage": type(instance.run_storage).__name__,
        "event_storage": type(instance.event_log_storage).__name__,
        "schedule_storage": type(instance.schedule_storage).__name__,
        "run_launcher": type(instance.run_launcher).__name__,
        "network": instance.run_launcher.networks,
        "env_vars": instance.run_launcher.env_vars,
        "coordinator": type(instance.run_coordinator).__name__,
        "max_concurrent_runs": instance.get_concurrency_config().run_queue_config.max_concurrent_runs,
        "tag_limits": instance.get_concurrency_config().run_queue_config.tag_concurrency_limits,
        "compute_logs": type(instance.compute_log_manager).__name__,
        "retries": [instance.run_retries_enabled, instance.run_retries_max_retries],
        "pool_default": instance.get_concurrency_config().pool_config.default_pool_limit,
        "runs": len(instance.get_runs()),
    }))
"""


def _forward(listener: socket.socket, target: str) -> None:
    """Accept TCP connections and pipe each to the Unix socket ``target``."""

    def pipe(source: socket.socket, sink: socket.socket) -> None:
        with contextlib.suppress(OSError):
            while data := source.recv(65536):
                sink.sendall(data)
        with contextlib.suppress(OSError):
            sink.shutdown(socket.SHUT_WR)

    while True:
        try:
            client, _ = listener.accept()
        except OSError:  # the listener was closed
            return
        upstream = socket.socket(socket.AF_UNIX)
        upstream.connect(target)
        for a, b in ((client, upstream), (upstream, client)):
            threading.Thread(target=pipe, args=(a, b), daemon=True).start()


@pytest.fixture(scope="module")
def postgres(tmp_path_factory: pytest.TempPathFactory) -> Iterator[dict[str, str]]:
    """A real Postgres (pgserver's binaries). pgserver listens on a Unix socket only; the
    production settings name a host and a port, so a TCP forwarder stands in front of it."""
    import pgserver

    server = pgserver.get_server(tmp_path_factory.mktemp("pg"), cleanup_mode="stop")
    socket_dir = server.get_uri().split("host=", 1)[1]
    listener = socket.socket()
    listener.bind(("127.0.0.1", 0))
    listener.listen()
    threading.Thread(target=_forward, args=(listener, f"{socket_dir}/.s.PGSQL.5432"), daemon=True).start()
    yield {
        "DAGSTER_POSTGRES_HOST": "127.0.0.1",
        "DAGSTER_POSTGRES_PORT": str(listener.getsockname()[1]),
        "DAGSTER_POSTGRES_DB": "postgres",
        "DAGSTER_POSTGRES_USER": "postgres",
        "DAGSTER_POSTGRES_PASSWORD": "unused-with-local-trust",
    }
    listener.close()
    server.cleanup()


def _home(tmp_path: Path) -> Path:
    home = tmp_path / "dagster_home"
    shutil.copytree(PRODUCTION_HOME, home)
    return home


def test_the_production_instance_loads_on_postgres(
    tmp_path: Path, postgres: dict[str, str], gcs_emulator: str
) -> None:
    env = {**os.environ, **postgres, "DAGSTER_HOME": str(_home(tmp_path)), "DAGSTER_DOCKER_NETWORK": "recsys",
           "RECSYS_GCS_BUCKET": GCS_BUCKET, "STORAGE_EMULATOR_HOST": gcs_emulator}  # fmt: skip
    done = subprocess.run(
        [sys.executable, "-c", DESCRIBE], env=env, capture_output=True, text=True, check=False
    )
    assert done.returncode == 0, done.stderr[-3000:]
    got = json.loads(done.stdout.strip().splitlines()[-1])
    assert got["run_storage"] == "PostgresRunStorage" and got["event_storage"] == "PostgresEventLogStorage"
    assert got["schedule_storage"] == "PostgresScheduleStorage"
    assert got["run_launcher"] == "DockerRunLauncher" and got["network"] == ["recsys"]
    assert {"DAGSTER_POSTGRES_PASSWORD", "RECSYS_ENV", "RECSYS_GCS_BUCKET"} <= set(got["env_vars"])
    assert got["coordinator"] == "QueuedRunCoordinator" and got["max_concurrent_runs"] == 8
    assert got["tag_limits"] == [{"key": "recsys/drift_breaches", "limit": 1}]
    assert got["compute_logs"] == "GCSComputeLogManager"
    assert got["retries"] == [True, 2] and got["pool_default"] == 2 and got["runs"] == 0


def test_a_missing_postgres_setting_is_named(tmp_path: Path, postgres: dict[str, str]) -> None:
    env = {k: v for k, v in os.environ.items() if not k.startswith("DAGSTER_POSTGRES")}
    env.update({**postgres, "DAGSTER_HOME": str(_home(tmp_path))})
    del env["DAGSTER_POSTGRES_HOST"]
    done = subprocess.run(
        [sys.executable, "-c", DESCRIBE], env=env, capture_output=True, text=True, check=False
    )
    assert done.returncode != 0 and "DAGSTER_POSTGRES_HOST" in done.stderr


def test_the_grpc_workspace_loads_the_code_location(tmp_path: Path) -> None:
    port = free_port()
    log = tmp_path / "code_server.log"
    # Its output goes to a file: a pipe nobody reads fills up and blocks the server.
    with log.open("wb") as sink:
        server = subprocess.Popen(
            [str(Path(sys.executable).with_name("dagster")), "api", "grpc", "--module-name",
             "recsys_assets.definitions", "--host", "127.0.0.1", "--port", str(port)],
            cwd=ROOT, stdout=sink, stderr=subprocess.STDOUT,
        )  # fmt: skip
    try:
        wait_for_port(server, port, log, "the code server", 120)
        home = tmp_path / "home"
        home.mkdir()
        workspace = PRODUCTION_HOME / "workspace.yaml"
        env = {**os.environ, "DAGSTER_HOME": str(home), "DAGSTER_CODE_HOST": "127.0.0.1",
               "DAGSTER_CODE_PORT": str(port)}  # fmt: skip
        done = subprocess.run(
            [str(Path(sys.executable).with_name("dagster")), "definitions", "validate", "-w", str(workspace)],
            env=env, capture_output=True, text=True, check=False, cwd=tmp_path,
        )  # fmt: skip
        assert done.returncode == 0, done.stdout[-2000:] + done.stderr[-2000:]
        assert "recsys_assets" in done.stdout + done.stderr
    finally:
        stop(server)
