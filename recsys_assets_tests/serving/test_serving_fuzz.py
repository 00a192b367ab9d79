"""Fuzz the running API from its own OpenAPI schema (schemathesis): no input gets a 5xx."""

from __future__ import annotations

import threading
import time
from collections.abc import Iterator
from typing import Any

import pytest
import schemathesis
import uvicorn
from hypothesis import HealthCheck, given, settings

from recsys_assets_tests.serving.versions import publish_ranker_version
from recsys_assets_tests.serving.versions import settings as api_settings
from serving.app import create_app


@pytest.fixture(scope="module")
def live_api(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """A real uvicorn server on a free loopback port, in a thread, serving a two-stage version
    (its fallback answers whoever it does not know)."""
    root = tmp_path_factory.mktemp("fuzz")
    publish_ranker_version(root, "v1")
    app = create_app(api_settings(root, admin_api_key="secret"))
    server = uvicorn.Server(uvicorn.Config(app, host="127.0.0.1", port=0, log_level="warning"))
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    deadline = time.monotonic() + 30
    while not server.started:
        assert time.monotonic() < deadline, "uvicorn did not start"
        time.sleep(0.05)
    port = server.servers[0].sockets[0].getsockname()[1]
    yield f"http://127.0.0.1:{port}"
    server.should_exit = True
    thread.join(timeout=30)


@pytest.fixture(scope="module")
def api_schema(live_api: str) -> Any:
    return schemathesis.openapi.from_url(f"{live_api}/schema/openapi.json")


#: Generated cases per operation (12 operations, the explorer's included; a few seconds in all).
EXAMPLES = 60


def test_no_input_gets_a_server_error(api_schema: Any) -> None:
    # Driven through hypothesis directly: schemathesis' pytest plugin does not run on pytest 9.
    calls: dict[str, list[int]] = {}
    for result in api_schema.get_all_operations():
        operation = result.ok()

        @given(case=operation.as_strategy())
        @settings(
            max_examples=EXAMPLES, deadline=None, suppress_health_check=list(HealthCheck), database=None
        )
        def fuzz(case: Any) -> None:
            response = case.call(timeout=10)
            calls.setdefault(f"{case.method} {case.path}", []).append(response.status_code)
            assert response.status_code < 500, (case.method, case.path, case.body, response.text)
            (content_type,) = response.headers["content-type"]
            assert content_type.startswith(("application/json", "text/plain")), content_type

        fuzz()
    counts = {k: len(v) for k, v in calls.items()}
    # Every operation ran; those with inputs many times (one without inputs has one case).
    assert len(counts) == 12 and counts["POST /recommend"] == counts["POST /feedback"] == EXAMPLES, counts
    # The fuzzer reached both sides of validation: accepted and refused inputs.
    every = [s for v in calls.values() for s in v]
    assert any(s < 300 for s in every) and any(400 <= s < 500 for s in every)


def test_the_schema_lists_every_public_route(api_schema: Any) -> None:
    paths = set(api_schema.raw_schema["paths"])
    assert paths == {"/recommend", "/items/{item_id}/similar", "/popular", "/feedback", "/healthz", "/readyz",
                     "/admin/reload", "/explorer/users", "/explorer/users/{user_id}",
                     "/explorer/users/{user_id}/why", "/explorer/items",
                     "/explorer/images/{item_id}"}  # fmt: skip


#: Bodies found to get a 500 from a live server before they were guarded.
HOSTILE = [
    b'{"user_id": "u\xff\xfe1"}',
    b'{"user_id": "u1", "recent_items": ' + b"[" * 20_000 + b"]" * 20_000 + b"}",
    b"[" * 20_000 + b"]" * 20_000,
    b'{"user_id": "u1", "k": "5"}',
]


def test_hostile_and_random_bodies_get_no_server_error(live_api: str) -> None:
    import httpx
    from hypothesis import strategies as st

    with httpx.Client(base_url=live_api, timeout=10) as client:
        for path in ("/recommend", "/feedback"):
            for body in HOSTILE:
                response = client.post(path, content=body, headers={"content-type": "application/json"})
                assert response.status_code == 400, (path, body[:40], response.text)
            plain = client.post(path, content=b'{"user_id": "u1"}', headers={"content-type": "text/plain"})
            assert plain.status_code == 415, plain.text
        statuses: list[int] = []

        @given(body=st.binary(max_size=512) | st.text(max_size=256).map(str.encode))
        @settings(
            max_examples=EXAMPLES, deadline=None, suppress_health_check=list(HealthCheck), database=None
        )
        def fuzz(body: bytes) -> None:
            response = client.post("/recommend", content=body, headers={"content-type": "application/json"})
            statuses.append(response.status_code)
            assert response.status_code < 500, (body, response.text)

        fuzz()
    assert len(statuses) == EXAMPLES and set(statuses) <= {200, 400}
