"""Request and response bodies (msgspec): validated on the way in, unknown fields refused."""

from __future__ import annotations

from typing import Annotated, Literal

import msgspec
from msgspec import Meta

from serving.recommender import Strategy

#: Ids: 1-128 printable characters without spaces or slashes (Amazon ids, MovieLens numbers).
Id = Annotated[str, Meta(min_length=1, max_length=128, pattern=r"^[A-Za-z0-9_.:@\-]+$")]
MAX_ITEMS_IN_REQUEST = 200
K = Annotated[int, Meta(ge=1, le=100)]


class RecommendRequest(msgspec.Struct, forbid_unknown_fields=True):
    user_id: Id
    k: K = 20
    #: Items the user just interacted with: never recommended back; for an unknown user,
    #: the basis of their recommendations.
    recent_items: Annotated[list[Id], Meta(max_length=MAX_ITEMS_IN_REQUEST)] = msgspec.field(
        default_factory=list
    )
    exclude_items: Annotated[list[Id], Meta(max_length=MAX_ITEMS_IN_REQUEST)] = msgspec.field(
        default_factory=list
    )


class ScoredItem(msgspec.Struct):
    item_id: str
    score: float
    title: str


class RecommendResponse(msgspec.Struct, kw_only=True):
    request_id: str
    user_id: str
    strategy: Strategy
    #: The version that ranked the items (interleaving: the control's).
    model_version: str
    items: list[ScoredItem]
    #: Ids in recent_items / exclude_items the serving version does not know.
    unknown_items: list[str]
    #: The experiment running (None: none), and the user's arm in it (``control`` outside
    #: experiments; ``interleaved`` when both arms' items are merged).
    experiment: str | None = None
    arm: str = "control"


class ItemsResponse(msgspec.Struct):
    model_version: str
    items: list[ScoredItem]


class FeedbackRequest(msgspec.Struct, forbid_unknown_fields=True):
    request_id: Annotated[str, Meta(min_length=1, max_length=64)]
    user_id: Id
    item_id: Id
    event: Literal["impression", "click", "purchase"]


class Accepted(msgspec.Struct):
    status: str


class Health(msgspec.Struct):
    status: str
    model_version: str | None = None
