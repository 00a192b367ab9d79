"""Recommendations against a small real FAISS index: a user's cluster, recent and excluded items,
the fallbacks, similar items, item-item models, and the 400s, 413s and 415s of bad requests."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
from litestar.testing import AsyncTestClient

from recsys_assets_tests.serving.versions import (
    ids_of,
    publish_item_item_version,
    publish_ranker_version,
    settings,
)
from serving.app import create_app

pytestmark = pytest.mark.anyio


async def test_a_known_user_gets_their_cluster_without_their_history(client: AsyncTestClient) -> None:
    response = await client.post("/recommend", json={"user_id": "u1", "k": 5})
    assert response.status_code == 200
    body = response.json()
    assert body["strategy"] == "user" and body["model_version"] == "v1" and len(body["request_id"]) == 32
    items = ids_of(body)
    assert len(items) == 5 and all(20 <= i < 40 for i in items)
    assert not {20, 21, 5} & set(items)  # train history never comes back
    scores = [i["score"] for i in body["items"]]
    assert scores == sorted(scores, reverse=True)
    assert body["items"][0]["title"] == f"item {items[0]} (v1)" and body["unknown_items"] == []


async def test_recent_and_excluded_items_never_come_back(client: AsyncTestClient) -> None:
    top = ids_of((await client.post("/recommend", json={"user_id": "u0", "k": 3})).json())
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
    assert not {top[0], top[1]} & set(ids_of(body)) and len(body["items"]) == 3
    assert body["unknown_items"] == ["nope"]


async def test_an_unknown_user_with_recent_items_gets_their_neighbours(client: AsyncTestClient) -> None:
    recent = ["I040", "I041", "missing"]
    body = (await client.post("/recommend", json={"user_id": "new", "k": 10, "recent_items": recent})).json()
    assert body["strategy"] == "recent_items" and body["unknown_items"] == ["missing"]
    items = ids_of(body)
    assert all(40 <= i < 60 for i in items) and not {40, 41} & set(items)


async def test_anyone_else_gets_popular_items(client: AsyncTestClient) -> None:
    body = (await client.post("/recommend", json={"user_id": "new", "recent_items": ["unknown"]})).json()
    assert body["strategy"] == "popular" and body["unknown_items"] == ["unknown"]
    # Item 5 has 3 train interactions (u1, u2 and u3), the others 1 or 0; ties go by index.
    assert ids_of(body)[:4] == [5, 0, 1, 2] and body["items"][0]["score"] == 3.0
    excluded = (
        await client.post("/recommend", json={"user_id": "new", "k": 2, "exclude_items": ["I005"]})
    ).json()
    assert ids_of(excluded) == [0, 1]
    popular = (await client.get("/popular", params={"k": 3})).json()
    assert ids_of(popular) == [5, 0, 1] and popular["model_version"] == "v1"


async def test_similar_items_and_their_errors(client: AsyncTestClient) -> None:
    body = (await client.get("/items/I022/similar", params={"k": 4})).json()
    assert len(body["items"]) == 4 and 22 not in ids_of(body) and all(20 <= i < 40 for i in ids_of(body))
    missing = await client.get("/items/B00NOPE/similar")
    assert missing.status_code == 404 and "item 'B00NOPE' is not in serving version v1" in missing.text
    assert (await client.get("/items/I022/similar", params={"k": 0})).status_code == 400
    assert (await client.get("/items/I022/similar", params={"k": "many"})).status_code == 400


async def test_an_item_item_model_serves_from_its_neighbour_lists(tmp_path: Path) -> None:
    publish_item_item_version(tmp_path, "v1")
    async with AsyncTestClient(app=create_app(settings(tmp_path))) as api:
        assert (await api.get("/readyz")).status_code == 200
        # u1 reviewed 20, 21 and (last, weight 2) item 5: cluster 1 gets two votes, cluster 0 one
        # vote of weight 2; the item next to 5 scores 2 and leads, then items near 20 and 21.
        body = (await api.post("/recommend", json={"user_id": "u1", "k": 3})).json()
        assert body["strategy"] == "user" and ids_of(body) == [4, 6, 22]
        assert [i["score"] for i in body["items"]] == [2.0, 2.0, 1.5]
        assert not {20, 21, 5} & set(
            ids_of((await api.post("/recommend", json={"user_id": "u1", "k": 30})).json())
        )
        recent = (
            await api.post("/recommend", json={"user_id": "new", "k": 4, "recent_items": ["I040"]})
        ).json()
        assert recent["strategy"] == "recent_items" and ids_of(recent) == [41, 42, 43, 44]
        # Item 0's list names the 19 other items of cluster 0; popular items fill the rest (score 0).
        similar = (await api.get("/items/I000/similar", params={"k": 21})).json()
        assert ids_of(similar)[:19] == list(range(1, 20)) and [i["score"] for i in similar["items"][19:]] == [
            0.0,
            0.0,
        ]
        assert ids_of(similar)[19:] == [20, 21]  # the most popular items not already listed
        assert (await api.post("/recommend", json={"user_id": "new"})).json()["strategy"] == "popular"


async def test_a_ranker_version_ranks_known_users_candidates_and_names_their_sources(tmp_path: Path) -> None:
    _, items = publish_ranker_version(tmp_path, "v1")
    async with AsyncTestClient(app=create_app(settings(tmp_path))) as api:
        assert (await api.get("/readyz")).status_code == 200
        body = (await api.post("/recommend", json={"user_id": "t5", "k": 8})).json()
        assert body["strategy"] == "user" and len(body["items"]) == 8
        # User 5 likes the items of group 1 (item % 4), 4 of them left outside their history: the
        # ranker learnt which retriever knows it, and puts them first.
        liked = [int(i["item_id"][1:]) % 4 == 1 for i in body["items"]]
        assert liked[:4] == [True] * 4, body["items"]
        sources = {"taste", "noise", "knn", "fused_knn", "cold_content"}
        assert all(i["sources"] and set(i["sources"]) <= sources for i in body["items"])
        scores = [i["score"] for i in body["items"]]
        assert scores == sorted(scores, reverse=True)
        # What the request excludes is never a candidate; more than the candidates: popular fill-ins.
        first = body["items"][0]["item_id"]
        again = (
            await api.post("/recommend", json={"user_id": "t5", "k": 40, "exclude_items": [first]})
        ).json()
        # 40 items, 6 in the history, 1 excluded.
        assert first not in {i["item_id"] for i in again["items"]} and len(again["items"]) == 33
        fills = [i for i in again["items"] if not i["sources"]]
        assert all(i["score"] == 0.0 for i in fills)
        assert again["items"][len(again["items"]) - len(fills) :] == fills
        # Why: the sources and the features that raised each score most, described.
        why = (await api.get("/explorer/users/t5/why", params={"ids": [first, "nope"]})).json()
        assert why["model"] == "ranker" and why["stages"] == "two stages" and why["unknown_items"] == ["nope"]
        assert why["items"][0]["sources"] == body["items"][0]["sources"]
        assert why["items"][0]["features"] and all(f["description"] for f in why["items"][0]["features"])
        # Unknown users go to the fallback retriever, without sources.
        cold = (await api.post("/recommend", json={"user_id": "new", "recent_items": [items[1]]})).json()
        assert cold["strategy"] == "recent_items" and all("sources" not in i for i in cold["items"])
        single = (await api.get("/explorer/users/new/why", params={"ids": [items[2]]})).json()
        assert single["stages"] == "fallback (a user the ranker does not know)"


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
