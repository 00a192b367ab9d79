"""The API under what an operator or an attacker may send it: each failure found when it was
tried by hand on a live server, reproduced here (they failed before the fixes)."""

from __future__ import annotations

import asyncio
import json
import logging
import shutil
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
from litestar.testing import AsyncTestClient

from recsys_assets.core.io.artifacts import SERVING_FILES, Artifacts
from recsys_assets.core.warehouse.tables import Table
from recsys_assets_tests.serving.versions import (
    manifest_of,
    publish_version,
    replace_manifest,
    settings,
)
from serving.app import create_app

pytestmark = pytest.mark.anyio


@pytest.fixture
def anyio_backend() -> str:
    return "asyncio"


@pytest.fixture
def caplog(caplog: pytest.LogCaptureFixture) -> Any:
    """``caplog`` on the API's own loggers: the app's logging config replaces the root
    logger's handlers when it starts, pytest's among them."""
    logger = logging.getLogger("serving")
    logger.addHandler(caplog.handler)
    yield caplog
    logger.removeHandler(caplog.handler)


async def _until(condition: Callable[[], bool], seconds: float = 10.0) -> None:
    for _ in range(int(seconds / 0.02)):
        if condition():
            return
        await asyncio.sleep(0.02)
    raise AssertionError("condition not reached in time")


def _metric(text: str, line: str) -> float:
    """The value of the exposition line starting with ``line`` (0 when absent)."""
    found = [row for row in text.splitlines() if row.startswith(line + " ")]
    return float(found[0].rsplit(" ", 1)[1]) if found else 0.0


def _without_sha(manifest: dict[str, Any]) -> Any:
    del manifest["files"]["ids.json"]["sha256"]
    return manifest


def _entry_as_string(manifest: dict[str, Any]) -> Any:
    manifest["files"]["ids.json"] = "versions/v1/ids.json"
    return manifest


def _files_as_list(manifest: dict[str, Any]) -> Any:
    manifest["files"] = list(manifest["files"].values())
    return manifest


MALFORMED = [
    (_without_sha, "files.ids.json has no valid 'sha256'"),
    (_entry_as_string, "files.ids.json must be an object, got str"),
    (_files_as_list, "'files' must be an object of file entries, got list"),
    (lambda _: 42, "expected a JSON object, got int"),
]


@pytest.mark.parametrize(("break_it", "problem"), MALFORMED)
async def test_a_malformed_manifest_is_rejected_once_and_the_watcher_lives_on(
    tmp_path: Path, caplog: pytest.LogCaptureFixture, break_it: Callable[[Any], Any], problem: str
) -> None:
    publish_version(tmp_path, "v1")
    manifest = manifest_of(tmp_path)
    app = create_app(settings(tmp_path, reload_interval_s=0.02, log_sink="none"))
    async with AsyncTestClient(app=app) as client:
        replace_manifest(tmp_path, json.dumps(break_it(json.loads(manifest.read_text()))))
        await _until(lambda: app.state.services.index.rejected is not None)
        await asyncio.sleep(0.2)  # ten more turns of the watcher over the same manifest
        text = (await client.get("/metrics")).text
        assert _metric(text, 'recsys_index_reloads_total{outcome="rejected"}') == 1.0
        response = await client.post("/recommend", json={"user_id": "u1"})
        assert response.status_code == 200 and response.json()["model_version"] == "v1"
        errors = [r.getMessage() for r in caplog.records if r.levelno == logging.ERROR]
        assert len(errors) == 1 and problem in errors[0] and "serving v1" in errors[0]
        # The watcher is alive: the next good version is loaded without a restart.
        publish_version(tmp_path, "v2", seed=2)
        await _until(lambda: app.state.services.index.bundle.version == "v2")
        assert _metric((await client.get("/metrics")).text, "recsys_watcher_errors_total") == 0.0


async def test_a_malformed_manifest_at_start_up_leaves_the_api_up_and_not_ready(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    replace_manifest(tmp_path, "42")
    app = create_app(settings(tmp_path, reload_interval_s=0.02, log_sink="none"))
    async with AsyncTestClient(app=app) as client:
        assert (await client.get("/healthz")).status_code == 200
        assert (await client.get("/readyz")).status_code == 503
        assert "expected a JSON object, got int" in caplog.text
        assert (
            _metric((await client.get("/metrics")).text, 'recsys_index_reloads_total{outcome="rejected"}')
            == 1
        )
        publish_version(tmp_path, "v1")
        await _until(lambda: app.state.services.index.bundle is not None)
        assert (await client.get("/readyz")).json() == {"status": "ready", "model_version": "v1"}


@pytest.fixture
async def client(tmp_path: Path) -> Any:
    publish_version(tmp_path, "v1")
    async with AsyncTestClient(app=create_app(settings(tmp_path, log_sink="none"))) as test_client:
        yield test_client


JSON = {"content-type": "application/json"}
FEEDBACK = '{"request_id": "r1", "user_id": "u1", "item_id": "I001", "event": "click"}'


@pytest.mark.parametrize("path", ["/recommend", "/feedback"])
@pytest.mark.parametrize(
    ("body", "message"),
    [
        (b'{"user_id": "u\xff\xfe1"}', "invalid request body"),
        (
            b'{"user_id": "u1", "recent_items": ' + b"[" * 20_000 + b"]" * 20_000 + b"}",
            "invalid request body",
        ),
        (b"[" * 20_000 + b"]" * 20_000, "invalid request body"),
    ],
    ids=["invalid-utf8", "nested-in-a-field", "nested-at-the-top"],
)
async def test_undecodable_bodies_get_a_400(
    client: AsyncTestClient, path: str, body: bytes, message: str
) -> None:
    response = await client.post(path, content=body, headers=JSON)
    assert response.status_code == 400, response.text
    assert message in response.json()["detail"]


@pytest.mark.parametrize("path", ["/recommend", "/feedback"])
@pytest.mark.parametrize("content_type", ["text/plain", "application/x-www-form-urlencoded", None])
async def test_only_json_bodies_are_accepted(
    client: AsyncTestClient, path: str, content_type: str | None
) -> None:
    # A cross-site "simple" request (text/plain, forms) must not reach the drift metrics.
    body = '{"user_id": "u1"}'
    if path == "/feedback":
        issued = client.app.state.services.request_ids.issue("u1")
        body = json.dumps({**json.loads(FEEDBACK), "request_id": issued})
    headers = {"content-type": content_type} if content_type else {}
    response = await client.post(path, content=body.encode(), headers=headers)
    assert response.status_code == 415, response.text
    assert "request bodies must be application/json" in response.json()["detail"]
    assert (await client.post(path, content=body.encode(), headers=JSON)).status_code in (200, 202)


async def test_numbers_are_numbers(client: AsyncTestClient) -> None:
    response = await client.post("/recommend", json={"user_id": "u1", "k": "5"})
    assert response.status_code == 400 and "Expected `int`, got `str` - at `$.k`" in response.text
    assert (await client.post("/recommend", json={"user_id": "u1", "k": 5.0})).status_code == 400
    assert len((await client.post("/recommend", json={"user_id": "u1", "k": 5})).json()["items"]) == 5


async def test_the_admin_key_is_checked_over_bytes_in_constant_time(tmp_path: Path) -> None:
    publish_version(tmp_path, "v1")
    app = create_app(settings(tmp_path, log_sink="none", admin_api_key="secret"))
    async with AsyncTestClient(app=app) as client:
        for key in ["secre", "secret2", "sécret", "s\u00ffcret"]:
            response = await client.post("/admin/reload", headers={"X-API-Key": key.encode("latin-1")})
            assert response.status_code == 401, (key, response.text)
        ok = await client.post("/admin/reload", headers={"X-API-Key": "secret"})
        assert ok.json() == {"status": "current", "model_version": "v1"}


async def test_a_moved_artifacts_root_serves_its_own_files(tmp_path: Path) -> None:
    publish_version(tmp_path / "a", "v1")
    manifest = json.loads(manifest_of(tmp_path / "a").read_text())
    assert {entry["path"] for entry in manifest["files"].values()} >= {"versions/v1/items.npy"}
    shutil.copytree(tmp_path / "a", tmp_path / "b")
    shutil.rmtree(tmp_path / "a")
    app = create_app(settings(tmp_path / "b", log_sink="none"))
    async with AsyncTestClient(app=app) as client:
        response = await client.post("/recommend", json={"user_id": "u1"})
        assert response.status_code == 200 and response.json()["model_version"] == "v1"


async def test_a_served_file_corrupted_in_place_is_detected_and_counted(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    publish_version(tmp_path, "v1")
    app = create_app(settings(tmp_path, log_sink="none", verify_interval_s=0.02))
    ids = Path(Artifacts(str(tmp_path)).uri(SERVING_FILES["ids.json"], version="v1"))
    original = ids.read_bytes()
    async with AsyncTestClient(app=app) as client:
        assert _metric((await client.get("/metrics")).text, "recsys_serving_files_intact") == 1.0
        ids.write_bytes(original.replace(b"item 1 ", b"item X "))
        await _until(lambda: not app.state.services.index.intact)
        await asyncio.sleep(0.1)
        text = (await client.get("/metrics")).text
        assert _metric(text, "recsys_serving_files_intact") == 0.0
        assert _metric(text, "recsys_serving_integrity_failures_total") >= 2  # every check counts
        errors = [r.getMessage() for r in caplog.records if r.levelno == logging.ERROR]
        assert len(errors) == 1 and "ids.json: checksum mismatch" in errors[0]
        # The copy verified at load keeps serving, titles intact.
        body = (await client.post("/recommend", json={"user_id": "u1", "k": 20})).json()
        assert all("item X" not in item["title"] for item in body["items"])
        ids.write_bytes(original)
        await _until(lambda: app.state.services.index.intact)
        assert _metric((await client.get("/metrics")).text, "recsys_serving_files_intact") == 1.0


class FailingSink:
    """A warehouse that refuses every write at once."""

    def __init__(self) -> None:
        self.times: list[float] = []

    @property
    def calls(self) -> int:
        return len(self.times)

    def write(self, table: Table, rows: list[dict[str, Any]]) -> None:
        self.times.append(time.monotonic())
        raise ConnectionError("warehouse unreachable")


async def test_a_failing_warehouse_is_retried_with_back_off_and_logged_once(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    publish_version(tmp_path, "v1")
    sink = FailingSink()
    app = create_app(settings(tmp_path, log_batch_rows=10, log_flush_s=0.05), sink=sink)
    async with AsyncTestClient(app=app) as client:
        for _ in range(500):  # every append past the first batch used to wake the writer
            issued = app.state.services.request_ids.issue("u1")
            assert (
                await client.post("/feedback", json={**json.loads(FEEDBACK), "request_id": issued})
            ).status_code == 202
        await asyncio.sleep(1.0)
        text = (await client.get("/metrics")).text
        # Attempts at about 0.05, 0.15, 0.35, 0.75 s and so on, however fast rows arrive: each wait
        # at least doubles the flush interval's doubling (a storm retried within milliseconds).
        gaps = [b - a for a, b in zip(sink.times, sink.times[1:], strict=False)]
        assert 3 <= sink.calls <= 8, sink.calls
        assert all(gap >= 0.9 * 0.05 * 2**i for i, gap in enumerate(gaps)), gaps
        assert _metric(text, 'recsys_log_buffered_rows{table="feedback_events"}') == 500.0
        assert _metric(text, 'recsys_log_write_failures_total{table="feedback_events"}') == sink.calls
        warnings = [r.getMessage() for r in caplog.records if r.name == "serving.request_log"]
        assert len(warnings) == 1 and "warehouse writes failing" in warnings[0]
        assert "warehouse unreachable" in warnings[0]


async def test_loaded_versions_are_kept_off_the_garbage_collector_and_replaced_ones_freed(
    tmp_path: Path,
) -> None:
    """A full collection would walk every loaded id list (the cause of a 60 ms stall, and of
    most of the p99, at the reference scale): each load freezes what is loaded, and undoes the
    previous freeze first, so a replaced version is still reclaimed."""
    import gc
    import weakref

    def walked(thing: Any) -> bool:
        return any(o is thing for o in gc.get_objects())

    publish_version(tmp_path, "v1")
    app = create_app(settings(tmp_path, reload_interval_s=0.02, log_sink="none"))
    async with AsyncTestClient(app=app):
        first = app.state.services.index.bundle
        assert gc.get_freeze_count() > 0 and not walked(first.item_ids)
        gone = weakref.ref(first)
        del first
        publish_version(tmp_path, "v2", seed=2)
        # The app may run in another thread: wait out its unfreeze, collect and freeze.
        await _until(
            lambda: (
                app.state.services.index.bundle.version == "v2"
                and not walked(app.state.services.index.bundle.item_ids)
            )
        )
        assert gone() is None  # v1 freed although it was frozen
    gc.unfreeze()  # leave the other tests' collector as they expect it


async def test_feedback_needs_a_request_id_the_api_issued_to_that_user(tmp_path: Path) -> None:
    publish_version(tmp_path, "v1")
    key = {"request_id_key": "k" * 32, "log_sink": "none"}
    app, other = create_app(settings(tmp_path, **key)), create_app(settings(tmp_path, **key))
    stranger = create_app(settings(tmp_path, request_id_key="another key", log_sink="none"))
    async with AsyncTestClient(app=app) as client:
        served = (await client.post("/recommend", json={"user_id": "u1", "k": 2})).json()
        issued = served["request_id"]
        assert len(issued) == 32 and int(issued, 16) >= 0  # the shape of a UUID's hex
        event = {"request_id": issued, "user_id": "u1", "item_id": "I001", "event": "click"}
        assert (await client.post("/feedback", json=event)).status_code == 202
        for forged, user in (("0" * 32, "u1"), ("r1", "u1"), (issued, "u2"), (issued[:-1] + "0", "u1")):
            response = await client.post("/feedback", json={**event, "request_id": forged, "user_id": user})
            assert response.status_code == 400, (forged, user)
            assert response.json()["detail"] == (
                f"request_id {forged!r} was not issued by this API for user {user!r}"
            )
    # Another worker or instance with the same key accepts it; one with another key does not.
    async with AsyncTestClient(app=other) as client:
        assert (await client.post("/feedback", json=event)).status_code == 202
    async with AsyncTestClient(app=stranger) as client:
        assert (await client.post("/feedback", json=event)).status_code == 400


async def test_without_a_key_each_process_draws_its_own_and_says_so(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    publish_version(tmp_path, "v1")
    first, second = (create_app(settings(tmp_path, log_sink="none")) for _ in range(2))
    assert "RECSYS_REQUEST_ID_KEY is not set" in caplog.text
    issued = first.state.services.request_ids.issue("u1")
    assert first.state.services.request_ids.issued(
        issued, "u1"
    ) and not second.state.services.request_ids.issued(issued, "u1")
