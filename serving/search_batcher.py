"""Index searches of concurrent requests, batched into FAISS calls off the event loop.

Each request hands its query to the batcher and awaits the result. Up to ``concurrency``
batches run at once, each in a worker thread (FAISS releases the GIL, so they use as many
cores); new queries queue up meanwhile, and whichever batch finishes first takes all that
queued (up to ``max_batch``) into one FAISS call. Under load that replaces one thread hop per
request by one per batch, and keeps every core searching; with a single request in flight it
costs one thread hop, as a plain ``to_thread`` would.

One batch at a time (the first version) left a core idle: the event loop parsed and answered
requests while the one search thread worked, then waited on it, so neither stayed busy.
"""

from __future__ import annotations

import asyncio
import os
from typing import Any

import anyio.to_thread
import numpy as np

from serving.recommender import Hits

#: Largest batch per FAISS call (bounds the latency a batch adds to its first request).
MAX_BATCH = 64


def default_concurrency() -> int:
    """One search thread per core this process may run on."""
    return len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count() or 1


class SearchBatcher:
    def __init__(self, max_batch: int = MAX_BATCH, concurrency: int | None = None, observe: Any = None):
        self.max_batch = max_batch
        self.concurrency = concurrency or default_concurrency()
        #: Called with each batch's size (the API's Prometheus histogram).
        self.observe = observe
        self._pending: list[tuple[Any, np.ndarray, int, asyncio.Future[Hits]]] = []
        self._running = 0
        #: The drain tasks in flight (referenced, or the loop may collect them mid-flight).
        self._tasks: set[asyncio.Task[None]] = set()
        self.batches = 0
        self.searched = 0

    async def search(self, index: Any, query: np.ndarray, n: int) -> Hits:
        loop = asyncio.get_running_loop()
        future: asyncio.Future[Hits] = loop.create_future()
        self._pending.append((index, query, n, future))
        if self._running < self.concurrency:
            self._running += 1
            task = loop.create_task(self._drain())
            self._tasks.add(task)
            task.add_done_callback(self._tasks.discard)
        return await future

    async def _drain(self) -> None:
        try:
            while self._pending:
                batch, self._pending = self._pending[: self.max_batch], self._pending[self.max_batch :]
                try:
                    results = await anyio.to_thread.run_sync(_search_batch, batch)
                except Exception as error:  # hand the failure to every waiting request
                    for *_, future in batch:
                        if not future.done():
                            future.set_exception(error)
                    continue
                self.batches += 1
                self.searched += len(batch)
                if self.observe is not None:
                    self.observe(len(batch))
                for (*_, future), hits in zip(batch, results, strict=True):
                    if not future.done():
                        future.set_result(hits)
        finally:
            self._running -= 1


def _search_batch(batch: list[tuple[Any, np.ndarray, int, Any]]) -> list[Hits]:
    """One FAISS call per index in the batch (a reload can put two versions in one batch),
    each at the largest ``n`` asked, trimmed back per query."""
    results: dict[int, Hits] = {}
    groups: dict[int, list[int]] = {}
    for position, (index, *_) in enumerate(batch):
        groups.setdefault(id(index), []).append(position)
    for positions in groups.values():
        index = batch[positions[0]][0]
        n = max(batch[p][2] for p in positions)
        queries = np.ascontiguousarray(np.stack([batch[p][1] for p in positions]), dtype=np.float32)
        scores, rows = index.search(queries, n)
        for row, p in enumerate(positions):
            want = batch[p][2]
            results[p] = (scores[row, :want], rows[row, :want])
    return [results[p] for p in range(len(batch))]
