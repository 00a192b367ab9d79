"""The recommendations explorer: a page at ``/explorer`` for people looking at the model, and
the few JSON endpoints it needs beyond the API's own.

The page (``serving/static/explorer/``, plain HTML, CSS and JavaScript, nothing from a CDN)
asks the real endpoints for what it shows (``POST /recommend``, ``GET /items/{id}/similar``), so
it shows exactly what a client gets, strategy, version and arm included. What clients have no
endpoint for comes from here: users to pick from, a user's history, and items as cards (display
name, most specific category, image). Images the catalogue names as local files or ``gs://``
objects are served through ``/explorer/images/{item_id}`` (only the image the version names for
that item, so no other file can be read); ``http(s)`` images load from their own address.

A user's history is personal data: ``RECSYS_EXPLORER=false`` leaves all of this out (the gcp
deployment's public API does).
"""

from __future__ import annotations

import mimetypes
from pathlib import Path
from typing import Annotated

import anyio.to_thread
import numpy as np
from litestar import Controller, Response, Router, get
from litestar.exceptions import NotFoundException
from litestar.params import FromPath, QueryParameter
from litestar.response import File
from litestar.static_files import create_static_files_router

from recsys_assets.core.io.storage import read_bytes
from recsys_assets.core.serving.bundle import Bundle
from serving.schemas.common import MAX_ITEMS_IN_REQUEST
from serving.schemas.explorer import (
    CardsResponse,
    Contribution,
    ItemCard,
    ItemWhy,
    UsersResponse,
    UserSummary,
    UserView,
    WhyResponse,
)
from serving.services import AppServices

STATIC = Path(__file__).parent.parent / "static"
#: Users listed when nothing is typed, and at most when something is.
USERS_LISTED = 20


def _served_here(url: str | None) -> bool:
    """Whether the API serves an item's image (a local file or a gs:// object; a browser loads
    an http(s) one from its own address)."""
    return url is not None and not url.startswith(("http://", "https://"))


def card(bundle: Bundle, row: int) -> ItemCard:
    item_id, url = bundle.item_ids[row], bundle.images[row]
    image = f"/explorer/images/{item_id}" if _served_here(url) else url
    return ItemCard(item_id, bundle.titles[row], bundle.categories[row], image, int(bundle.popularity[row]))


def _matching_users(bundle: Bundle, lengths: np.ndarray, query: str, limit: int) -> list[int]:
    """Users whose id starts with ``query`` (then contains it); with no query, the users with
    the longest histories (``lengths``; ties by node order), so the first look is at someone the
    model knows well."""
    if not query:
        return np.argsort(-lengths, kind="stable")[:limit].tolist()
    exact = bundle.user_index.get(query)
    found = [] if exact is None else [exact]
    for needle in (str.startswith, str.__contains__):
        for row, user_id in enumerate(bundle.user_ids):
            if len(found) >= limit:
                return found
            if row not in found and needle(user_id, query):
                found.append(row)
    return found


@get("/explorer", include_in_schema=False)
async def explorer_page() -> File:
    """The explorer's page."""
    return File(STATIC / "explorer" / "index.html", content_disposition_type="inline", media_type="text/html")


class ExplorerController(Controller):
    """The JSON the page needs beyond the API's own endpoints."""

    path = "/explorer"
    tags = ("explorer",)

    @get("/users")
    async def users(
        self,
        services: AppServices,
        q: Annotated[str, QueryParameter(max_length=128, description="Part of a user id.")] = "",
        limit: Annotated[int, QueryParameter(ge=1, le=100)] = USERS_LISTED,
    ) -> UsersResponse:
        """Users to pick: those whose id starts with (then contains) ``q``; without it, the users
        with the longest histories."""
        bundle = services.index.control()
        lengths = np.diff(bundle.history_indptr)
        # A pass over every user id (192k at the reference scale): off the event loop.
        rows = await anyio.to_thread.run_sync(_matching_users, bundle, lengths, q, limit)
        users = [UserSummary(bundle.user_ids[u], int(lengths[u])) for u in rows]
        return UsersResponse(bundle.version, users, len(bundle.user_ids))

    @get("/users/{user_id:str}")
    async def user(
        self,
        user_id: FromPath[str],
        services: AppServices,
        limit: Annotated[int, QueryParameter(ge=1, le=500)] = 100,
    ) -> UserView:
        """A user's history in the version that serves them (none for a user it does not know), and
        their arm."""
        published = services.index.current()
        arm, bundle = published.assign(user_id)
        row = bundle.user_index.get(user_id)
        history = bundle.history(row) if row is not None else np.zeros(0, np.int32)
        return UserView(
            model_version=bundle.version, user_id=user_id, known=row is not None,
            experiment=published.experiment.name if published.experiment else None, arm=arm,
            history=[card(bundle, int(i)) for i in history[:limit]], history_total=len(history),
        )  # fmt: skip

    @get("/users/{user_id:str}/why")
    async def why(
        self,
        user_id: FromPath[str],
        services: AppServices,
        ids: Annotated[list[str], QueryParameter(max_items=MAX_ITEMS_IN_REQUEST, description="Item ids.")],
    ) -> WhyResponse:
        """Why items were recommended to a user: with a two-stage version, the retrievers that
        proposed each and the features that raised its score most."""
        published = services.index.current()
        _, bundle = published.assign(user_id)
        rows = [bundle.item_index.get(i) for i in ids]
        unknown = [i for i, row in zip(ids, rows, strict=True) if row is None]
        model = str(bundle.manifest.get("model", {}).get("name", "unknown"))
        user = bundle.user_index.get(user_id)
        if bundle.ranker is None or user is None:
            items = [ItemWhy(bundle.item_ids[r], [], []) for r in rows if r is not None]
            stages = "single stage" if bundle.ranker is None else "fallback (a user the ranker does not know)"
            return WhyResponse(bundle.version, model, stages, items, unknown)
        explained = await anyio.to_thread.run_sync(_explain, bundle, user, [r for r in rows if r is not None])
        return WhyResponse(bundle.version, model, "two stages", explained, unknown)

    @get("/items")
    async def items(
        self,
        services: AppServices,
        ids: Annotated[list[str], QueryParameter(max_items=MAX_ITEMS_IN_REQUEST, description="Item ids.")],
    ) -> CardsResponse:
        """Items as cards (display name, category, image, interactions) in the control version."""
        bundle = services.index.control()
        rows = [bundle.item_index.get(i) for i in ids]
        unknown = [i for i, row in zip(ids, rows, strict=True) if row is None]
        return CardsResponse(bundle.version, [card(bundle, r) for r in rows if r is not None], unknown)

    @get("/images/{item_id:str}")
    async def image(self, item_id: FromPath[str], services: AppServices) -> Response[bytes]:
        """The image the catalogue names for an item, when it is a local file or a gs:// object."""
        bundle = services.index.control()
        row = bundle.item_index.get(item_id)
        url = bundle.images[row] if row is not None else None
        if url is None or not _served_here(url):
            raise NotFoundException(
                detail=f"item {item_id!r} has no image served here in version {bundle.version}"
            )
        try:
            data = await anyio.to_thread.run_sync(read_bytes, url)
        except (OSError, ValueError) as error:
            raise NotFoundException(
                detail=f"item {item_id!r}: its image {url} cannot be read: {error}"
            ) from error
        media_type = mimetypes.guess_type(url)[0] or "application/octet-stream"
        return Response(data, media_type=media_type, headers={"Cache-Control": "max-age=3600"})


def _explain(bundle: Bundle, user: int, rows: list[int]) -> list[ItemWhy]:
    """The user's ranking, and each asked item's sources and top contributions in it."""
    assert bundle.ranker is not None
    ranked = bundle.ranker.rank(user)
    place = {int(item): k for k, item in enumerate(ranked.items)}
    found = [place[r] for r in rows if r in place]
    reasons = dict(zip(found, bundle.ranker.explain(ranked.x[found]), strict=True))
    described = bundle.ranker.space.descriptions()
    out = []
    for row in rows:
        k = place.get(row)
        if k is None:  # not among the user's candidates
            out.append(ItemWhy(bundle.item_ids[row], [], []))
            continue
        features = [Contribution(name, value, described.get(name, "")) for name, value in reasons[k]]
        out.append(ItemWhy(bundle.item_ids[row], ranked.sources([k])[0], features))
    return out


def explorer_router() -> Router:
    """The page, its static files and its endpoints."""
    return Router(
        path="/",
        route_handlers=[
            explorer_page, ExplorerController,
            create_static_files_router(
                path="/explorer/static", directories=[STATIC / "explorer"], include_in_schema=False
            ),
        ],
    )  # fmt: skip
