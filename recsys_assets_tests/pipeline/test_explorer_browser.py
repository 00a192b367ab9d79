"""The recommendations explorer and the API docs in a real headless Chromium (Debian's, driven by
Playwright; Playwright's own build where there is none), over the pipeline's serving version:
what the page shows is what the API answers, and nothing is asked of any host but the API."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
from playwright.sync_api import Browser, Page, sync_playwright

from recsys_assets.core.io import artifacts as catalogue
from recsys_assets.core.io.artifacts import Artifacts
from recsys_assets.core.serving.bundle import load_bundle
from recsys_assets.devtools.browser import launch_chromium
from recsys_assets.devtools.local_api import local_api, wait_for
from recsys_assets_tests.pipeline.conftest import Pipeline

pytestmark = pytest.mark.xdist_group("pipeline")


@pytest.fixture(scope="module")
def browser() -> Iterator[Browser]:
    with sync_playwright() as playwright:
        browser = launch_chromium(playwright)
        yield browser
        browser.close()


@pytest.fixture
def api(pipeline: Pipeline, tmp_path: Path) -> Iterator[str]:
    pipeline.require("faiss_index")
    manifest = Path(pipeline.artifacts.uri(catalogue.SERVING_MANIFEST))
    with local_api(manifest, str(tmp_path / "warehouse.duckdb")) as url:
        wait_for(url, lambda body: body.get("status") == "ready", "load the serving version")
        yield url


class Visit:
    """A page that records every request it makes and every error it reports."""

    def __init__(self, browser: Browser, base: str):
        self.context = browser.new_context(viewport={"width": 1400, "height": 900})
        self.page: Page = self.context.new_page()
        self.requests: list[str] = []
        #: Requests the page's own Content-Security-Policy stopped in the browser (never sent).
        self.blocked: list[str] = []
        self.errors: list[str] = []
        self.page.on("request", lambda request: self.requests.append(request.url))
        self.page.on(
            "requestfailed",
            lambda r: self.blocked.append(r.url) if r.failure in ("csp", "net::ERR_BLOCKED_BY_CSP") else None,
        )
        self.page.on("pageerror", lambda error: self.errors.append(str(error)))
        self.page.on("console", lambda m: self.errors.append(m.text) if m.type == "error" else None)
        self.base = base

    def elsewhere(self) -> list[str]:
        """Requests to any host but the API that the browser sent."""
        return [
            u
            for u in self.requests
            if not u.startswith((self.base, "data:", "blob:")) and u not in self.blocked
        ]

    def close(self) -> None:
        self.context.close()


@pytest.fixture
def visit(browser: Browser, api: str) -> Iterator[Visit]:
    visit = Visit(browser, api)
    yield visit
    visit.close()


def _texts(page: Page, selector: str) -> list[str]:
    return [t.strip() for t in page.locator(selector).all_inner_texts()]


def test_a_user_history_and_recommendations_as_the_api_serves_them(visit: Visit, pipeline: Pipeline) -> None:
    page, api = visit.page, visit.base
    bundle = load_bundle(pipeline.artifacts.uri(catalogue.SERVING_MANIFEST))
    page.goto(f"{api}/explorer")
    page.wait_for_selector("body[data-ready=true]")
    assert f"serving version {bundle.version}: {len(bundle.user_ids)} users" in page.inner_text("#version")
    # The first suggestion is the user with the longest history.
    lengths = bundle.history_indptr[1:] - bundle.history_indptr[:-1]
    user = bundle.user_ids[int(lengths.argmax())]
    assert page.input_value("#user") == user
    page.fill("#k", "7")
    page.click("#recommend")
    page.wait_for_selector("#recommendations li")
    history = bundle.history(bundle.user_index[user])
    assert page.inner_text("#history-count") == f"({len(history)} items)"
    assert _texts(page, "#history li .title") == [bundle.titles[i] for i in history]

    served = page.inner_text("#served-line")
    request_id = served.rsplit("(request ", 1)[1].rstrip(")")
    assert served.startswith(f"7 items for {user} by strategy user, version {bundle.version}, arm control")
    # The same request again gives the same list: the page shows the API's answer.
    again: dict[str, Any] = httpx.post(f"{api}/recommend", json={"user_id": user, "k": 7}).json()
    assert len(request_id) == 32 and again["model_version"] == bundle.version
    assert _texts(page, "#recommendations li .title") == [i["title"] for i in again["items"]]
    assert _texts(page, "#recommendations li .score") == [f"{i['score']:.3f}" for i in again["items"]]
    categories = {bundle.categories[bundle.item_index[i["item_id"]]] for i in again["items"]}
    assert all(any(c in meta for c in categories) for meta in _texts(page, "#recommendations li .meta"))
    assert not visit.elsewhere() and not visit.errors, (visit.elsewhere(), visit.errors)


def test_similar_items_and_images_of_a_picked_item(visit: Visit, pipeline: Pipeline) -> None:
    page, api = visit.page, visit.base
    bundle = load_bundle(pipeline.artifacts.uri(catalogue.SERVING_MANIFEST))
    page.goto(f"{api}/explorer")
    page.wait_for_selector("body[data-ready=true]")
    page.click("#recommend")
    first = page.locator("#recommendations li").first
    first.wait_for()
    item_id = first.get_attribute("data-item-id")
    first.click()
    page.wait_for_selector("#similar li")
    similar = httpx.get(f"{api}/items/{item_id}/similar?k=10").json()["items"]
    assert page.inner_text("#similar-to") == bundle.titles[bundle.item_index[str(item_id)]]
    assert _texts(page, "#similar li .title") == [i["title"] for i in similar]
    # Every image shown came through the API and decoded; items without one show a blank tile.
    page.wait_for_load_state("networkidle")
    widths = page.eval_on_selector_all("main img", "images => images.map(i => i.complete && i.naturalWidth)")
    assert widths and all(w and w > 0 for w in widths), widths
    shown = page.locator("main img").count() + page.locator("main .no-image").count()
    assert shown == page.locator("main li").count()
    assert any("/explorer/images/" in u for u in visit.requests)
    assert not visit.elsewhere() and not visit.errors, (visit.elsewhere(), visit.errors)


def test_a_brand_new_user_gets_the_popular_items(visit: Visit, pipeline: Pipeline) -> None:
    page = visit.page
    bundle = load_bundle(pipeline.artifacts.uri(catalogue.SERVING_MANIFEST))
    page.goto(f"{visit.base}/explorer")
    page.wait_for_selector("body[data-ready=true]")
    page.fill("#k", "5")
    page.click("#new-user")
    page.wait_for_selector("#recommendations li")
    assert page.input_value("#user").startswith("new-user-")
    assert page.inner_text("#history-count") == "(a user the model has never seen)"
    assert "by strategy popular" in page.inner_text("#served-line")
    assert _texts(page, "#recommendations li .title") == [bundle.titles[i] for i in bundle.popular[:5]]
    assert not visit.elsewhere() and not visit.errors


def test_an_unknown_item_id_typed_as_a_user_is_an_error_on_the_page_not_a_blank(visit: Visit) -> None:
    page = visit.page
    page.goto(f"{visit.base}/explorer")
    page.wait_for_selector("body[data-ready=true]")
    page.fill("#user", "not a valid id!")
    page.click("#recommend")
    page.wait_for_selector("#error:not([hidden])")
    assert "400" in page.inner_text("#error")


def test_the_api_docs_render_offline(visit: Visit) -> None:
    page = visit.page
    page.goto(f"{visit.base}/schema")
    # Redoc renders each operation's summary in its menu once it has parsed the schema.
    page.wait_for_selector("text=Recommend", timeout=30_000)
    assert page.locator("h1").first.inner_text().startswith("recsys recommendations")
    assert not visit.elsewhere(), visit.elsewhere()
    # Redoc's bundle links a logo on Redocly's CDN; the page's policy stops it in the browser.
    assert visit.blocked == ["https://cdn.redoc.ly/redoc/logo-mini.svg"]


def test_a_ranker_versions_recommendations_say_why(
    browser: Browser, ranker_version: Artifacts, tmp_path: Path
) -> None:
    """Over the pipeline's ranker version: each recommendation names the retrievers that proposed
    it and the features that raised its score, as /explorer/users/{id}/why says."""
    bundle = load_bundle(ranker_version.uri(catalogue.SERVING_MANIFEST))
    with local_api(Path(ranker_version.uri(catalogue.SERVING_MANIFEST)), str(tmp_path / "w.duckdb")) as api:
        wait_for(api, lambda body: body.get("status") == "ready", "load the ranker version")
        visit = Visit(browser, api)
        try:
            page = visit.page
            page.goto(f"{api}/explorer")
            page.wait_for_selector("body[data-ready=true]")
            page.fill("#k", "5")
            page.click("#recommend")
            page.wait_for_selector("#recommendations li .why")
            user = page.input_value("#user")
            served = httpx.post(f"{api}/recommend", json={"user_id": user, "k": 5}).json()["items"]
            ids = [i["item_id"] for i in served]
            why = httpx.get(f"{api}/explorer/users/{user}/why", params={"ids": ids}).json()["items"]
            lines = _texts(page, "#recommendations li .why")
            assert len(lines) == 5 and bundle.ranker is not None
            for line, item, reason in zip(lines, served, why, strict=True):
                assert line.startswith(f"why: proposed by {', '.join(item['sources'])}; raised by ")
                assert (
                    f"{reason['features'][0]['feature']} +{reason['features'][0]['contribution']:.2f}" in line
                )
            # The features' descriptions are the line's tooltip.
            tip = page.locator("#recommendations li .why").first.get_attribute("title") or ""
            assert why[0]["features"][0]["description"] in tip
            assert not visit.elsewhere() and not visit.errors, (visit.elsewhere(), visit.errors)
        finally:
            visit.close()
