"""The API's documentation, served by the API itself and asking nothing of other hosts."""

from __future__ import annotations

from typing import Any

from litestar import Request
from litestar.openapi import OpenAPIConfig
from litestar.openapi.plugins import JsonRenderPlugin, RedocRenderPlugin

#: No favicon request at all (Litestar's default links one on a CDN).
NO_FAVICON = "<link rel='icon' href='data:,'>"


class OfflineRedoc(RedocRenderPlugin):
    """Redoc that asks nothing of other hosts: its bundle shows a logo from Redocly's CDN, which a
    Content-Security-Policy limited to this API (and inline data) keeps the browser from fetching."""

    CSP = "<meta http-equiv='Content-Security-Policy' content=\"img-src 'self' data:\">"

    def render(self, request: Request[Any, Any, Any], openapi_schema: dict[str, Any]) -> bytes:
        return super().render(request, openapi_schema).replace(b"<head>", b"<head>" + self.CSP.encode(), 1)


def openapi_config() -> OpenAPIConfig:
    return OpenAPIConfig(
        title="recsys recommendations",
        version="1.0.0",
        # Redoc from this package (serving/static/vendor/redoc, 2.5.4): the CDN's copy, and the
        # fonts and favicon Litestar links by default, do not load without internet.
        render_plugins=[
            OfflineRedoc(
                js_url="/static/vendor/redoc/redoc.standalone.js",
                google_fonts=False,
                favicon=NO_FAVICON,
                path="/",
            ),
            JsonRenderPlugin(),
        ],
    )
