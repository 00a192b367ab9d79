"""Every routed request counted by route template and status, and timed."""

from __future__ import annotations

import time
from typing import Any, cast

from litestar.types import ASGIApp, HTTPScope, Message, Receive, Scope, Send


def metrics_middleware(app: ASGIApp) -> ASGIApp:
    """Counts every routed request by route template and status, and times it."""
    # The labelled children, looked up once per (route, method, status): prometheus_client's
    # ``labels`` validates and locks on every call, a few microseconds twice a request.
    counters: dict[tuple[str, str, int], Any] = {}
    timers: dict[str, Any] = {}

    async def middleware(scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await app(scope, receive, send)
            return
        start = time.perf_counter()
        status = [500]
        counted = [False]

        def count() -> None:
            counted[0] = True
            route = scope.get("path_template", "unmatched")
            key = (route, cast("HTTPScope", scope)["method"], status[0])
            counter, timer = counters.get(key), timers.get(route)
            if counter is None or timer is None:
                metrics = scope["litestar_app"].state.services.metrics
                counter = counters[key] = metrics.requests.labels(route, key[1], str(key[2]))
                timer = timers[route] = metrics.latency.labels(route)
            counter.inc()
            timer.observe(time.perf_counter() - start)

        async def send_wrapper(message: Message) -> None:
            if message["type"] == "http.response.start":
                status[0] = message["status"]
            elif message["type"] == "http.response.body" and not message.get("more_body", False):
                # Counted before the last byte leaves: a client that has its answer finds it
                # counted in /metrics (after the send, a scrape could race the worker).
                count()
            await send(message)

        try:
            await app(scope, receive, send_wrapper)
        finally:
            if not counted[0]:  # no complete response (an error, a client gone)
                count()

    return middleware
