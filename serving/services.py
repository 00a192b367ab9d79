"""What the handlers work with, typed: built once by ``create_app`` and handed to every handler
that asks for ``services`` by Litestar's dependency injection."""

from __future__ import annotations

from dataclasses import dataclass

from litestar.datastructures import State
from litestar.di import NamedDependency

from recsys_assets.core.io.artifacts import SERVING_MANIFEST, Artifacts
from recsys_assets.core.warehouse.clients import bigquery_client
from recsys_assets.settings import Settings
from serving.index_state import IndexState
from serving.metrics import Metrics
from serving.request_ids import RequestIds
from serving.request_log import BigQuerySink, DuckDBSink, RequestLog, Sink
from serving.search_batcher import SearchBatcher
from serving.shadow import ShadowRunner


@dataclass(frozen=True)
class Services:
    settings: Settings
    metrics: Metrics
    #: The published serving versions, reloaded when the manifest changes.
    index: IndexState
    #: Request and feedback rows on their way to the warehouse.
    request_log: RequestLog
    shadows: ShadowRunner
    request_ids: RequestIds
    #: FAISS searches of concurrent requests, batched off the event loop.
    batcher: SearchBatcher

    @classmethod
    def of(cls, settings: Settings, sink: Sink | None) -> Services:
        serving = settings.serving
        metrics = Metrics()
        return cls(
            settings=settings,
            metrics=metrics,
            index=IndexState(manifest_uri(settings), metrics),
            request_log=RequestLog(sink, metrics, serving.log_batch_rows, serving.log_flush_s,
                                   serving.log_buffer_rows),
            shadows=ShadowRunner(serving.shadow_in_flight, metrics, serving.shadow_share),
            request_ids=RequestIds(serving.request_id_key.get_secret_value()),
            batcher=SearchBatcher(concurrency=serving.search_threads, observe=metrics.search_batch.observe),
        )  # fmt: skip


#: How a handler asks for the app's ``Services`` (injected by name, ``services``).
AppServices = NamedDependency[Services]


def provide_services(state: State) -> Services:
    """The dependency: the app's ``Services``."""
    services: Services = state.services
    return services


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
