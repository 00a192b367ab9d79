"""The published state in use (the control version and, during an experiment, its other
versions), and the watchers that swap in each newly published one and re-verify the files of
those in use.

Loading reads and verifies every file off the event loop; the swap is one reference
assignment, so a request sees the old state or the new one, never a mix. A manifest, an
experiment or a version that fails verification is logged, counted and remembered (not
retried until the manifest changes), and the old state keeps serving; nothing a manifest
holds can stop the watcher, which logs and counts what it did not expect and checks again at
its next turn. Versions are immutable once published, so one already loaded is reused.

After each swap the loaded objects are frozen out of Python's cyclic garbage collector
(``gc.freeze``): a version's id lookups and titles (a 498k-entry dict and lists at the
reference scale) made every full collection walk them, about 60 ms with the event loop
stopped, which was most of the API's p99 under load. The previous freeze is undone first, and
one collection run, so a replaced version's cycles are still reclaimed.
"""

from __future__ import annotations

import asyncio
import gc
import json
import logging
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from typing import Any

import anyio.to_thread
from litestar.exceptions import HTTPException
from litestar.status_codes import HTTP_503_SERVICE_UNAVAILABLE

from recsys_assets.core.experiments.assignment import CONTROL, INTERLEAVED, Experiment, ExperimentError
from recsys_assets.core.serving.bundle import (
    Bundle,
    BundleError,
    ManifestMissingError,
    load_bundle,
    read_manifest,
    verify_files,
    version_manifest_uri,
)
from serving.metrics import Metrics

log = logging.getLogger("serving.index")


@dataclass(frozen=True)
class Published:
    """The followed manifest, loaded: who is served by which version."""

    #: The manifest's version and experiment, as compared between checks.
    key: str
    control: Bundle
    experiment: Experiment | None = None
    #: Every loaded version by name, the control's included.
    bundles: dict[str, Bundle] = field(default_factory=dict)

    def assign(self, user_id: str) -> tuple[str, Bundle]:
        """The user's arm and the version serving it: the control outside experiments; when
        interleaving, ``interleaved`` and the control (which names the merged list)."""
        if self.experiment is None:
            return CONTROL, self.control
        if self.experiment.mode == "interleave":
            return INTERLEAVED, self.control
        arm = self.experiment.assign(user_id)
        return arm.name, self.bundles[arm.version]

    def arm_of(self, user_id: str) -> str:
        return self.assign(user_id)[0]

    @property
    def shadow(self) -> Bundle | None:
        shadow = self.experiment.shadow if self.experiment else None
        return self.bundles[shadow] if shadow else None


class NotReady(HTTPException):
    status_code = HTTP_503_SERVICE_UNAVAILABLE


def _key(manifest: dict[str, Any]) -> str:
    return json.dumps([str(manifest["version"]), manifest.get("experiment")], sort_keys=True)


class IndexState:
    def __init__(self, manifest_uri: str, metrics: Metrics):
        self.manifest_uri = manifest_uri
        self.metrics = metrics
        self.published: Published | None = None
        #: What was last rejected (a manifest's problem, or its key): not retried.
        self.rejected: str | None = None
        #: Whether the served versions' files matched their checksums when last verified.
        self.intact = True
        self._lock = asyncio.Lock()

    @property
    def bundle(self) -> Bundle | None:
        """The control version (what serves outside experiments)."""
        return self.published.control if self.published else None

    def current(self) -> Published:
        """What serves now; 503 before a version is loaded."""
        if self.published is None:
            raise NotReady(detail="no serving version loaded yet")
        return self.published

    def control(self) -> Bundle:
        """The control version (what serves outside experiments); 503 before one is loaded."""
        return self.current().control

    def _reject(self, key: str, message: str, *args: object) -> str:
        """Log and count a rejection once per distinct manifest problem or version."""
        if key != self.rejected:
            self.rejected = key
            self.metrics.reloads.labels("rejected").inc()
            kept = self.bundle.version if self.bundle else "nothing"
            log.error(message + " (serving %s)", *args, kept)
        return "rejected"

    async def _manifest(self) -> dict[str, Any] | str:
        """The manifest, or what happened instead (``missing``, ``rejected``)."""
        try:
            return await anyio.to_thread.run_sync(read_manifest, self.manifest_uri)
        except ManifestMissingError as error:
            if self.bundle is None:
                if self.rejected != "missing":  # once, not at every check until the first publish
                    self.rejected = "missing"
                    log.warning("no serving version yet: %s", error)
                return "missing"
            return self._reject(str(error), "manifest gone: %s", error)
        except BundleError as error:
            return self._reject(str(error), "manifest rejected: %s", error)

    async def refresh(self) -> str:
        """Load the manifest's state if it is new; return what happened."""
        async with self._lock:  # one load at a time (poller and admin endpoint)
            manifest = await self._manifest()
            if isinstance(manifest, str):
                return manifest
            key = _key(manifest)
            if self.published is not None and key == self.published.key:
                self.rejected = None
                return "current"
            if key == self.rejected:
                return "rejected"
            try:
                published = await anyio.to_thread.run_sync(self._load, manifest, key)
            except (BundleError, ExperimentError) as error:
                return self._reject(key, "rejected serving version %s: %s", manifest["version"], error)
            self.published, self.rejected, self.intact = published, None, True
            _freeze_loaded()
            self.metrics.set_version(published.control.version)
            self.metrics.files_intact.set(1)
            self.metrics.reloads.labels("loaded").inc()
            control = published.control
            index = control.manifest.get("index", {}).get("kind")
            log.info("serving version %s (%d items, %s index)%s", control.version, len(control.item_ids),
                     index, _describe(published.experiment))  # fmt: skip
            return "loaded"

    def _load(self, manifest: dict[str, Any], key: str) -> Published:
        """Every version the manifest names, loaded (or reused) and verified."""
        experiment = (
            Experiment.from_dict(manifest["experiment"], self.manifest_uri)
            if "experiment" in manifest
            else None
        )
        loaded = self.published.bundles if self.published else {}
        control = str(manifest["version"])
        if experiment is not None and experiment.control.version != control:
            raise BundleError(
                f"{self.manifest_uri}: experiment {experiment.name} controls with "
                f"{experiment.control.version}, the manifest serves {control}"
            )
        bundles = {control: loaded[control] if control in loaded else load_bundle(self.manifest_uri)}
        for version in sorted(experiment.versions() - {control}) if experiment else []:
            bundles[version] = loaded.get(version) or load_bundle(
                version_manifest_uri(self.manifest_uri, version)
            )
        return Published(key, bundles[control], experiment, bundles)

    async def verify(self) -> bool:
        """Re-read the files of the versions in use against their checksums; a failure is
        counted each time and logged once (the verified copies in memory keep serving)."""
        published = self.published
        if published is None:
            return True
        try:
            for bundle in published.bundles.values():
                uri = (
                    self.manifest_uri
                    if bundle is published.control
                    else version_manifest_uri(self.manifest_uri, bundle.version)
                )
                await anyio.to_thread.run_sync(verify_files, bundle.manifest, uri)
        except BundleError as error:
            self.metrics.integrity_failures.inc()
            self.metrics.files_intact.set(0)
            if self.intact:
                log.error("a served file changed on disk: %s; serving the copies verified at load", error)
            self.intact = False
            return False
        if not self.intact:
            log.info("the served files verify again")
        self.intact = True
        self.metrics.files_intact.set(1)
        return True

    async def watch(self, interval_s: float) -> None:
        """Check the manifest every ``interval_s``, whatever the last check met."""
        await self._forever(self.refresh, interval_s, "manifest")

    async def watch_files(self, interval_s: float) -> None:
        """Re-verify the served version's files every ``interval_s``."""
        await self._forever(self.verify, interval_s, "files")

    async def _forever(self, check: Callable[[], Awaitable[object]], interval_s: float, what: str) -> None:
        while True:
            await asyncio.sleep(interval_s)
            try:
                await check()
            except Exception:  # unexpected: logged with its traceback, counted, checked again
                log.exception("checking the serving %s failed; again in %.0f s", what, interval_s)
                self.metrics.watcher_errors.labels(what).inc()


def _describe(experiment: Experiment | None) -> str:
    if experiment is None:
        return ""
    arms = ", ".join(f"{a.name} {a.version} {a.share:.0%}" for a in experiment.arms)
    shadow = f", shadow {experiment.shadow}" if experiment.shadow else ""
    return f"; experiment {experiment.name} ({experiment.mode}: {arms}{shadow})"


def _freeze_loaded() -> None:
    """Keep the collector off what is loaded now (see the module docstring)."""
    gc.unfreeze()
    gc.collect()
    gc.freeze()
