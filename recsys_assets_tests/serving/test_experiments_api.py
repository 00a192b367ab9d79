"""Online experiments through the API: A/B arms, team-draft interleaving, a shadow version, and
the logs that carry them (DuckDB here; the same rows go to BigQuery)."""

from __future__ import annotations

import asyncio
import json
from collections import Counter
from pathlib import Path
from typing import Any

import duckdb
import pytest
from litestar.testing import AsyncTestClient

from recsys_assets.core.io.artifacts import Artifacts
from recsys_assets.core.serving.rollout import end_experiment
from recsys_assets_tests.serving.versions import (
    manifest_of,
    publish_version,
    replace_manifest,
    settings,
)
from serving.app import create_app

pytestmark = pytest.mark.anyio
USERS = [f"x{i}" for i in range(400)]  # unknown users: popular items, titled by version


@pytest.fixture
def anyio_backend() -> str:
    return "asyncio"


async def _until(condition: Any, seconds: float = 10.0) -> None:
    for _ in range(int(seconds / 0.02)):
        if condition():
            return
        await asyncio.sleep(0.02)
    raise AssertionError("condition not reached in time")


def _rows(root: Path, sql: str) -> list[tuple[Any, ...]]:
    with duckdb.connect(str(root / "warehouse.duckdb"), read_only=True) as con:
        return con.execute(sql).fetchall()


async def test_an_ab_test_splits_users_stickily_and_logs_their_arm(tmp_path: Path) -> None:
    publish_version(tmp_path, "v1")
    publish_version(tmp_path, "v2", seed=2, rollout="ab", share=0.3)
    manifest = json.loads(manifest_of(tmp_path).read_text())
    assert manifest["version"] == "v1" and manifest["experiment"]["name"] == "v1-vs-v2"
    app = create_app(settings(tmp_path))
    async with AsyncTestClient(app=app) as client:
        arms: dict[str, str] = {}
        for user in USERS:
            body = (await client.post("/recommend", json={"user_id": user, "k": 3})).json()
            arms[user] = body["arm"]
            assert body["experiment"] == "v1-vs-v2"
            version = "v2" if body["arm"] == "treatment" else "v1"
            assert body["model_version"] == version and body["items"][0]["title"].endswith(f"({version})")
        share = Counter(arms.values())["treatment"] / len(USERS)
        assert 0.22 < share < 0.38  # 400 users at 0.3: standard error 0.023
        again = [(await client.post("/recommend", json={"user_id": u})).json()["arm"] for u in USERS[:50]]
        assert again == [arms[u] for u in USERS[:50]]  # sticky
        issued = app.state.services.request_ids.issue(USERS[0])
        feedback = {"request_id": issued, "user_id": USERS[0], "item_id": "I005", "event": "click"}
        assert (await client.post("/feedback", json=feedback)).status_code == 202
        await _until(lambda: app.state.services.request_log.written["feedback_events"] == 1)
    logged = dict(_rows(tmp_path, "SELECT arm, count(*) FROM recommendation_requests GROUP BY arm"))
    assert logged == {
        arm: n + sum(arms[u] == arm for u in USERS[:50]) for arm, n in Counter(arms.values()).items()
    }
    assert _rows(tmp_path, "SELECT experiment, arm FROM feedback_events") == [("v1-vs-v2", arms[USERS[0]])]


async def test_interleaving_merges_both_lists_and_credits_each_item(tmp_path: Path) -> None:
    publish_version(tmp_path, "v1")
    publish_version(tmp_path, "v2", seed=2, rollout="interleave")
    app = create_app(settings(tmp_path))
    async with AsyncTestClient(app=app) as client:
        bodies = [(await client.post("/recommend", json={"user_id": "u1", "k": 6})).json() for _ in range(20)]
        await _until(lambda: app.state.services.request_log.written["recommendation_requests"] == 20)
    assert {b["arm"] for b in bodies} == {"interleaved"} and {b["model_version"] for b in bodies} == {"v1"}
    rows = _rows(tmp_path, "SELECT request_id, items, teams FROM recommendation_requests")
    by_id = {request_id: (items, teams) for request_id, items, teams in rows}
    first = set()
    for body in bodies:
        items, teams = by_id[body["request_id"]]
        assert items == [i["item_id"] for i in body["items"]] and len(teams) == len(items) == 6
        # Each item's title says which version ranked it: the team logged for it.
        for item, team in zip(body["items"], teams, strict=True):
            assert item["title"].endswith("(v2)" if team == "treatment" else "(v1)")
        assert sorted(Counter(teams).values()) == [3, 3]
        first.add(teams[0])
    assert first == {"control", "treatment"}  # the coin flip, per request


async def test_a_shadow_version_is_scored_and_logged_but_never_shown(tmp_path: Path) -> None:
    publish_version(tmp_path, "v1")
    publish_version(tmp_path, "v3", seed=3, rollout="shadow")
    app = create_app(settings(tmp_path, shadow_share=1.0))
    async with AsyncTestClient(app=app) as client:
        bodies = [
            (await client.post("/recommend", json={"user_id": u, "k": 4})).json() for u in ("u0", "u1", "x1")
        ]
        await _until(lambda: app.state.services.request_log.written["recommendation_requests"] == 6)
        text = (await client.get("/metrics")).text
    assert all(b["model_version"] == "v1" and b["arm"] == "control" for b in bodies)
    assert all(item["title"].endswith("(v1)") for b in bodies for item in b["items"])
    rows = _rows(tmp_path, "SELECT request_id, arm, model_version FROM recommendation_requests ORDER BY arm")
    served = {r[0] for r in rows if r[1] == "control"}
    shadowed = {r[0] for r in rows if r[1] == "shadow" and r[2] == "v3"}
    assert served == shadowed == {b["request_id"] for b in bodies}
    assert 'recsys_shadow_requests_total{outcome="scored"} 3.0' in text


async def test_only_the_shadow_share_of_requests_is_shadowed(tmp_path: Path) -> None:
    publish_version(tmp_path, "v1")
    publish_version(tmp_path, "v3", seed=3, rollout="shadow")
    app = create_app(settings(tmp_path, shadow_share=0.25, log_sink="none"))
    async with AsyncTestClient(app=app) as client:
        ids = [(await client.post("/recommend", json={"user_id": f"x{i}", "k": 2})).json()["request_id"]
               for i in range(400)]  # fmt: skip
        # The shadow tasks run on the app's own event loop (the test client's thread), not this
        # one: wait for them to finish there rather than gathering them here.
        await _until(lambda: not app.state.services.shadows.tasks, seconds=60)
        text = (await client.get("/metrics")).text
    # The sample is the ids below the cutoff, whatever their number: exact, and about a quarter.
    chosen = sum(int(i[:8], 16) < 0x40000000 for i in ids)
    assert f'recsys_shadow_requests_total{{outcome="scored"}} {float(chosen)}' in text
    assert 60 <= chosen <= 140  # 400 x 0.25 = 100, binomial sd 8.7


async def test_an_experiment_ends_by_stopping_or_promoting_the_treatment(tmp_path: Path) -> None:
    publish_version(tmp_path, "v1")
    publish_version(tmp_path, "v2", seed=2, rollout="ab", share=0.5)
    app = create_app(settings(tmp_path, reload_interval_s=0.02, log_sink="none"))
    async with AsyncTestClient(app=app) as client:
        assert app.state.services.index.published.experiment is not None
        end_experiment(Artifacts(str(tmp_path)), "stop")
        await _until(lambda: app.state.services.index.published.experiment is None)
        assert {
            (await client.post("/recommend", json={"user_id": u})).json()["model_version"] for u in USERS[:40]
        } == {"v1"}
        publish_version(tmp_path, "v2", seed=2, rollout="ab", share=0.5)  # the treatment again
        await _until(lambda: app.state.services.index.published.experiment is not None)
        end_experiment(Artifacts(str(tmp_path)), "promote")
        await _until(lambda: app.state.services.index.bundle.version == "v2")
        body = (await client.post("/recommend", json={"user_id": "x1"})).json()
        assert body["model_version"] == "v2" and body["experiment"] is None and body["arm"] == "control"
    with pytest.raises(ValueError, match="no experiment is running"):
        end_experiment(Artifacts(str(tmp_path)), "stop")


async def test_an_experiment_that_cannot_run_is_rejected_and_the_old_state_serves(tmp_path: Path) -> None:
    publish_version(tmp_path, "v1")
    app = create_app(settings(tmp_path, reload_interval_s=0.02, log_sink="none"))
    async with AsyncTestClient(app=app) as client:
        manifest = json.loads(manifest_of(tmp_path).read_text())
        arms = [
            {"name": "control", "version": "v1", "share": 0.5},
            {"name": "treatment", "version": "v9", "share": 0.5},
        ]
        manifest["experiment"] = {"name": "e", "salt": "s", "mode": "ab", "arms": arms}
        replace_manifest(tmp_path, json.dumps(manifest))
        await _until(lambda: app.state.services.index.rejected is not None)
        assert app.state.services.index.published.experiment is None  # v9 was never published
        first = app.state.services.index.rejected
        manifest["experiment"]["arms"][1]["share"] = 0.7
        replace_manifest(tmp_path, json.dumps(manifest))
        await _until(lambda: app.state.services.index.rejected not in (None, first))
        body = (await client.post("/recommend", json={"user_id": "x1"})).json()
        assert body["model_version"] == "v1" and body["experiment"] is None
        text = (await client.get("/metrics")).text
        assert 'recsys_index_reloads_total{outcome="rejected"} 2.0' in text
