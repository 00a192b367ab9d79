"""Index searches of concurrent requests, batched into FAISS calls.

Each request hands its query to the batcher and awaits the result. Two ways to run them:

- ``concurrency=0`` (inline): the event loop runs the searches itself, in one FAISS call per
  loop turn for every query queued during that turn. No thread hop: the right choice when the
  process has one core to itself (one uvicorn worker per core, or a one-CPU container). In the
  serving profile a hop to a thread and back cost about as much CPU as half a search (waking a
  thread, the loop's self-pipe, the GIL handed over twice), so on a machine where every core
  runs a worker, threads only add that cost.
- ``concurrency=N``: up to N batches run at once, each in a worker thread (FAISS releases the
  GIL, so one process uses N cores); new queries queue meanwhile, and whichever batch finishes
  first takes all that queued (up to ``max_batch``) into one FAISS call: one thread hop per
  batch, not per request. One batch at a time left a core idle (the loop parsed requests while
  the one search thread worked, then waited on it), hence N.
"""

from __future__ import annotations

import asyncio
from typing import Any

import anyio.to_thread
import numpy as np

from serving.recommender import Hits

#: A queued search: (index, query, n, the future its request awaits).
Queued = tuple[Any, np.ndarray, int, "asyncio.Future[Hits]"]
#: Largest batch per FAISS call (bounds the latency a batch adds to its first request).
MAX_BATCH = 64


class SearchBatcher:
    def __init__(self, max_batch: int = MAX_BATCH, concurrency: int = 0, observe: Any = None):
        self.max_batch = max_batch
        #: Batches searched at once in threads; 0: on the event loop, no threads.
        self.concurrency = concurrency
        #: Called with each batch's size (the API's Prometheus histogram).
        self.observe = observe
        self._pending: list[Queued] = []
        self._running = 0
        #: The drain tasks in flight (referenced, or the loop may collect them mid-flight).
        self._tasks: set[asyncio.Task[None]] = set()
        self.batches = 0
        self.searched = 0

    async def search(self, index: Any, query: np.ndarray, n: int) -> Hits:
        loop = asyncio.get_running_loop()
        future: asyncio.Future[Hits] = loop.create_future()
        self._pending.append((index, query, n, future))
        if not self.concurrency:
            if len(self._pending) == 1:  # the first of this loop turn schedules the search
                loop.call_soon(self._search_inline)
        elif self._running < self.concurrency:
            self._running += 1
            task = loop.create_task(self._drain())
            self._tasks.add(task)
            task.add_done_callback(self._tasks.discard)
        return await future

    def _next_batch(self) -> list[Queued]:
        batch, self._pending = self._pending[: self.max_batch], self._pending[self.max_batch :]
        return batch

    def _search_inline(self) -> None:
        """Every query queued since the last turn, searched on the event loop."""
        while self._pending:
            batch = self._next_batch()
            try:
                results = _search_batch(batch)
            except Exception as error:
                _fail(batch, error)
                continue
            self._done(batch, results)

    def _done(self, batch: list[Queued], results: list[Hits]) -> None:
        self.batches += 1
        self.searched += len(batch)
        if self.observe is not None:
            self.observe(len(batch))
        for (*_, future), hits in zip(batch, results, strict=True):
            if not future.done():
                future.set_result(hits)

    async def _drain(self) -> None:
        try:
            while self._pending:
                batch = self._next_batch()
                try:
                    results = await anyio.to_thread.run_sync(_search_batch, batch)
                except Exception as error:
                    _fail(batch, error)
                    continue
                self._done(batch, results)
        finally:
            self._running -= 1


def _fail(batch: list[Queued], error: Exception) -> None:
    """Hand a failed search to every request waiting on it."""
    for *_, future in batch:
        if not future.done():
            future.set_exception(error)


def _search_batch(batch: list[Queued]) -> list[Hits]:
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
