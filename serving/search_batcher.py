"""Index searches of concurrent requests, batched into one FAISS call off the event loop.

Each request hands its query to the batcher and awaits the result. While one batch runs in a
worker thread, new queries queue up; when it returns, they all go in the next one. Under load
that replaces one thread hop per request by one per batch, and FAISS searches the batch in one
call; with a single request in flight it costs one thread hop, as a plain ``to_thread`` would.
"""

from __future__ import annotations

import asyncio
from typing import Any

import anyio.to_thread
import numpy as np

from serving.recommender import Hits

#: Largest batch per FAISS call (bounds the latency a batch adds to its first request).
MAX_BATCH = 64


class SearchBatcher:
    def __init__(self, max_batch: int = MAX_BATCH):
        self.max_batch = max_batch
        self._pending: list[tuple[Any, np.ndarray, int, asyncio.Future[Hits]]] = []
        self._draining = False
        self.batches = 0
        self.searched = 0

    async def search(self, index: Any, query: np.ndarray, n: int) -> Hits:
        future: asyncio.Future[Hits] = asyncio.get_running_loop().create_future()
        self._pending.append((index, query, n, future))
        if not self._draining:
            self._draining = True
            asyncio.get_running_loop().create_task(self._drain())
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
                for (*_, future), hits in zip(batch, results, strict=True):
                    if not future.done():
                        future.set_result(hits)
        finally:
            self._draining = False


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
