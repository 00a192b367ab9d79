"""The recommendation API: ``create_app()`` builds a Litestar app over the published serving
version, watching its manifest for new ones, logging every request to the warehouse.

    uvicorn --factory serving.app:create_app

Routes live in ``serving/controllers/`` by domain, their bodies in ``serving/schemas/``; every
handler gets the app's ``Services`` (``serving/services.py``) by dependency injection.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

from litestar import Litestar
from litestar.datastructures import State
from litestar.di import Provide
from litestar.static_files import create_static_files_router

from recsys_assets.settings import Settings, load_settings
from serving.controllers.admin import AdminController
from serving.controllers.explorer import STATIC, explorer_router
from serving.controllers.feedback import FeedbackController
from serving.controllers.recommend import RecommendController
from serving.middleware import metrics_middleware
from serving.openapi import openapi_config
from serving.request_log import Sink
from serving.services import Services, make_sink, provide_services
from serving.strict_body import StrictJSONRequest

log = logging.getLogger("serving")
#: Request bodies are small JSON documents; anything larger is refused with 413.
MAX_BODY_BYTES = 64 * 1024


def create_app(settings: Settings | None = None, sink: Sink | None = None) -> Litestar:
    """The API over ``settings`` (default: this process's ``RECSYS_*`` variables); ``sink``
    overrides the warehouse the settings name (tests pass one pointed at an emulator)."""
    settings = settings or load_settings()
    serving = settings.serving
    services = Services.of(settings, sink if sink is not None else make_sink(settings))

    @asynccontextmanager
    async def lifespan(app: Litestar) -> AsyncIterator[None]:
        index, request_log = services.index, services.request_log
        await index.refresh()
        watchers = [asyncio.create_task(index.watch(serving.reload_interval_s))]
        if serving.verify_interval_s:
            watchers.append(asyncio.create_task(index.watch_files(serving.verify_interval_s)))
        request_log.start()
        try:
            yield
        finally:
            for watcher in watchers:
                watcher.cancel()
            await services.shadows.close()
            services.metrics.process_exited()
            if not await request_log.close():
                log.error("shutting down with %s log rows unwritten",
                          {k: len(v) for k, v in request_log.buffers.items()})  # fmt: skip

    return Litestar(
        route_handlers=[
            RecommendController,
            FeedbackController,
            AdminController,
            create_static_files_router(
                path="/static/vendor", directories=[STATIC / "vendor"], include_in_schema=False
            ),
            *([explorer_router()] if serving.explorer else []),
        ],
        dependencies={"services": Provide(provide_services, sync_to_thread=False)},
        state=State({"services": services}),
        lifespan=[lifespan],
        middleware=[metrics_middleware],
        request_max_body_size=MAX_BODY_BYTES,
        request_class=StrictJSONRequest,
        openapi_config=openapi_config(),
    )
