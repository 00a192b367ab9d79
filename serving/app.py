"""The recommendation API: ``create_app()`` builds a Litestar app over the published serving
version, watching its manifest for new ones, logging every request to the warehouse.

    uvicorn --factory serving.app:create_app
"""

from __future__ import annotations

import asyncio
import hmac
import logging
import time
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from datetime import UTC, datetime
from typing import Annotated, Any, cast

from litestar import Litestar, Request, Response, get, post
from litestar.datastructures import State
from litestar.exceptions import ClientException, NotAuthorizedException, NotFoundException
from litestar.openapi import OpenAPIConfig
from litestar.openapi.plugins import JsonRenderPlugin, RedocRenderPlugin
from litestar.params import FromPath, JSONBody, QueryParameter
from litestar.static_files import create_static_files_router
from litestar.status_codes import HTTP_202_ACCEPTED, HTTP_503_SERVICE_UNAVAILABLE
from litestar.types import ASGIApp, HTTPScope, Message, Receive, Scope, Send

from recsys_assets.core.io.artifacts import SERVING_MANIFEST, Artifacts
from recsys_assets.core.serving.bundle import Bundle
from recsys_assets.core.serving.experiment import INTERLEAVED, SHADOW, team_draft
from recsys_assets.core.warehouse.clients import bigquery_client
from recsys_assets.settings import Settings, load_settings
from serving import recommender
from serving.explorer import STATIC, explorer_router
from serving.index_state import IndexState, Published, control, current
from serving.metrics import Metrics
from serving.request_ids import RequestIds
from serving.request_log import BigQuerySink, DuckDBSink, RequestLog, Sink
from serving.schemas import (
    Accepted,
    FeedbackRequest,
    Health,
    ItemsResponse,
    RecommendRequest,
    RecommendResponse,
    ScoredItem,
)
from serving.search_batcher import SearchBatcher
from serving.shadow import ShadowRunner
from serving.strict_body import StrictJSONRequest

log = logging.getLogger("serving")
#: Request bodies are small JSON documents; anything larger is refused with 413.
MAX_BODY_BYTES = 64 * 1024
#: No favicon request at all (Litestar's default links one on a CDN).
NO_FAVICON = "<link rel='icon' href='data:,'>"
KQuery = Annotated[int, QueryParameter(ge=1, le=100, description="How many items (1-100).")]


def _scored(bundle: Bundle, items: list[int], scores: list[float]) -> list[ScoredItem]:
    return [ScoredItem(bundle.item_ids[i], s, bundle.titles[i]) for i, s in zip(items, scores, strict=True)]


async def _rank(state: State, bundle: Bundle, planned: recommender.Plan) -> recommender.Ranked:
    """``recommender.ranking`` with its searches batched off the event loop."""
    batcher: SearchBatcher = state.batcher
    steps = recommender.ranking(bundle, planned)
    try:
        query, n = next(steps)
        while True:
            query, n = steps.send(await batcher.search(bundle.index, query, n))
    except StopIteration as done:
        ranked: recommender.Ranked = done.value
        return ranked


async def _recommend(
    state: State, bundle: Bundle, data: RecommendRequest
) -> tuple[recommender.Ranked, list[ScoredItem]]:
    planned = recommender.plan(bundle, data.user_id, data.k, data.recent_items, data.exclude_items)
    ranked = await _rank(state, bundle, planned)
    return ranked, _scored(bundle, ranked.items, ranked.scores)


async def _interleaved(
    state: State, published: Published, data: RecommendRequest, request_id: str
) -> tuple[recommender.Ranked, list[ScoredItem], list[str]]:
    """Both arms' lists merged by team-draft interleaving, and the arm that picked each item."""
    assert published.experiment is not None
    arms = published.experiment.arms
    # Both rankings at once: their searches share the batcher's FAISS calls.
    (ranked, first), (_, second) = await asyncio.gather(
        *(_recommend(state, published.bundles[a.version], data) for a in arms)
    )
    by_id = [{item.item_id: item for item in items} for items in (first, second)]
    merged, teams = team_draft([i.item_id for i in first], [i.item_id for i in second], data.k, request_id)
    items = [by_id[team][item_id] for item_id, team in zip(merged, teams, strict=True)]
    return ranked, items, [arms[team].name for team in teams]


@post("/recommend", status_code=200)
async def recommend(data: JSONBody[RecommendRequest], state: State) -> RecommendResponse:
    """Top-k items for a user: their own vector, else the mean of their recent items, else popularity."""
    start = time.perf_counter()
    published = current(state)
    arm, bundle = published.assign(data.user_id)
    experiment = published.experiment
    request_id = state.request_ids.issue(data.user_id)
    teams: list[str] = []
    if arm == INTERLEAVED:
        ranked, items, teams = await _interleaved(state, published, data, request_id)
    else:
        ranked, items = await _recommend(state, bundle, data)
    state.metrics.strategies.labels(ranked.strategy).inc()
    name = experiment.name if experiment else None
    state.request_log.append("recommendation_requests", _request_row(
        request_id, data, ranked.strategy, bundle.version, items, start, name, arm, teams
    ))  # fmt: skip
    if published.shadow is not None and state.shadows.sampled(request_id):
        state.shadows.submit(_shadow(state, published.shadow, data, request_id, name))
    return RecommendResponse(
        request_id=request_id, user_id=data.user_id, strategy=ranked.strategy, model_version=bundle.version,
        items=items, unknown_items=ranked.unknown_items, experiment=name, arm=arm,
    )  # fmt: skip


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
    state: State, bundle: Bundle, data: RecommendRequest, request_id: str, experiment: str | None
) -> None:
    """The shadow version's ranking for a served request, logged beside it (never shown)."""
    start = time.perf_counter()
    ranked, items = await _recommend(state, bundle, data)
    state.request_log.append("recommendation_requests", _request_row(
        request_id, data, ranked.strategy, bundle.version, items, start, experiment, SHADOW, []
    ))  # fmt: skip


@get("/items/{item_id:str}/similar")
async def similar_items(item_id: FromPath[str], state: State, k: KQuery = 20) -> ItemsResponse:
    """Items nearest to one item in the model's space (404 for an item the version does not know)."""
    bundle = control(state)
    row = bundle.item_index.get(item_id)
    if row is None:
        raise NotFoundException(detail=f"item {item_id!r} is not in serving version {bundle.version}")
    ranked = await _rank(state, bundle, recommender.similar_plan(bundle, row, k))
    return ItemsResponse(bundle.version, _scored(bundle, ranked.items, ranked.scores))


@get("/popular")
async def popular_items(state: State, k: KQuery = 20) -> ItemsResponse:
    """The most reviewed items in the model's training data (score = train interactions)."""
    bundle = control(state)
    items, scores = recommender.popular(bundle, k, set())
    return ItemsResponse(bundle.version, _scored(bundle, items, scores))


@post("/feedback", status_code=HTTP_202_ACCEPTED)
async def feedback(data: JSONBody[FeedbackRequest], state: State) -> Accepted:
    """Record an impression, click or purchase of a served item (logged for monitoring); 400 for
    a request id the API did not issue to that user."""
    if not state.request_ids.issued(data.request_id, data.user_id):
        raise ClientException(
            detail=f"request_id {data.request_id!r} was not issued by this API for user {data.user_id!r}"
        )
    published: Published | None = state.index.published
    experiment = published.experiment if published else None
    arm = published.arm_of(data.user_id) if published else None
    state.request_log.append(
        "feedback_events",
        {"request_id": data.request_id, "ts": datetime.now(UTC), "user_id": data.user_id,
         "item_id": data.item_id, "event": data.event, "experiment": experiment.name if experiment else None,
         "arm": arm},
    )  # fmt: skip
    return Accepted("accepted")


@get("/healthz")
async def healthz() -> Health:
    """The process is alive."""
    return Health("ok")


@get("/readyz")
async def readyz(state: State) -> Response[Health]:
    """200 once a serving version is loaded, else 503."""
    bundle: Bundle | None = state.index.bundle
    if bundle is None:
        return Response(Health("no serving version loaded"), status_code=HTTP_503_SERVICE_UNAVAILABLE)
    return Response(Health("ready", bundle.version))


@get("/metrics", media_type="text/plain; version=0.0.4", include_in_schema=False)
async def metrics(state: State) -> bytes:
    """Prometheus metrics."""
    return bytes(state.metrics.render())


@post("/admin/reload", status_code=200)
async def admin_reload(request: Request[Any, Any, State], state: State) -> Health:
    """Check the manifest now (requires the admin API key in ``X-API-Key``)."""
    key = state.settings.serving.admin_api_key.get_secret_value()
    if not key:
        raise NotFoundException(detail="the admin API is disabled (set RECSYS_ADMIN_API_KEY)")
    # Constant time, over bytes: a str compare_digest raises on non-ASCII header values.
    given = request.headers.get("x-api-key", "").encode("utf-8", "surrogateescape")
    if not hmac.compare_digest(given, key.encode()):
        raise NotAuthorizedException(detail="a valid X-API-Key header is required")
    outcome = await state.index.refresh()
    bundle = state.index.bundle
    return Health(outcome, bundle.version if bundle else None)


def metrics_middleware(app: ASGIApp) -> ASGIApp:
    """Counts every routed request by route template and status, and times it."""
    # The labelled children, looked up once per (route, method, status): prometheus_client's
    # ``labels`` validates and locks on every call, a few microseconds twice a request.
    counters: dict[tuple[str, str, int], Any] = {}
    timers: dict[str, Any] = {}

    async def middleware(scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await app(scope, receive, send)
            return
        start = time.perf_counter()
        status = [500]

        async def send_wrapper(message: Message) -> None:
            if message["type"] == "http.response.start":
                status[0] = message["status"]
            await send(message)

        try:
            await app(scope, receive, send_wrapper)
        finally:
            route = scope.get("path_template", "unmatched")
            key = (route, cast("HTTPScope", scope)["method"], status[0])
            counter, timer = counters.get(key), timers.get(route)
            if counter is None or timer is None:
                metrics: Metrics = scope["litestar_app"].state.metrics
                counter = counters[key] = metrics.requests.labels(route, key[1], str(key[2]))
                timer = timers[route] = metrics.latency.labels(route)
            counter.inc()
            timer.observe(time.perf_counter() - start)

    return middleware


class OfflineRedoc(RedocRenderPlugin):
    """Redoc that asks nothing of other hosts: its bundle shows a logo from Redocly's CDN, which a
    Content-Security-Policy limited to this API (and inline data) keeps the browser from fetching."""

    CSP = "<meta http-equiv='Content-Security-Policy' content=\"img-src 'self' data:\">"

    def render(self, request: Request[Any, Any, Any], openapi_schema: dict[str, Any]) -> bytes:
        return super().render(request, openapi_schema).replace(b"<head>", b"<head>" + self.CSP.encode(), 1)


def make_sink(settings: Settings) -> Sink | None:
    """Where request and feedback logs go (``serving.log_sink``), in the warehouse's settings."""
    warehouse = settings.warehouse
    if settings.serving.log_sink == "none":
        return None
    if settings.serving.log_sink == "duckdb":
        return DuckDBSink(warehouse.duckdb_path)
    return BigQuerySink(bigquery_client(settings.gcp.project, warehouse.endpoint), warehouse.dataset)


def manifest_uri(settings: Settings) -> str:
    """``serving.manifest_uri``, else the manifest under the artifact root."""
    return settings.serving.manifest_uri or Artifacts(settings.artifacts.root).uri(SERVING_MANIFEST)


def create_app(settings: Settings | None = None, sink: Sink | None = None) -> Litestar:
    """The API over ``settings`` (default: this process's ``RECSYS_*`` variables); ``sink``
    overrides the warehouse the settings name (tests pass one pointed at an emulator)."""
    settings = settings or load_settings()
    serving = settings.serving
    app_metrics = Metrics()
    index = IndexState(manifest_uri(settings), app_metrics)
    request_log = RequestLog(
        sink if sink is not None else make_sink(settings), app_metrics, serving.log_batch_rows,
        serving.log_flush_s, serving.log_buffer_rows,
    )  # fmt: skip

    shadows = ShadowRunner(serving.shadow_in_flight, app_metrics, serving.shadow_share)

    @asynccontextmanager
    async def lifespan(app: Litestar) -> AsyncIterator[None]:
        await index.refresh()
        watchers = [asyncio.create_task(index.watch(serving.reload_interval_s))]
        if serving.verify_interval_s:
            watchers.append(asyncio.create_task(index.watch_files(serving.verify_interval_s)))
        request_log.start()
        try:
            yield
        finally:
            for watcher in watchers:
                watcher.cancel()
            await shadows.close()
            app_metrics.process_exited()
            if not await request_log.close():
                log.error("shutting down with %s log rows unwritten",
                          {k: len(v) for k, v in request_log.buffers.items()})  # fmt: skip

    return Litestar(
        route_handlers=[
            recommend,
            similar_items,
            popular_items,
            feedback,
            healthz,
            readyz,
            metrics,
            admin_reload,
            create_static_files_router(
                path="/static/vendor", directories=[STATIC / "vendor"], include_in_schema=False
            ),
            *([explorer_router()] if serving.explorer else []),
        ],
        state=State(
            {
                "settings": settings,
                "metrics": app_metrics,
                "index": index,
                "request_log": request_log,
                "shadows": shadows,
                "request_ids": RequestIds(serving.request_id_key.get_secret_value()),
                "batcher": SearchBatcher(
                    concurrency=serving.search_threads, observe=app_metrics.search_batch.observe
                ),
            }
        ),
        lifespan=[lifespan],
        middleware=[metrics_middleware],
        request_max_body_size=MAX_BODY_BYTES,
        request_class=StrictJSONRequest,
        openapi_config=OpenAPIConfig(
            title="recsys recommendations",
            version="1.0.0",
            # Redoc from this package (serving/static/vendor/redoc, 2.5.4): the CDN's copy, and
            # the fonts and favicon Litestar links by default, do not load without internet.
            render_plugins=[
                OfflineRedoc(
                    js_url="/static/vendor/redoc/redoc.standalone.js",
                    google_fonts=False,
                    favicon=NO_FAVICON,
                    path="/",
                ),
                JsonRenderPlugin(),
            ],
        ),
    )
