"""What the domains' bodies share: ids and list sizes."""

from __future__ import annotations

from typing import Annotated

from msgspec import Meta

#: Ids: 1-128 printable characters without spaces or slashes (Amazon ids, MovieLens numbers).
Id = Annotated[str, Meta(min_length=1, max_length=128, pattern=r"^[A-Za-z0-9_.:@\-]+$")]
MAX_ITEMS_IN_REQUEST = 200
K = Annotated[int, Meta(ge=1, le=100)]
