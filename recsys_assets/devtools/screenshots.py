"""The README's pictures (``docs/*.png``), taken in headless Chromium from a running ``make run``.

    make screenshots      # with `make run` up in another terminal, after its run succeeded

1. ``explorer.png``: the explorer at ``/explorer``, the first suggested user's history and
   recommendations, and the items similar to the first recommendation.
2. ``eval_report.png``: the Dagster UI's ``eval_report`` page: what serves and why, the compact
   table; ``eval_examples.png``: its example recommendations opened.
3. ``drift.png``: ``drift_metrics``' plot of the last 30 days opened, after replaying a day of
   shifted traffic through the API and computing today's partition (``drift_replay
   --no-retrain``; the UI shows it because both use the same instance).
"""

from __future__ import annotations

import argparse
import re
import sys
from pathlib import Path

from playwright.sync_api import Page, sync_playwright

from recsys_assets.devtools import drift_replay
from recsys_assets.devtools.browser import dismiss_welcome, launch_chromium
from recsys_assets.settings import PROJECT_ROOT


def explorer(page: Page, api: str, out: Path) -> None:
    page.goto(f"{api}/explorer")
    page.wait_for_selector("body[data-ready=true]")
    page.fill("#k", "6")
    page.click("#recommend")
    page.locator("#recommendations li").first.click()
    page.wait_for_selector("#similar li")
    page.wait_for_load_state("networkidle")
    page.screenshot(path=out / "explorer.png")


def _asset_page(page: Page, ui: str, asset: str) -> None:
    page.goto(f"{ui}/assets/{asset}")
    page.wait_for_selector("text=Metadata", timeout=60_000)


def _open_markdown(page: Page, key: str) -> None:
    """Open the ``[Show Markdown]`` dialog of a metadata entry (the UI shows markdown of 1,000
    characters or more, plots among them, behind it)."""
    row = page.locator("tr", has=page.locator("td:first-child", has_text=key)).first
    row.get_by_text("[Show Markdown]").click()
    page.wait_for_selector("[role=dialog] img, [role=dialog] table")
    page.wait_for_timeout(1_000)  # the dialog fades in


def eval_report(page: Page, ui: str, out: Path) -> None:
    _asset_page(page, ui, "eval_report")
    # What serves and why, then the compact table, at the top of the picture.
    served = page.locator("tr", has=page.locator("td:first-child", has_text=re.compile(r"^\s*served\s*$")))
    served.first.evaluate("row => row.scrollIntoView({block: 'start'})")
    page.screenshot(path=out / "eval_report.png")
    _open_markdown(page, "examples")
    page.screenshot(path=out / "eval_examples.png")


def drift(page: Page, ui: str, out: Path) -> None:
    page.set_viewport_size({"width": 1440, "height": 1350})  # the plot's four rows of panels
    _asset_page(page, ui, "drift_metrics")
    _open_markdown(page, "last_30_days_plot")
    page.screenshot(path=out / "drift.png")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--ui", default="http://localhost:3000")
    parser.add_argument("--api", default="http://localhost:8000")
    parser.add_argument("--out", type=Path, default=PROJECT_ROOT / "docs")
    args = parser.parse_args(argv)
    args.out.mkdir(parents=True, exist_ok=True)
    # First (it runs an event loop of its own, which Playwright's sync API would be in the way of).
    if drift_replay.main(["--no-retrain"]) != 0:
        raise SystemExit("replaying traffic and computing today's drift metrics failed")
    with sync_playwright() as playwright:
        browser = launch_chromium(playwright)
        page = browser.new_page(viewport={"width": 1440, "height": 900})
        explorer(page, args.api, args.out)
        dismiss_welcome(page, args.ui)
        eval_report(page, args.ui, args.out)
        drift(page, args.ui, args.out)
        browser.close()
    print(f"screenshots in {args.out}: {sorted(p.name for p in args.out.glob('*.png'))}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
