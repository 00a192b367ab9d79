"""The API's fixtures: asyncio, and a client over one published version."""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path

import pytest
from litestar.testing import AsyncTestClient

from recsys_assets_tests.serving.versions import (
    publish_version,
    settings,
)
from serving.app import create_app


@pytest.fixture
def anyio_backend() -> str:
    return "asyncio"


@pytest.fixture
async def client(tmp_path: Path) -> AsyncIterator[AsyncTestClient]:
    publish_version(tmp_path, "v1")
    async with AsyncTestClient(app=create_app(settings(tmp_path))) as test_client:
        yield test_client
