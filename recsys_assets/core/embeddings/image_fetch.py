"""Fetch item images concurrently from ``http(s)://``, ``gs://`` or local paths.

Every image ends in exactly one outcome: decoded pixels, or a failure reason counted in
``FetchReport``. Transient failures (timeouts, connection errors, HTTP 429/5xx) are retried
with exponential backoff; permanent ones (404, other 4xx, bytes that do not decode) are not.
"""

from __future__ import annotations

import io
import socket
import time
import urllib.error
import urllib.request
from collections import Counter
from collections.abc import Callable, Iterator, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from typing import Any

import numpy as np
from PIL import Image, UnidentifiedImageError

# Failure reasons, as they appear in img_meta.json.
NO_URL = "no_url"
NOT_FOUND = "not_found"
TIMEOUT = "timeout"
CONNECTION = "connection"
CORRUPT = "corrupt"


class FetchError(Exception):
    """An image that could not be had; ``reason`` is what ``FetchReport`` counts."""

    def __init__(self, reason: str, detail: str):
        super().__init__(detail)
        self.reason = reason


class TransientFetchError(FetchError):
    """Worth retrying (timeouts, connection errors, HTTP 429/5xx)."""


class PermanentFetchError(FetchError):
    """Retrying cannot help (404, other 4xx, undecodable bytes, no URL)."""


@dataclass
class FetchReport:
    requested: int = 0
    fetched: int = 0
    failed: Counter[str] = field(default_factory=Counter)
    #: A few (url, reason, detail) examples per reason, for the logs and metadata.
    examples: dict[str, list[str]] = field(default_factory=dict)

    def record_failure(self, url: str, reason: str, detail: str) -> None:
        self.failed[reason] += 1
        shown = self.examples.setdefault(reason, [])
        if len(shown) < 3:
            shown.append(f"{url}: {detail}")


def read_bytes(url: str, timeout: float) -> bytes:
    """The bytes at ``url``; raises Transient/PermanentFetchError with a reason."""
    try:
        if url.startswith(("http://", "https://")):
            with urllib.request.urlopen(url, timeout=timeout) as response:
                return bytes(response.read())
        if url.startswith("gs://"):
            import fsspec

            return bytes(fsspec.open(url, "rb").open().read())
        with open(url.removeprefix("file://"), "rb") as stream:
            return stream.read()
    except urllib.error.HTTPError as exc:
        if exc.code in {404, 410}:
            raise PermanentFetchError(NOT_FOUND, f"HTTP {exc.code}") from exc
        if exc.code == 429 or exc.code >= 500:
            raise TransientFetchError(f"http_{exc.code}", f"HTTP {exc.code}") from exc
        raise PermanentFetchError(f"http_{exc.code}", f"HTTP {exc.code}") from exc
    except FileNotFoundError as exc:
        raise PermanentFetchError(NOT_FOUND, "no such file") from exc
    except TimeoutError as exc:
        raise TransientFetchError(TIMEOUT, f"no answer in {timeout:g}s") from exc
    except urllib.error.URLError as exc:
        if isinstance(exc.reason, TimeoutError | socket.timeout):
            raise TransientFetchError(TIMEOUT, f"no answer in {timeout:g}s") from exc
        raise TransientFetchError(CONNECTION, str(exc.reason)) from exc
    except ConnectionError as exc:
        raise TransientFetchError(CONNECTION, str(exc)) from exc


def decode(data: bytes, size: int) -> np.ndarray:
    """RGB ``size`` x ``size`` uint8 pixels: resize the short side, then centre-crop."""
    try:
        with Image.open(io.BytesIO(data)) as image:
            image.load()
            rgb = image.convert("RGB")
    except (UnidentifiedImageError, OSError, ValueError) as exc:
        raise PermanentFetchError(CORRUPT, f"not a decodable image ({exc})") from exc
    scale = size / min(rgb.size)
    resized = rgb.resize(
        (max(size, round(rgb.width * scale)), max(size, round(rgb.height * scale))), Image.Resampling.BICUBIC
    )
    left, top = (resized.width - size) // 2, (resized.height - size) // 2
    return np.asarray(resized.crop((left, top, left + size, top + size)), dtype=np.uint8)


def fetch_one(url: str | None, size: int, timeout: float, retries: int, backoff: float) -> np.ndarray:
    if not url:
        raise PermanentFetchError(NO_URL, "item has no image URL")
    for attempt in range(retries + 1):
        try:
            return decode(read_bytes(url, timeout), size)
        except TransientFetchError:
            if attempt == retries:
                raise
            time.sleep(backoff * 2**attempt)
    raise AssertionError("unreachable")  # the loop returns or raises


def fetch_images(
    urls: Sequence[str | None],
    size: int,
    *,
    workers: int = 16,
    timeout: float = 10.0,
    retries: int = 2,
    backoff: float = 0.5,
    chunk: int = 256,
    report: FetchReport | None = None,
    on_chunk: Callable[[FetchReport], Any] | None = None,
) -> Iterator[tuple[np.ndarray, np.ndarray]]:
    """Yield ``(positions, pixels)`` chunks in input order; failures go to ``report``.

    ``positions`` index into ``urls``; ``pixels`` is ``(n, size, size, 3)`` uint8.
    Downloads overlap with the caller's work on the previous chunk.
    """
    report = report if report is not None else FetchReport()
    report.requested += len(urls)

    def task(url: str | None) -> np.ndarray | FetchError:
        try:
            return fetch_one(url, size, timeout, retries, backoff)
        except FetchError as exc:  # counted by reason below, never dropped
            return exc

    with ThreadPoolExecutor(max_workers=workers) as pool:
        pending = [pool.submit(task, u) for u in urls[:chunk]]
        for lo in range(0, len(urls), chunk):
            nxt = [pool.submit(task, u) for u in urls[lo + chunk : lo + 2 * chunk]]
            positions, pixels = [], []
            for offset, future in enumerate(pending):
                result = future.result()
                if isinstance(result, FetchError):
                    report.record_failure(str(urls[lo + offset]), result.reason, str(result))
                else:
                    positions.append(lo + offset)
                    pixels.append(result)
            report.fetched += len(positions)
            if on_chunk:
                on_chunk(report)
            if positions:
                yield np.asarray(positions, dtype=np.int64), np.stack(pixels)
            pending = nxt
