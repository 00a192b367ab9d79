"""Every Dagster UI path the README gives (``*Runs > Backfills*``) exists in the pinned Dagster's
UI: a real webserver over the project's definitions, clicked through in headless Chromium."""

from __future__ import annotations

import os
import re
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest
from dagster_graphql import DagsterGraphQLClient
from playwright.sync_api import sync_playwright

from recsys_assets.devtools.browser import dismiss_welcome, launch_chromium
from recsys_assets.devtools.live_run import server, wait_for_ui
from recsys_assets.devtools.local_api import free_port
from recsys_assets.settings import PROJECT_ROOT

#: The README and the docs pages, where UI paths are named.
DOCS = [PROJECT_ROOT / "README.md", *sorted((PROJECT_ROOT / "docs").glob("*.md"))]
#: A UI path as the README writes it: italic, its steps joined by " > ".
PATH = re.compile(r"\*((?:Overview|Runs|Catalog|Jobs|Automation|Lineage|Deployment)(?: > [^*>]+)+)\*")


def _text() -> str:
    return "\n".join(page.read_text() for page in DOCS)


def ui_paths(text: str) -> list[list[str]]:
    return [[step.strip() for step in match.split(" > ")] for match in dict.fromkeys(PATH.findall(text))]


@pytest.fixture(scope="module")
def ui(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    home = tmp_path_factory.mktemp("dagster_home")
    port = free_port()
    command = [str(Path(sys.executable).with_name("dagster-webserver")), "-m", "recsys_assets.definitions",
               "-h", "127.0.0.1", "-p", str(port)]  # fmt: skip
    log = home / "webserver.log"
    with server(
        "dagster-webserver", command, PROJECT_ROOT, {**os.environ, "DAGSTER_HOME": str(home)}, log
    ) as web:
        wait_for_ui(DagsterGraphQLClient("127.0.0.1", port_number=port), f"port {port}", web, log)
        yield f"http://127.0.0.1:{port}"


def test_the_readme_names_ui_paths_in_the_form_this_test_reads() -> None:
    paths = ui_paths(_text())
    assert ["Runs", "Backfills"] in paths and ["Catalog", "interactions"] in paths, paths
    # The forms of Dagster before 1.13 are gone.
    assert "*Overview > Backfills*" not in _text()
    assert "*Assets > " not in _text()


def test_every_ui_path_in_the_readme_exists(ui: str) -> None:
    with sync_playwright() as playwright:
        browser = launch_chromium(playwright)
        page = browser.new_page(viewport={"width": 1400, "height": 900})
        dismiss_welcome(page, ui)
        for path in ui_paths(_text()):
            page.goto(ui)
            for step in path:
                # A navigation link, a tab or a button whose whole text is the step.
                # ("Queued (0)" has a count; the catalogue's links repeat the name for a tooltip.)
                name = re.escape(step)
                whole = re.compile(rf"^\s*{name}(\s*{name})?(\s*\(\d+\))?\s*$")
                target = page.locator("a, [role=tab], button").filter(has_text=whole)
                target.first.wait_for(timeout=30_000)
                target.first.click()
            page.wait_for_load_state("networkidle")
        browser.close()
