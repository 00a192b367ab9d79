"""Prometheus metrics of one app instance (its own registry, so tests and apps do not mix).

With several uvicorn workers, set ``PROMETHEUS_MULTIPROC_DIR`` to an empty folder before they
start (``make serve`` does): each process then writes its values there and ``/metrics``, served
by whichever worker, adds them up across the live ones (prometheus_client's multiprocess mode).
"""

from __future__ import annotations

import os

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram, generate_latest, multiprocess

MULTIPROCESS_DIR = "PROMETHEUS_MULTIPROC_DIR"


class Metrics:
    def __init__(self) -> None:
        self.registry = CollectorRegistry()
        self.requests = Counter(
            "recsys_http_requests", "HTTP requests by route and status.", ["route", "method", "status"],
            registry=self.registry,
        )  # fmt: skip
        self.latency = Histogram(
            "recsys_http_request_seconds", "Time to answer, by route.", ["route"], registry=self.registry,
            buckets=(0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5),
        )  # fmt: skip
        self.strategies = Counter(
            "recsys_recommendations", "Recommendations by strategy.", ["strategy"], registry=self.registry
        )
        self.search_batch = Histogram(
            "recsys_search_batch_queries", "Queries per FAISS call (concurrent requests batched).",
            registry=self.registry, buckets=(1, 2, 4, 8, 16, 32, 64),
        )  # fmt: skip
        self.model = Gauge(
            "recsys_model_info", "The serving version in use (value 1).", ["version"], registry=self.registry,
            multiprocess_mode="livemax",
        )  # fmt: skip
        self.reloads = Counter(
            "recsys_index_reloads", "Attempts to load a new version, by outcome.", ["outcome"],
            registry=self.registry,
        )  # fmt: skip
        self.shadow = Counter(
            "recsys_shadow_requests", "Shadow rankings: scored, skipped (too many in flight), failed.",
            ["outcome"], registry=self.registry,
        )  # fmt: skip
        self.watcher_errors = Counter(
            "recsys_watcher_errors", "Unexpected failures of the manifest or file watcher (it lives on).",
            ["watcher"], registry=self.registry,
        )  # fmt: skip
        self.integrity_failures = Counter(
            "recsys_serving_integrity_failures",
            "Re-verifications that found a served file changed since it was loaded.", registry=self.registry,
        )  # fmt: skip
        self.files_intact = Gauge(
            "recsys_serving_files_intact", "1 while the served version's files match their checksums.",
            registry=self.registry, multiprocess_mode="livemin",
        )  # fmt: skip
        self.log_buffered = Gauge(
            "recsys_log_buffered_rows", "Log rows waiting to be written.", ["table"], registry=self.registry,
            multiprocess_mode="livesum",
        )  # fmt: skip
        self._version: str | None = None
        self.log_written = Counter(
            "recsys_log_written_rows", "Log rows written to the warehouse.", ["table"], registry=self.registry
        )
        self.log_dropped = Counter(
            "recsys_log_dropped_rows", "Log rows dropped because the buffer was full.", ["table"],
            registry=self.registry,
        )  # fmt: skip
        self.log_failures = Counter(
            "recsys_log_write_failures", "Failed warehouse writes (rows kept for retry).", ["table"],
            registry=self.registry,
        )  # fmt: skip

    def set_version(self, version: str) -> None:
        # The old version drops to 0 rather than disappearing: with several workers, another one
        # may still serve it, and the sum over processes shows that.
        if self._version is not None and self._version != version:
            self.model.labels(self._version).set(0)
        self._version = version
        self.model.labels(version).set(1)

    def render(self) -> bytes:
        if os.environ.get(MULTIPROCESS_DIR):
            combined = CollectorRegistry()
            multiprocess.MultiProcessCollector(combined)
            return generate_latest(combined)
        return generate_latest(self.registry)

    @staticmethod
    def process_exited() -> None:
        """Drop this process's live gauges from the combined view (multiprocess mode)."""
        if os.environ.get(MULTIPROCESS_DIR):
            multiprocess.mark_process_dead(os.getpid())
