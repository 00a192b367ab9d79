"""Headless Chromium for the explorer's tests and the README's screenshots: Debian's ``chromium``
where installed (``make browser``), driven by Playwright without its own browser download; else
Playwright's own build (``playwright install chromium``, on a laptop)."""

from __future__ import annotations

import shutil

from playwright.sync_api import Browser, Playwright

#: For a sandboxed, offline machine: no sandbox (root), no GPU, and no first-run, sync or
#: component-update traffic (each a connection this machine's closed network refuses).
CHROMIUM_ARGS = [
    "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run", "--disable-background-networking",
    "--disable-component-update", "--disable-sync",
]  # fmt: skip


def launch_chromium(playwright: Playwright) -> Browser:
    return playwright.chromium.launch(executable_path=shutil.which("chromium"), args=CHROMIUM_ARGS)
