"""The serving version in use, and the watcher that swaps in each newly published one.

Loading reads and verifies every file off the event loop; the swap is one reference
assignment, so a request sees the old version or the new one, never a mix. A version that
fails verification is logged, counted and remembered (not retried until the manifest names
another), and the old version keeps serving.
"""

from __future__ import annotations

import asyncio
import logging

import anyio.to_thread

from recsys_assets.core.serving.bundle import Bundle, BundleError, load_bundle, read_manifest
from serving.metrics import Metrics

log = logging.getLogger("serving.index")


class IndexState:
    def __init__(self, manifest_uri: str, metrics: Metrics):
        self.manifest_uri = manifest_uri
        self.metrics = metrics
        self.bundle: Bundle | None = None
        self.rejected: str | None = None
        self._lock = asyncio.Lock()

    async def refresh(self) -> str:
        """Load the manifest's version if it is new; return what happened."""
        async with self._lock:  # one load at a time (poller and admin endpoint)
            try:
                manifest = await anyio.to_thread.run_sync(read_manifest, self.manifest_uri)
            except BundleError as error:
                if self.bundle is None:
                    log.warning("no serving version yet: %s", error)
                    return "missing"
                log.error("manifest unreadable, keeping %s: %s", self.bundle.version, error)
                self.metrics.reloads.labels("rejected").inc()
                return "rejected"
            version = str(manifest["version"])
            if self.bundle is not None and version == self.bundle.version:
                return "current"
            if version == self.rejected:
                return "rejected"
            try:
                bundle = await anyio.to_thread.run_sync(load_bundle, self.manifest_uri)
            except BundleError as error:
                self.rejected = version
                self.metrics.reloads.labels("rejected").inc()
                kept = self.bundle.version if self.bundle else "nothing"
                log.error("rejected serving version %s (still serving %s): %s", version, kept, error)
                return "rejected"
            self.bundle = bundle
            self.rejected = None
            self.metrics.set_version(bundle.version)
            self.metrics.reloads.labels("loaded").inc()
            log.info("serving version %s (%d items, %s index)", bundle.version, len(bundle.item_ids),
                     bundle.manifest.get("index", {}).get("kind"))  # fmt: skip
            return "loaded"

    async def watch(self, interval_s: float) -> None:
        while True:
            await asyncio.sleep(interval_s)
            await self.refresh()
