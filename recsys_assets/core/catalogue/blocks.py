"""Read a raw file as blocks of whole lines and parse the blocks on every core.

The main process only decompresses and cuts the stream at newlines (both in C); the
per-record work (JSON / Python-literal parsing) runs in worker processes. Blocks come
back in file order, so line numbers and row order are those of the file.
"""

from __future__ import annotations

import gzip
import itertools
import multiprocessing
import os
import time
import zlib
from collections import deque
from collections.abc import Callable, Iterator
from concurrent.futures import Future, ProcessPoolExecutor
from typing import TypeVar

from isal.igzip_lib import IsalError

from recsys_assets.core.catalogue.amazon import error_reason
from recsys_assets.core.io.storage import open_stream
from recsys_assets.core.processes import die_with_parent

BLOCK_BYTES = 8 * 1024 * 1024
T = TypeVar("T")


class CorruptInputError(ValueError):
    """A raw file cannot be read to its end (a truncated or corrupt compressed stream)."""


def iter_blocks(uri: str, block_bytes: int = BLOCK_BYTES) -> Iterator[tuple[int, bytes]]:
    """Yield ``(first_line_number, block)``; every block ends on a line boundary."""
    next_line = 1
    carry = b""
    read = 0
    with open_stream(uri) as stream:
        while True:
            try:
                chunk = stream.read(block_bytes)
            except (EOFError, zlib.error, gzip.BadGzipFile, IsalError) as exc:  # type: ignore[misc]
                raise CorruptInputError(
                    f"{uri}: the compressed stream is truncated or corrupt after {read:,} "
                    f"uncompressed bytes ({next_line - 1:,} whole lines read): {error_reason(exc)}"
                ) from exc
            if not chunk:
                break
            read += len(chunk)
            data = carry + chunk
            cut = data.rfind(b"\n")
            if cut < 0:
                carry = data
                continue
            block, carry = data[: cut + 1], data[cut + 1 :]
            yield next_line, block
            next_line += block.count(b"\n")
    if carry:
        yield next_line, carry


def default_workers() -> int:
    return max(1, min(len(os.sched_getaffinity(0)), 8))


def map_blocks(
    uri: str,
    parse: Callable[[str, int, bytes], T],
    fmt: str,
    *,
    workers: int | None = None,
    block_bytes: int = BLOCK_BYTES,
    progress: Callable[[str], None] | None = None,
) -> Iterator[T]:
    """Apply ``parse(fmt, first_line, block)`` to every block of ``uri``, in file order.

    A pool is started only once a second block exists, so small files parse inline.
    ``parse`` must be a module-level function (it is sent to spawned workers).
    """
    workers = default_workers() if workers is None else workers
    blocks = iter_blocks(uri, block_bytes)
    first = next(blocks, None)
    if first is None:
        return
    second = next(blocks, None)
    if second is None or workers <= 1:
        yield parse(fmt, *first)
        if second is not None:
            yield parse(fmt, *second)
            for block in blocks:
                yield parse(fmt, *block)
        return

    started = time.perf_counter()
    read_bytes = 0
    # spawn, not fork: the parent may hold gcsfs/aiohttp threads whose locks a fork copies.
    context = multiprocessing.get_context("spawn")
    with ProcessPoolExecutor(max_workers=workers, mp_context=context, initializer=die_with_parent) as pool:
        pending: deque[Future[T]] = deque()
        for submitted, (start, data) in enumerate(itertools.chain([first, second], blocks), 1):
            # Bound the blocks in flight so memory stays at a few blocks per worker.
            while len(pending) >= 2 * workers:
                yield pending.popleft().result()
            pending.append(pool.submit(parse, fmt, start, data))
            read_bytes += len(data)
            if progress is not None and submitted % 25 == 0:
                elapsed = time.perf_counter() - started
                progress(f"{uri}: {read_bytes / 1e6:,.0f} MB uncompressed read in {elapsed:.0f}s")
        while pending:
            yield pending.popleft().result()
