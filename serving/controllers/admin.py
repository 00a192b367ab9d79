"""Operations: liveness, readiness, Prometheus metrics and the admin reload."""

from __future__ import annotations

import hmac
from typing import Any

from litestar import Controller, Request, Response, get, post
from litestar.exceptions import NotAuthorizedException, NotFoundException
from litestar.status_codes import HTTP_503_SERVICE_UNAVAILABLE

from serving.schemas.admin import Health
from serving.services import AppServices


class AdminController(Controller):
    tags = ("admin",)

    @get("/healthz")
    async def healthz(self) -> Health:
        """The process is alive."""
        return Health("ok")

    @get("/readyz")
    async def readyz(self, services: AppServices) -> Response[Health]:
        """200 once a serving version is loaded, else 503."""
        bundle = services.index.bundle
        if bundle is None:
            return Response(Health("no serving version loaded"), status_code=HTTP_503_SERVICE_UNAVAILABLE)
        return Response(Health("ready", bundle.version))

    @get("/metrics", media_type="text/plain; version=0.0.4", include_in_schema=False)
    async def metrics(self, services: AppServices) -> bytes:
        """Prometheus metrics."""
        return bytes(services.metrics.render())

    @post("/admin/reload", status_code=200)
    async def admin_reload(self, request: Request[Any, Any, Any], services: AppServices) -> Health:
        """Check the manifest now (requires the admin API key in ``X-API-Key``)."""
        key = services.settings.serving.admin_api_key.get_secret_value()
        if not key:
            raise NotFoundException(detail="the admin API is disabled (set RECSYS_ADMIN_API_KEY)")
        # Constant time, over bytes: a str compare_digest raises on non-ASCII header values.
        given = request.headers.get("x-api-key", "").encode("utf-8", "surrogateescape")
        if not hmac.compare_digest(given, key.encode()):
            raise NotAuthorizedException(detail="a valid X-API-Key header is required")
        outcome = await services.index.refresh()
        bundle = services.index.bundle
        return Health(outcome, bundle.version if bundle else None)
