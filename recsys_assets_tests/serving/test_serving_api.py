"""The recommendation API against a small real FAISS index: endpoints, fallbacks, exclusions,
errors, hot reload, and request logs in DuckDB."""

from __future__ import annotations

import asyncio
import json
import os
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import duckdb
import numpy as np
import pytest
from litestar.testing import AsyncTestClient

from recsys_assets.core.catalogue.display import ItemCards
from recsys_assets.core.io.artifacts import SERVING_FILES, SERVING_MANIFEST, Artifacts
from recsys_assets.core.models.metrics import Csr
from recsys_assets.core.serving.export import common_files, publish, vector_files, write_files
from recsys_assets.core.serving.index import build_index, index_bytes
from recsys_assets.settings import Settings, SettingsError
from recsys_assets.settings.serving import IndexConfig, Rollout
from recsys_assets_tests.conftest import make_settings
from serving.app import create_app
from serving.request_log import DuckDBSink
from serving.services import manifest_uri

pytestmark = pytest.mark.anyio

DIM, CLUSTERS, PER_CLUSTER = 8, 3, 20
N_ITEMS = CLUSTERS * PER_CLUSTER
#: Item i belongs to cluster i // 20. Users u0, u1, u2 like clusters 0, 1, 2.
HISTORIES = {"u0": [0, 1, 2], "u1": [20, 21], "u2": [40, 41, 42, 43], "u3": []}
#: Popularity by train interactions: item 5 is reviewed by everyone in addition.
EXTRA = [5, 5, 5, 5]


def _vectors(seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    rng = np.random.default_rng(seed)
    centres = np.eye(DIM)[:CLUSTERS] * 3
    items = centres[np.arange(N_ITEMS) // PER_CLUSTER] + rng.normal(scale=0.3, size=(N_ITEMS, DIM))
    items /= np.linalg.norm(items, axis=1, keepdims=True)
    users = np.vstack([centres[0], centres[1], centres[2], centres[0]]) / 3
    return items.astype(np.float32), users.astype(np.float32)


def publish_version(
    root: Path,
    version: str,
    seed: int = 0,
    rollout: Rollout = "replace",
    share: float = 0.5,
    cards: ItemCards | None = None,
) -> None:
    items, users = _vectors(seed)
    indptr, indices = [0], []
    for user, history in HISTORIES.items():
        indices += history + ([5] if user != "u0" else [])
        indptr.append(len(indices))
    files = vector_files(items, users) | common_files(
        list(HISTORIES), [f"I{i:03d}" for i in range(N_ITEMS)],
        [f"item {i} ({version})" for i in range(N_ITEMS)],
        Csr(np.array(indptr), np.array(indices)), np.ones(len(indices)), N_ITEMS,
        cards.categories if cards else None, cards.images if cards else None,
    )  # fmt: skip
    artifacts = Artifacts(str(root))
    write_files(artifacts, version, files)
    write_files(artifacts, version, {"index.faiss": index_bytes(build_index(items, IndexConfig()))})
    publish(artifacts, version, {"model": {"name": "gat"}}, rollout, share)


def manifest_of(root: Path) -> Path:
    return Path(Artifacts(str(root)).uri(SERVING_MANIFEST))


def replace_manifest(root: Path, text: str) -> None:
    """Write the manifest under ``root`` atomically, as publishing does (a watcher never reads
    half of it)."""
    path = manifest_of(root)
    path.parent.mkdir(parents=True, exist_ok=True)
    partial = path.with_suffix(".tmp")
    partial.write_text(text)
    partial.replace(path)


def settings(root: Path, **serving: Any) -> Settings:
    """The API's settings over the version ``publish_version`` writes under ``root``, logging to
    ``root/warehouse.duckdb``; ``serving`` overrides the serving section."""
    defaults = {"manifest_uri": str(manifest_of(root)), "reload_interval_s": 3600.0, "log_sink": "duckdb",
                "log_flush_s": 0.05}  # fmt: skip
    return make_settings(root, serving={**defaults, **serving})


@pytest.fixture
def anyio_backend() -> str:
    return "asyncio"


@pytest.fixture
async def client(tmp_path: Path) -> AsyncIterator[AsyncTestClient]:
    publish_version(tmp_path, "v1")
    async with AsyncTestClient(app=create_app(settings(tmp_path))) as test_client:
        yield test_client


def _ids(body: dict[str, Any]) -> list[int]:
    return [int(i["item_id"][1:]) for i in body["items"]]


async def test_a_known_user_gets_their_cluster_without_their_history(client: AsyncTestClient) -> None:
    response = await client.post("/recommend", json={"user_id": "u1", "k": 5})
    assert response.status_code == 200
    body = response.json()
    assert body["strategy"] == "user" and body["model_version"] == "v1" and len(body["request_id"]) == 32
    items = _ids(body)
    assert len(items) == 5 and all(20 <= i < 40 for i in items)
    assert not {20, 21, 5} & set(items)  # train history never comes back
    scores = [i["score"] for i in body["items"]]
    assert scores == sorted(scores, reverse=True)
    assert body["items"][0]["title"] == f"item {items[0]} (v1)" and body["unknown_items"] == []


async def test_recent_and_excluded_items_never_come_back(client: AsyncTestClient) -> None:
    top = _ids((await client.post("/recommend", json={"user_id": "u0", "k": 3})).json())
    body = (
        await client.post(
            "/recommend",
            json={
                "user_id": "u0",
                "k": 3,
                "recent_items": [f"I{top[0]:03d}"],
                "exclude_items": [f"I{top[1]:03d}", "nope"],
            },
        )
    ).json()
    assert not {top[0], top[1]} & set(_ids(body)) and len(body["items"]) == 3
    assert body["unknown_items"] == ["nope"]


async def test_an_unknown_user_with_recent_items_gets_their_neighbours(client: AsyncTestClient) -> None:
    recent = ["I040", "I041", "missing"]
    body = (await client.post("/recommend", json={"user_id": "new", "k": 10, "recent_items": recent})).json()
    assert body["strategy"] == "recent_items" and body["unknown_items"] == ["missing"]
    items = _ids(body)
    assert all(40 <= i < 60 for i in items) and not {40, 41} & set(items)


async def test_anyone_else_gets_popular_items(client: AsyncTestClient) -> None:
    body = (await client.post("/recommend", json={"user_id": "new", "recent_items": ["unknown"]})).json()
    assert body["strategy"] == "popular" and body["unknown_items"] == ["unknown"]
    # Item 5 has 3 train interactions (u1, u2 and u3), the others 1 or 0; ties go by index.
    assert _ids(body)[:4] == [5, 0, 1, 2] and body["items"][0]["score"] == 3.0
    excluded = (
        await client.post("/recommend", json={"user_id": "new", "k": 2, "exclude_items": ["I005"]})
    ).json()
    assert _ids(excluded) == [0, 1]
    popular = (await client.get("/popular", params={"k": 3})).json()
    assert _ids(popular) == [5, 0, 1] and popular["model_version"] == "v1"


async def test_similar_items_and_their_errors(client: AsyncTestClient) -> None:
    body = (await client.get("/items/I022/similar", params={"k": 4})).json()
    assert len(body["items"]) == 4 and 22 not in _ids(body) and all(20 <= i < 40 for i in _ids(body))
    missing = await client.get("/items/B00NOPE/similar")
    assert missing.status_code == 404 and "item 'B00NOPE' is not in serving version v1" in missing.text
    assert (await client.get("/items/I022/similar", params={"k": 0})).status_code == 400
    assert (await client.get("/items/I022/similar", params={"k": "many"})).status_code == 400


def publish_item_item_version(root: Path, version: str) -> None:
    """An item-item version over the same catalogue: each item votes for the others of its
    cluster, nearer indices more (1 / distance); histories as ``publish_version``'s, the last
    item of each weighted 2."""
    import scipy.sparse as sp

    from recsys_assets.core.io.codecs import npz_bytes
    from recsys_assets.core.io.sparse import csr_arrays

    same = (np.arange(N_ITEMS)[:, None] // PER_CLUSTER) == (np.arange(N_ITEMS)[None, :] // PER_CLUSTER)
    distance = np.abs(np.arange(N_ITEMS)[:, None] - np.arange(N_ITEMS)[None, :])
    weights = np.where(same & (distance > 0), 1.0 / np.maximum(distance, 1), 0.0).astype(np.float32)
    indptr, indices, history_weights = [0], [], []
    for user, history in HISTORIES.items():
        rows = history + ([5] if user != "u0" else [])
        indices += rows
        history_weights += [1.0] * (len(rows) - 1) + [2.0] * bool(rows)
        indptr.append(len(indices))
    files = {"neighbours.npz": npz_bytes(csr_arrays(sp.csr_matrix(weights)))} | common_files(
        list(HISTORIES), [f"I{i:03d}" for i in range(N_ITEMS)],
        [f"item {i} ({version})" for i in range(N_ITEMS)],
        Csr(np.array(indptr), np.array(indices)), np.array(history_weights), N_ITEMS,
    )  # fmt: skip
    artifacts = Artifacts(str(root))
    write_files(artifacts, version, files)
    publish(artifacts, version, {"model": {"name": "ease", "kind": "item_item"}})


async def test_an_item_item_model_serves_from_its_neighbour_lists(tmp_path: Path) -> None:
    publish_item_item_version(tmp_path, "v1")
    async with AsyncTestClient(app=create_app(settings(tmp_path))) as api:
        assert (await api.get("/readyz")).status_code == 200
        # u1 reviewed 20, 21 and (last, weight 2) item 5: cluster 1 gets two votes, cluster 0 one
        # vote of weight 2; the item next to 5 scores 2 and leads, then items near 20 and 21.
        body = (await api.post("/recommend", json={"user_id": "u1", "k": 3})).json()
        assert body["strategy"] == "user" and _ids(body) == [4, 6, 22]
        assert [i["score"] for i in body["items"]] == [2.0, 2.0, 1.5]
        assert not {20, 21, 5} & set(
            _ids((await api.post("/recommend", json={"user_id": "u1", "k": 30})).json())
        )
        recent = (
            await api.post("/recommend", json={"user_id": "new", "k": 4, "recent_items": ["I040"]})
        ).json()
        assert recent["strategy"] == "recent_items" and _ids(recent) == [41, 42, 43, 44]
        # Item 0's list names the 19 other items of cluster 0; popular items fill the rest (score 0).
        similar = (await api.get("/items/I000/similar", params={"k": 21})).json()
        assert _ids(similar)[:19] == list(range(1, 20)) and [i["score"] for i in similar["items"][19:]] == [
            0.0,
            0.0,
        ]
        assert _ids(similar)[19:] == [20, 21]  # the most popular items not already listed
        assert (await api.post("/recommend", json={"user_id": "new"})).json()["strategy"] == "popular"


@pytest.mark.parametrize(
    ("body", "message"),
    [
        ({"user_id": "u1", "k": 0}, "Expected `int` >= 1"),
        ({"user_id": "u1", "k": 101}, "Expected `int` <= 100"),
        ({"user_id": "u1", "extra": 1}, "Object contains unknown field `extra`"),
        ({"user_id": "has space"}, "Expected `str` matching regex"),
        ({"user_id": ""}, "Expected `str` of length >= 1"),
        ({"k": 5}, "Object missing required field `user_id`"),
        ({"user_id": "u1", "recent_items": ["I001"] * 201}, "Expected `array` of length <= 200"),
        ({"user_id": "u1", "recent_items": "I001"}, "Expected `array`, got `str`"),
    ],
)
async def test_bad_requests_get_a_400_naming_the_problem(
    client: AsyncTestClient, body: dict[str, Any], message: str
) -> None:
    response = await client.post("/recommend", json=body)
    assert response.status_code == 400, response.text
    assert message in response.text


async def test_malformed_and_oversized_bodies_are_refused(client: AsyncTestClient) -> None:
    broken = await client.post(
        "/recommend", content=b"{not json", headers={"content-type": "application/json"}
    )
    assert broken.status_code == 400
    huge = await client.post("/recommend", content=b'{"user_id": "' + b"a" * 70_000 + b'"}',
                             headers={"content-type": "application/json"})  # fmt: skip
    assert huge.status_code == 413
    event = await client.post(
        "/feedback", json={"request_id": "r", "user_id": "u", "item_id": "i", "event": "like"}
    )
    assert event.status_code == 400 and "Expected `str` matching" not in event.text


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


async def test_concurrent_searches_share_one_faiss_call_per_index() -> None:
    from serving.search_batcher import SearchBatcher

    items, _ = _vectors()
    first = build_index(items, IndexConfig()).index
    second = build_index(items[::-1].copy(), IndexConfig()).index  # a reload can mix versions
    batcher = SearchBatcher(max_batch=32)
    jobs = [(first if i % 2 else second, items[i], 3 + i % 4) for i in range(40)]
    got = await asyncio.gather(*(batcher.search(index, q, n) for index, q, n in jobs))
    for (index, q, n), (scores, rows) in zip(jobs, got, strict=True):
        want_scores, want_rows = index.search(q[None, :], n)
        assert rows.tolist() == want_rows[0].tolist()
        np.testing.assert_allclose(scores, want_scores[0], rtol=1e-6)
    # 40 queries, at most 32 a batch: two batches, each one FAISS call per index.
    assert batcher.searched == 40 and batcher.batches == 2


async def test_inline_searches_run_on_the_event_loop_thread_batched_per_loop_turn() -> None:
    """The default (no search threads): no thread hop; what queued in one loop turn is one
    FAISS call, and a failing index fails only the requests that searched it."""
    import threading

    from serving.search_batcher import SearchBatcher

    items, _ = _vectors()
    real = build_index(items, IndexConfig()).index
    calls: list[tuple[str, int]] = []

    class RecordingIndex:
        def search(self, queries: np.ndarray, n: int) -> tuple[np.ndarray, np.ndarray]:
            calls.append((threading.current_thread().name, len(queries)))
            return real.search(queries, n)  # type: ignore[no-any-return]

    class BrokenIndex:
        def search(self, queries: np.ndarray, n: int) -> tuple[np.ndarray, np.ndarray]:
            raise RuntimeError("index file corrupt")

    batcher = SearchBatcher()
    index = RecordingIndex()
    got = await asyncio.gather(*(batcher.search(index, items[i], 3) for i in range(5)))
    assert [rows[0] for _, rows in got] == [0, 1, 2, 3, 4]
    assert calls == [(threading.current_thread().name, 5)] and batcher.batches == 1
    await batcher.search(index, items[7], 3)  # a later turn: its own call
    assert calls[1:] == [(threading.current_thread().name, 1)]
    broken = await asyncio.gather(batcher.search(BrokenIndex(), items[0], 3), return_exceptions=True)
    assert [str(e) for e in broken] == ["index file corrupt"]
    assert (await batcher.search(index, items[2], 3))[1][0] == 2  # the batcher lives on


async def test_batches_run_on_as_many_threads_as_allowed() -> None:
    """Two batches in flight at once: each search waits at a two-party barrier, which only
    releases when the second batch is searching beside the first."""
    import threading

    from serving.search_batcher import SearchBatcher

    items, _ = _vectors()
    real = build_index(items, IndexConfig()).index
    barrier = threading.Barrier(2, timeout=3)

    class MeetingIndex:
        def search(self, queries: np.ndarray, n: int) -> tuple[np.ndarray, np.ndarray]:
            barrier.wait()  # raises BrokenBarrierError after 3 s if the batches ran one by one
            return real.search(queries, n)  # type: ignore[no-any-return]

    index = MeetingIndex()
    batcher = SearchBatcher(max_batch=2, concurrency=2)
    got = await asyncio.gather(*(batcher.search(index, items[i], 3) for i in range(4)))
    assert [rows[0] for _, rows in got] == [0, 1, 2, 3] and batcher.batches == 2
    assert batcher.searched == 4 and not batcher._tasks  # finished tasks are released

    one = SearchBatcher(max_batch=2, concurrency=1)
    barrier.reset()
    with pytest.raises(threading.BrokenBarrierError):  # one thread: the second batch never starts
        await asyncio.gather(*(one.search(index, items[i], 3) for i in range(4)))


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
        for _ in range(4):  # whichever worker answers, the total is the same
            with urllib.request.urlopen(f"{url}/metrics", timeout=10) as response:
                text = response.read().decode()
            found = re.search(
                r'recsys_http_requests_total\{method="POST",route="/recommend",status="200"\} (\S+)', text
            )
            assert found is not None and float(found.group(1)) == 40.0, text[:2000]
            assert 'recsys_model_info{version="v1"} 1.0' in text
    finally:
        stop(server)
