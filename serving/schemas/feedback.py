"""Feedback: what a user did with a served item."""

from __future__ import annotations

from typing import Annotated, Literal

import msgspec
from msgspec import Meta

from serving.schemas.common import Id


class FeedbackRequest(msgspec.Struct, forbid_unknown_fields=True):
    request_id: Annotated[str, Meta(min_length=1, max_length=64)]
    user_id: Id
    item_id: Id
    event: Literal["impression", "click", "purchase"]


class Accepted(msgspec.Struct):
    status: str
