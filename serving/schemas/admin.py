"""Health, readiness and the admin reload."""

from __future__ import annotations

import msgspec


class Health(msgspec.Struct):
    status: str
    model_version: str | None = None
