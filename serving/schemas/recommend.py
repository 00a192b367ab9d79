"""Recommendations: what to ask for, and the ranked items that come back."""

from __future__ import annotations

from typing import Annotated

import msgspec
from msgspec import Meta

from serving.recommender import Strategy
from serving.schemas.common import MAX_ITEMS_IN_REQUEST, Id, K


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


class ScoredItem(msgspec.Struct, omit_defaults=True):
    item_id: str
    score: float
    title: str
    #: A two-stage version: the retrievers that proposed the item (empty: a popular fill-in);
    #: left out by single-stage versions.
    sources: list[str] | None = None


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
