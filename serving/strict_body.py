"""Request bodies decoded strictly, straight into their schema type.

Litestar decodes a JSON body into Python objects first and converts them to the handler's
type with coercion on. That accepted ``"k": "5"`` as a number, parsed ``text/plain`` bodies as
JSON (so any web page could POST feedback cross-site as a CORS "simple" request), and answered
invalid UTF-8 and JSON nested 20,000 deep with a 500. Here the body must be
``application/json`` (else 415) and is decoded by msgspec into the handler's ``data`` type in
one strict pass (else 400 naming the problem): a typed decode stops at the first value of the
wrong type, so nesting never recurses further than the schema does.
"""

from __future__ import annotations

from typing import Any

import msgspec
from litestar import Request
from litestar.exceptions import ClientException, HTTPException
from litestar.status_codes import HTTP_415_UNSUPPORTED_MEDIA_TYPE
from litestar.utils.empty import value_or_default

JSON = "application/json"


class StrictJSONRequest(Request[Any, Any, Any]):
    async def json(self) -> Any:
        cached = value_or_default(self._connection_state.json, None)
        if cached is not None:
            return cached
        media_type = self.content_type[0]
        if media_type != JSON:
            raise HTTPException(
                status_code=HTTP_415_UNSUPPORTED_MEDIA_TYPE,
                detail=f"request bodies must be {JSON}, got {media_type or 'no Content-Type'!r}",
            )
        field = self.route_handler.parsed_data_field
        target = field.annotation if field is not None else Any
        try:
            value = msgspec.json.decode(await self.body(), type=target, strict=True)
        except (msgspec.DecodeError, msgspec.ValidationError, UnicodeDecodeError, RecursionError) as error:
            raise ClientException(detail=f"invalid request body: {error}") from error
        self._connection_state.json = value
        return value
