"""The search batcher: concurrent requests share FAISS calls, on the loop or on threads."""

from __future__ import annotations

import asyncio

import numpy as np
import pytest

from recsys_assets.core.serving.index import build_index
from recsys_assets.settings.serving import IndexConfig
from recsys_assets_tests.serving.versions import vectors

pytestmark = pytest.mark.anyio


async def test_concurrent_searches_share_one_faiss_call_per_index() -> None:
    from serving.search_batcher import SearchBatcher

    items, _ = vectors()
    first = build_index(items, IndexConfig()).index
    second = build_index(items[::-1].copy(), IndexConfig()).index  # a reload can mix versions
    batcher = SearchBatcher(max_batch=32)
    jobs = [(first if i % 2 else second, items[i], 3 + i % 4) for i in range(40)]
    got = await asyncio.gather(*(batcher.search(index, q, n) for index, q, n in jobs))
    for (index, q, n), (scores, rows) in zip(jobs, got, strict=True):
        want_scores, want_rows = index.search(q[None, :], n)
        assert rows.tolist() == want_rows[0].tolist()
        np.testing.assert_allclose(scores, want_scores[0], rtol=1e-6)
    # 40 queries, at most 32 a batch: two batches, each one FAISS call per index.
    assert batcher.searched == 40 and batcher.batches == 2


async def test_inline_searches_run_on_the_event_loop_thread_batched_per_loop_turn() -> None:
    """The default (no search threads): no thread hop; what queued in one loop turn is one
    FAISS call, and a failing index fails only the requests that searched it."""
    import threading

    from serving.search_batcher import SearchBatcher

    items, _ = vectors()
    real = build_index(items, IndexConfig()).index
    calls: list[tuple[str, int]] = []

    class RecordingIndex:
        def search(self, queries: np.ndarray, n: int) -> tuple[np.ndarray, np.ndarray]:
            calls.append((threading.current_thread().name, len(queries)))
            return real.search(queries, n)  # type: ignore[no-any-return]

    class BrokenIndex:
        def search(self, queries: np.ndarray, n: int) -> tuple[np.ndarray, np.ndarray]:
            raise RuntimeError("index file corrupt")

    batcher = SearchBatcher()
    index = RecordingIndex()
    got = await asyncio.gather(*(batcher.search(index, items[i], 3) for i in range(5)))
    assert [rows[0] for _, rows in got] == [0, 1, 2, 3, 4]
    assert calls == [(threading.current_thread().name, 5)] and batcher.batches == 1
    await batcher.search(index, items[7], 3)  # a later turn: its own call
    assert calls[1:] == [(threading.current_thread().name, 1)]
    broken = await asyncio.gather(batcher.search(BrokenIndex(), items[0], 3), return_exceptions=True)
    assert [str(e) for e in broken] == ["index file corrupt"]
    assert (await batcher.search(index, items[2], 3))[1][0] == 2  # the batcher lives on


async def test_batches_run_on_as_many_threads_as_allowed() -> None:
    """Two batches in flight at once: each search waits at a two-party barrier, which only
    releases when the second batch is searching beside the first."""
    import threading

    from serving.search_batcher import SearchBatcher

    items, _ = vectors()
    real = build_index(items, IndexConfig()).index
    barrier = threading.Barrier(2, timeout=3)

    class MeetingIndex:
        def search(self, queries: np.ndarray, n: int) -> tuple[np.ndarray, np.ndarray]:
            barrier.wait()  # raises BrokenBarrierError after 3 s if the batches ran one by one
            return real.search(queries, n)  # type: ignore[no-any-return]

    index = MeetingIndex()
    batcher = SearchBatcher(max_batch=2, concurrency=2)
    got = await asyncio.gather(*(batcher.search(index, items[i], 3) for i in range(4)))
    assert [rows[0] for _, rows in got] == [0, 1, 2, 3] and batcher.batches == 2
    assert batcher.searched == 4 and not batcher._tasks  # finished tasks are released

    one = SearchBatcher(max_batch=2, concurrency=1)
    barrier.reset()
    with pytest.raises(threading.BrokenBarrierError):  # one thread: the second batch never starts
        await asyncio.gather(*(one.search(index, items[i], 3) for i in range(4)))
