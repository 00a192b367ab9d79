"""The explorer's endpoints and the API docs page, in process over a small real version whose
items carry categories and images (a local file, an http URL, none)."""

from __future__ import annotations

import re
from collections.abc import AsyncIterator
from pathlib import Path

import pytest
from litestar.testing import AsyncTestClient
from PIL import Image

from recsys_assets.core.catalogue.display import ItemCards
from recsys_assets_tests.serving.versions import HISTORIES, N_ITEMS, publish_version, settings
from serving.app import create_app

pytestmark = pytest.mark.anyio


@pytest.fixture
def anyio_backend() -> str:
    return "asyncio"


def _cards(root: Path) -> ItemCards:
    """Item 0's image is a local PNG, item 1's an http URL, item 2's a missing file; others none."""
    Image.new("RGB", (4, 4), (200, 10, 10)).save(root / "i0.png")
    images: list[str | None] = [None] * N_ITEMS
    images[:3] = [f"file://{root / 'i0.png'}", "https://example.com/i1.jpg", str(root / "gone.jpg")]
    return ItemCards(
        [f"item {i}" for i in range(N_ITEMS)], [f"Category {i // 20}" for i in range(N_ITEMS)], images
    )


@pytest.fixture
async def client(tmp_path: Path) -> AsyncIterator[AsyncTestClient]:
    publish_version(tmp_path, "v1", cards=_cards(tmp_path))
    async with AsyncTestClient(app=create_app(settings(tmp_path))) as test_client:
        yield test_client


async def test_users_are_listed_longest_history_first_and_found_by_part_of_their_id(
    client: AsyncTestClient,
) -> None:
    body = (await client.get("/explorer/users")).json()
    # u2 has 4 + 1 train items, u0 3, u1 2 + 1, u3 0 + 1; ties by node order.
    assert body == {
        "model_version": "v1",
        "total": 4,
        "users": [
            {"user_id": "u2", "history": 5},
            {"user_id": "u0", "history": 3},
            {"user_id": "u1", "history": 3},
            {"user_id": "u3", "history": 1},
        ],
    }
    assert [u["user_id"] for u in (await client.get("/explorer/users?q=u1")).json()["users"]] == ["u1"]
    assert (await client.get("/explorer/users?q=zz")).json()["users"] == []
    assert [u["user_id"] for u in (await client.get("/explorer/users?limit=2")).json()["users"]] == [
        "u2",
        "u0",
    ]


async def test_a_users_history_comes_as_cards_with_their_arm(client: AsyncTestClient) -> None:
    body = (await client.get("/explorer/users/u0")).json()
    assert body["known"] and body["arm"] == "control" and body["experiment"] is None
    assert body["history_total"] == len(HISTORIES["u0"]) == 3
    assert body["history"][0] == {
        "item_id": "I000", "title": "item 0 (v1)", "category": "Category 0", "image": "/explorer/images/I000",
        "interactions": 1,
    }  # fmt: skip
    assert body["history"][1]["image"] == "https://example.com/i1.jpg"
    two = (await client.get("/explorer/users/u2?limit=2")).json()
    assert [c["item_id"] for c in two["history"]] == ["I040", "I041"] and two["history_total"] == 5
    stranger = (await client.get("/explorer/users/someone-new")).json()
    assert not stranger["known"] and stranger["history"] == [] and stranger["history_total"] == 0


async def test_items_come_as_cards_and_unknown_ids_are_named(client: AsyncTestClient) -> None:
    body = (await client.get("/explorer/items?ids=I005&ids=nope&ids=I021")).json()
    assert [c["item_id"] for c in body["items"]] == ["I005", "I021"] and body["unknown_items"] == ["nope"]
    assert body["items"][0]["interactions"] == 3 and body["items"][0]["image"] is None


async def test_only_the_image_the_catalogue_names_is_served(client: AsyncTestClient) -> None:
    served = await client.get("/explorer/images/I000")
    assert served.status_code == 200 and served.headers["content-type"] == "image/png"
    assert served.content[:8] == b"\x89PNG\r\n\x1a\n"
    for item, reason in [
        ("I001", "has no image served here"),  # http(s): the page loads it from its own address
        ("I003", "has no image served here"),
        ("nope", "has no image served here"),
        ("I002", "gone.jpg cannot be read"),
    ]:
        response = await client.get(f"/explorer/images/{item}")
        assert response.status_code == 404 and reason in response.json()["detail"], item


async def test_the_page_and_its_files_load_from_the_api(client: AsyncTestClient) -> None:
    page = await client.get("/explorer")
    assert page.status_code == 200 and page.headers["content-type"].startswith("text/html")
    sources = re.findall(r'(?:src|href)="([^"]+)"', page.text)
    assert sources and all(s.startswith("/") or s.startswith("data:") for s in sources), sources
    for source in (s for s in sources if s.startswith("/explorer/static/")):
        assert (await client.get(source)).status_code == 200, source


async def test_the_docs_page_loads_redoc_from_the_api_and_nothing_from_elsewhere(
    client: AsyncTestClient,
) -> None:
    page = await client.get("/schema")
    assert page.status_code == 200
    assert "https://" not in page.text and "http://" not in page.text
    script = re.search(r'<script src="([^"]+)"', page.text)
    assert script and script.group(1) == "/static/vendor/redoc/redoc.standalone.js"
    bundle = await client.get(script.group(1))
    assert bundle.status_code == 200 and len(bundle.content) > 1_000_000
    spec = (await client.get("/schema/openapi.json")).json()
    assert {"/recommend", "/explorer/users", "/explorer/items"} <= set(spec["paths"])


async def test_the_explorer_can_be_turned_off(tmp_path: Path) -> None:
    publish_version(tmp_path, "v1")
    async with AsyncTestClient(app=create_app(settings(tmp_path, explorer=False))) as client:
        for path in ("/explorer", "/explorer/users", "/explorer/users/u0", "/explorer/static/explorer.js"):
            assert (await client.get(path)).status_code == 404, path
        assert "/explorer/users" not in (await client.get("/schema/openapi.json")).json()["paths"]
        assert (await client.post("/recommend", json={"user_id": "u0"})).status_code == 200


async def test_a_version_without_cards_shows_blank_categories_and_no_images(tmp_path: Path) -> None:
    publish_version(tmp_path, "v1")
    async with AsyncTestClient(app=create_app(settings(tmp_path))) as client:
        card = (await client.get("/explorer/items?ids=I000")).json()["items"][0]
        assert card == {
            "item_id": "I000",
            "title": "item 0 (v1)",
            "category": "",
            "image": None,
            "interactions": 1,
        }
