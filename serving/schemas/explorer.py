"""The explorer's bodies: users to pick, a user's history, items as cards."""

from __future__ import annotations

import msgspec


class ItemCard(msgspec.Struct):
    item_id: str
    title: str
    category: str
    #: An address the page can load (``/explorer/images/<id>`` for local and gs:// images), or None.
    image: str | None
    #: Train interactions (how popular the item is).
    interactions: int


class UserSummary(msgspec.Struct):
    user_id: str
    history: int


class UsersResponse(msgspec.Struct):
    model_version: str
    users: list[UserSummary]
    #: Users the version knows in all.
    total: int


class UserView(msgspec.Struct, kw_only=True):
    model_version: str
    user_id: str
    #: Whether the version knows the user (an unknown one gets the cold-start strategy).
    known: bool
    experiment: str | None
    arm: str
    #: The user's train interactions, the model's input for them (at most ``limit``)...
    history: list[ItemCard]
    #: ...of this many.
    history_total: int


class CardsResponse(msgspec.Struct):
    model_version: str
    items: list[ItemCard]
    unknown_items: list[str]


class Contribution(msgspec.Struct):
    feature: str
    #: How much it raised the item's score (its SHAP value in the ranker's score).
    contribution: float
    description: str


class ItemWhy(msgspec.Struct):
    item_id: str
    #: The retrievers that proposed it (empty: not among the user's candidates).
    sources: list[str]
    #: The features that raised its score most.
    features: list[Contribution]


class WhyResponse(msgspec.Struct):
    model_version: str
    #: The served model, and what the explanations are of: ``two stages`` (candidates and a
    #: ranker) or ``single stage`` (the model's own scores: nothing more to say).
    model: str
    stages: str
    items: list[ItemWhy]
    unknown_items: list[str]
