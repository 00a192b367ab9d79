"""Recommendations: a user's top k (with experiments' arms, interleaving and shadows), items
similar to an item, and the popular items."""

from __future__ import annotations

import asyncio
import time
from datetime import UTC, datetime
from typing import Annotated, Any

from litestar import Controller, get, post
from litestar.exceptions import NotFoundException
from litestar.params import FromPath, JSONBody, QueryParameter

from recsys_assets.core.experiments.assignment import INTERLEAVED, SHADOW, team_draft
from recsys_assets.core.serving.bundle import Bundle
from serving import recommender
from serving.index_state import Published
from serving.schemas.recommend import ItemsResponse, RecommendRequest, RecommendResponse, ScoredItem
from serving.services import AppServices

KQuery = Annotated[int, QueryParameter(ge=1, le=100, description="How many items (1-100).")]


class RecommendController(Controller):
    tags = ("recommendations",)

    @post("/recommend", status_code=200)
    async def recommend(self, data: JSONBody[RecommendRequest], services: AppServices) -> RecommendResponse:
        """Top-k items for a user: their own vector, else the mean of their recent items, else popularity."""
        start = time.perf_counter()
        published = services.index.current()
        arm, bundle = published.assign(data.user_id)
        experiment = published.experiment
        request_id = services.request_ids.issue(data.user_id)
        teams: list[str] = []
        if arm == INTERLEAVED:
            ranked, items, teams = await _interleaved(services, published, data, request_id)
        else:
            ranked, items = await _recommend(services, bundle, data)
        services.metrics.strategies.labels(ranked.strategy).inc()
        name = experiment.name if experiment else None
        services.request_log.append("recommendation_requests", _request_row(
            request_id, data, ranked.strategy, bundle.version, items, start, name, arm, teams
        ))  # fmt: skip
        if published.shadow is not None and services.shadows.sampled(request_id):
            services.shadows.submit(_shadow(services, published.shadow, data, request_id, name))
        return RecommendResponse(
            request_id=request_id, user_id=data.user_id, strategy=ranked.strategy,
            model_version=bundle.version, items=items, unknown_items=ranked.unknown_items,
            experiment=name, arm=arm,
        )  # fmt: skip

    @get("/items/{item_id:str}/similar")
    async def similar_items(
        self, item_id: FromPath[str], services: AppServices, k: KQuery = 20
    ) -> ItemsResponse:
        """Items nearest to one item in the model's space (404 for an item the version does not know)."""
        bundle = services.index.control()
        row = bundle.item_index.get(item_id)
        if row is None:
            raise NotFoundException(detail=f"item {item_id!r} is not in serving version {bundle.version}")
        ranked = await _rank(services, bundle, recommender.similar_plan(bundle, row, k))
        return ItemsResponse(bundle.version, _scored(bundle, ranked.items, ranked.scores))

    @get("/popular")
    async def popular_items(self, services: AppServices, k: KQuery = 20) -> ItemsResponse:
        """The most reviewed items in the model's training data (score = train interactions)."""
        bundle = services.index.control()
        items, scores = recommender.popular(bundle, k, set())
        return ItemsResponse(bundle.version, _scored(bundle, items, scores))


def _scored(
    bundle: Bundle, items: list[int], scores: list[float], sources: list[list[str]] | None = None
) -> list[ScoredItem]:
    found = sources if sources is not None else [None] * len(items)  # None: left out (single stage)
    return [
        ScoredItem(bundle.item_ids[i], s, bundle.titles[i], f)
        for i, s, f in zip(items, scores, found, strict=True)
    ]


async def _rank(services: AppServices, bundle: Bundle, planned: recommender.Plan) -> recommender.Ranked:
    """``recommender.ranking`` with its searches batched off the event loop."""
    steps = recommender.ranking(bundle, planned)
    try:
        query, n = next(steps)
        while True:
            query, n = steps.send(await services.batcher.search(bundle.index, query, n))
    except StopIteration as done:
        ranked: recommender.Ranked = done.value
        return ranked


async def _recommend(
    services: AppServices, bundle: Bundle, data: RecommendRequest
) -> tuple[recommender.Ranked, list[ScoredItem]]:
    planned = recommender.plan(bundle, data.user_id, data.k, data.recent_items, data.exclude_items)
    ranked = await _rank(services, bundle, planned)
    return ranked, _scored(bundle, ranked.items, ranked.scores, ranked.sources)


async def _interleaved(
    services: AppServices, published: Published, data: RecommendRequest, request_id: str
) -> tuple[recommender.Ranked, list[ScoredItem], list[str]]:
    """Both arms' lists merged by team-draft interleaving, and the arm that picked each item."""
    assert published.experiment is not None
    arms = published.experiment.arms
    # Both rankings at once: their searches share the batcher's FAISS calls.
    (ranked, first), (_, second) = await asyncio.gather(
        *(_recommend(services, published.bundles[a.version], data) for a in arms)
    )
    by_id = [{item.item_id: item for item in items} for items in (first, second)]
    merged, teams = team_draft([i.item_id for i in first], [i.item_id for i in second], data.k, request_id)
    items = [by_id[team][item_id] for item_id, team in zip(merged, teams, strict=True)]
    return ranked, items, [arms[team].name for team in teams]


def _request_row(
    request_id: str,
    data: RecommendRequest,
    strategy: str,
    version: str,
    items: list[ScoredItem],
    start: float,
    experiment: str | None,
    arm: str,
    teams: list[str],
) -> dict[str, Any]:
    return {
        "request_id": request_id, "ts": datetime.now(UTC), "user_id": data.user_id, "strategy": strategy,
        "model_version": version, "k": data.k, "items": [i.item_id for i in items],
        "scores": [i.score for i in items], "latency_ms": (time.perf_counter() - start) * 1000,
        "experiment": experiment, "arm": arm, "teams": teams,
    }  # fmt: skip


async def _shadow(
    services: AppServices, bundle: Bundle, data: RecommendRequest, request_id: str, experiment: str | None
) -> None:
    """The shadow version's ranking for a served request, logged beside it (never shown)."""
    start = time.perf_counter()
    ranked, items = await _recommend(services, bundle, data)
    services.request_log.append("recommendation_requests", _request_row(
        request_id, data, ranked.strategy, bundle.version, items, start, experiment, SHADOW, []
    ))  # fmt: skip
