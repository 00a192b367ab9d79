"""Shadow scoring off the response path: a request's ranking by the shadow version runs as a
task after the response is on its way, at most ``in_flight`` at once per process (beyond that,
shadow scoring is skipped and counted, so a slow shadow never queues up behind live traffic);
a failure is logged and counted, never seen by the caller.

Only a ``share`` of the requests is shadowed, chosen by request id (random, so the sample is
uniform). Each shadow ranking is a second search, and the searches dominate a request's CPU:
shadowing every request of a saturated server halves what it serves and doubles its tail
latency, while a quarter of the traffic is a large sample at any rate worth shadowing."""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Coroutine
from typing import Any

from serving.metrics import Metrics

log = logging.getLogger("serving.shadow")


class ShadowRunner:
    def __init__(self, in_flight: int, metrics: Metrics, share: float = 1.0):
        self.in_flight, self.metrics = in_flight, metrics
        #: Requests with an id below this (its first 8 hex digits as a number) are shadowed.
        self.cutoff = int(share * 16**8)
        self.tasks: set[asyncio.Task[None]] = set()

    def sampled(self, request_id: str) -> bool:
        """Whether the request (a random hex id) is in the shadowed share."""
        return int(request_id[:8], 16) < self.cutoff

    def submit(self, work: Coroutine[Any, Any, None]) -> bool:
        """Run ``work`` in the background; False (and counted) when too many already run."""
        if len(self.tasks) >= self.in_flight:
            work.close()
            self.metrics.shadow.labels("skipped").inc()
            return False
        task = asyncio.create_task(work)
        self.tasks.add(task)
        task.add_done_callback(self._done)
        return True

    def _done(self, task: asyncio.Task[None]) -> None:
        self.tasks.discard(task)
        if task.cancelled():
            return
        error = task.exception()
        if error is not None:
            log.error("shadow scoring failed: %r", error, exc_info=error)
            self.metrics.shadow.labels("failed").inc()
        else:
            self.metrics.shadow.labels("scored").inc()

    async def close(self) -> None:
        """Let the shadow scoring in flight finish (it logs rows the shutdown flush writes)."""
        with contextlib.suppress(Exception):
            await asyncio.gather(*self.tasks, return_exceptions=True)
