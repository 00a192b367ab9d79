"""Headless Chromium for the explorer's tests and the README's screenshots: Debian's ``chromium``
where installed (``make browser``), driven by Playwright without its own browser download; else
Playwright's own build (``playwright install chromium``, on a laptop)."""

from __future__ import annotations

import contextlib
import shutil

from playwright.sync_api import Browser, Page, Playwright
from playwright.sync_api import TimeoutError as PlaywrightTimeout

#: For a sandboxed, offline machine: no sandbox (root), no GPU, and no first-run, sync or
#: component-update traffic (each a connection this machine's closed network refuses).
CHROMIUM_ARGS = [
    "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run", "--disable-background-networking",
    "--disable-component-update", "--disable-sync",
]  # fmt: skip


def launch_chromium(playwright: Playwright) -> Browser:
    return playwright.chromium.launch(executable_path=shutil.which("chromium"), args=CHROMIUM_ARGS)


def dismiss_welcome(page: Page, ui: str) -> None:
    """Skip the UI's newsletter dialog, which it shows once per browser profile, a few seconds
    after the first page loads, over whatever comes next (a click or a screenshot)."""
    page.goto(ui)
    with contextlib.suppress(PlaywrightTimeout):  # not shown to this profile: nothing to dismiss
        page.get_by_role("button", name="Skip").click(timeout=20_000)
