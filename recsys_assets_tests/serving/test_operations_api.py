"""Operating the API: health, readiness and metrics (across uvicorn workers too), hot reload
under traffic, a corrupt version rejected, the admin endpoint, settings from the environment."""

from __future__ import annotations

import asyncio
import json
import os
from pathlib import Path

import pytest
from litestar.testing import AsyncTestClient

from recsys_assets.core.io.artifacts import SERVING_FILES, Artifacts
from recsys_assets.settings import Settings, SettingsError
from recsys_assets_tests.serving.versions import (
    manifest_of,
    publish_version,
    settings,
)
from serving.app import create_app
from serving.services import manifest_uri

pytestmark = pytest.mark.anyio


async def test_health_readiness_and_metrics(client: AsyncTestClient) -> None:
    assert (await client.get("/healthz")).json() == {"status": "ok", "model_version": None}
    assert (await client.get("/readyz")).json() == {"status": "ready", "model_version": "v1"}
    await client.post("/recommend", json={"user_id": "u1"})
    await client.post("/recommend", json={"user_id": "u1", "k": 0})
    text = (await client.get("/metrics")).text
    assert 'recsys_http_requests_total{method="POST",route="/recommend",status="200"} 1.0' in text
    assert 'recsys_http_requests_total{method="POST",route="/recommend",status="400"} 1.0' in text
    assert 'recsys_recommendations_total{strategy="user"} 1.0' in text
    assert 'recsys_model_info{version="v1"} 1.0' in text
    assert 'recsys_http_request_seconds_bucket{le="0.001",route="/recommend"}' in text
    assert "recsys_search_batch_queries_count 1.0" in text  # the one search, one batch
    schema = (await client.get("/schema/openapi.json")).json()
    assert {"/recommend", "/items/{item_id}/similar", "/popular", "/feedback", "/healthz", "/readyz"} <= set(
        schema["paths"]
    )


async def test_not_ready_without_a_version(tmp_path: Path) -> None:
    async with AsyncTestClient(app=create_app(settings(tmp_path, log_sink="none"))) as client:
        assert (await client.get("/healthz")).status_code == 200
        ready = await client.get("/readyz")
        assert ready.status_code == 503 and ready.json()["status"] == "no serving version loaded"
        response = await client.post("/recommend", json={"user_id": "u1"})
        assert response.status_code == 503 and "no serving version loaded yet" in response.text


async def test_hot_reload_under_concurrent_traffic_fails_no_request(tmp_path: Path) -> None:
    publish_version(tmp_path, "v1")
    app = create_app(settings(tmp_path, reload_interval_s=0.02, log_sink="none"))
    async with AsyncTestClient(app=app) as client:
        seen: list[str] = []
        statuses: list[int] = []

        async def traffic() -> None:
            for i in range(60):
                response = await client.post("/recommend", json={"user_id": f"u{i % 4}", "k": 5})
                statuses.append(response.status_code)
                seen.append(response.json()["model_version"])
                await asyncio.sleep(0)

        async def release() -> None:
            await asyncio.sleep(0.05)
            await asyncio.to_thread(publish_version, tmp_path, "v2", 1)

        await asyncio.gather(*(traffic() for _ in range(8)), release())
        for _ in range(100):
            if app.state.services.index.bundle.version == "v2":
                break
            await asyncio.sleep(0.02)
        after = (await client.post("/recommend", json={"user_id": "u1"})).json()
    assert set(statuses) == {200} and len(statuses) == 480
    assert set(seen) <= {"v1", "v2"}
    assert after["model_version"] == "v2" and after["items"][0]["title"].endswith("(v2)")


async def test_a_corrupt_new_version_is_rejected_and_the_old_keeps_serving(tmp_path: Path) -> None:
    publish_version(tmp_path, "v1")
    app = create_app(settings(tmp_path, log_sink="none", admin_api_key="secret"))
    async with AsyncTestClient(app=app) as client:
        publish_version(tmp_path, "v2")
        index_file = Path(Artifacts(str(tmp_path)).uri(SERVING_FILES["index.faiss"], version="v2"))
        index_file.write_bytes(index_file.read_bytes()[:100])  # truncated after publishing
        assert (await client.post("/admin/reload")).status_code == 401
        assert (await client.post("/admin/reload", headers={"X-API-Key": "wrong"})).status_code == 401
        reload = await client.post("/admin/reload", headers={"X-API-Key": "secret"})
        assert reload.json() == {"status": "rejected", "model_version": "v1"}
        response = await client.post("/recommend", json={"user_id": "u1"})
        assert response.status_code == 200 and response.json()["model_version"] == "v1"
        text = (await client.get("/metrics")).text
        assert 'recsys_index_reloads_total{outcome="rejected"} 1.0' in text
        # The same broken version is not retried; a good one replaces it.
        assert (await client.post("/admin/reload", headers={"X-API-Key": "secret"})).json()[
            "status"
        ] == "rejected"
        assert 'recsys_index_reloads_total{outcome="rejected"} 1.0' in (await client.get("/metrics")).text
        publish_version(tmp_path, "v3", seed=3)
        reload = await client.post("/admin/reload", headers={"X-API-Key": "secret"})
        assert reload.json() == {"status": "loaded", "model_version": "v3"}


async def test_the_admin_endpoint_is_off_without_a_key(client: AsyncTestClient) -> None:
    response = await client.post("/admin/reload", headers={"X-API-Key": ""})
    assert response.status_code == 404 and "admin API is disabled" in response.text


def test_settings_come_from_the_environment() -> None:
    environ = {"RECSYS_ARTIFACTS_ROOT": "gs://bucket/recsys", "RECSYS_RELOAD_INTERVAL_S": "2.5",
               "RECSYS_ENV": "gcp", "RECSYS_SEARCH_THREADS": "3", "RECSYS_ADMIN_API_KEY": "k"}  # fmt: skip
    got = Settings.from_env(environ)
    assert manifest_uri(got) == "gs://bucket/recsys/serving/manifest.json"
    assert got.serving.reload_interval_s == 2.5 and got.serving.admin_api_key.get_secret_value() == "k"
    assert (
        got.serving.log_sink == "bigquery"
        and got.serving.search_threads == 3
        and got.serving.log_flush_s == 5.0
    )
    assert manifest_uri(Settings.from_env({**environ, "RECSYS_SERVING_MANIFEST": "/m.json"})) == "/m.json"
    with pytest.raises(
        SettingsError, match="RECSYS_LOG_SINK='kafka': Input should be 'duckdb', 'bigquery' or 'none'"
    ):
        Settings.from_env({**environ, "RECSYS_LOG_SINK": "kafka"})
    with pytest.raises(SettingsError, match="RECSYS_LOG_FLUSH_S='soon': Input should be a valid number"):
        Settings.from_env({**environ, "RECSYS_LOG_FLUSH_S": "soon"})


def test_manifest_is_json_with_every_file(tmp_path: Path) -> None:
    publish_version(tmp_path, "v1")
    manifest = json.loads(manifest_of(tmp_path).read_text())
    assert manifest["version"] == "v1" and len(manifest["files"]) == 6


def test_metrics_add_up_across_uvicorn_workers(tmp_path: Path) -> None:
    """Two worker processes, one multiprocess folder: /metrics, answered by either worker,
    counts every request both of them served."""
    import re
    import subprocess
    import sys
    import time
    import urllib.request

    from recsys_assets_tests.conftest import free_port, stop

    publish_version(tmp_path, "v1")
    folder = tmp_path / "prometheus"
    folder.mkdir()
    port = free_port()
    env = {**os.environ, "PROMETHEUS_MULTIPROC_DIR": str(folder), "RECSYS_LOG_SINK": "none",
           "RECSYS_SERVING_MANIFEST": str(manifest_of(tmp_path))}  # fmt: skip
    log = tmp_path / "api.log"
    with log.open("wb") as sink:
        server = subprocess.Popen(
            [str(Path(sys.executable).with_name("uvicorn")), "--factory", "serving.app:create_app",
             "--port", str(port), "--workers", "2"],
            env=env, stdout=sink, stderr=subprocess.STDOUT,
        )  # fmt: skip
    url = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 60
        while log.read_text(errors="replace").count("Application startup complete") < 2:
            assert server.poll() is None and time.monotonic() < deadline, log.read_text(errors="replace")
            time.sleep(0.2)
        for _ in range(40):  # a new connection each: the kernel spreads them over the workers
            request = urllib.request.Request(
                f"{url}/recommend",
                data=b'{"user_id": "u1", "k": 2}',
                headers={"content-type": "application/json"},
            )
            with urllib.request.urlopen(request, timeout=10) as response:
                assert response.status == 200
        pids = {name.rsplit("_", 1)[1] for name in os.listdir(folder) if name.startswith("counter_")}
        assert len(pids) == 2, f"one worker served everything: {sorted(os.listdir(folder))}"
        pattern = r'recsys_http_requests_total\{method="POST",route="/recommend",status="200"\} (\S+)'

        def counted() -> tuple[float, str]:
            with urllib.request.urlopen(f"{url}/metrics", timeout=10) as response:
                text = response.read().decode()
            found = re.search(pattern, text)
            return (float(found.group(1)) if found else 0.0), text

        # A worker counts a request as its last byte goes out; on a busy machine the other
        # worker's scrape may come first by a moment: wait for it, never past a few seconds.
        deadline = time.monotonic() + 5
        while counted()[0] < 40.0 and time.monotonic() < deadline:
            time.sleep(0.1)
        for _ in range(4):  # whichever worker answers, the total is the same
            total, text = counted()
            lines = [line for line in text.splitlines() if "requests_total" in line]
            assert total == 40.0, lines
            assert 'recsys_model_info{version="v1"} 1.0' in text
    finally:
        stop(server)
