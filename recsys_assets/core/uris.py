"""Open raw inputs by URI: a local path, ``file://``, ``gs://`` or ``http(s)://``, gzip or not."""

from __future__ import annotations

import gzip
import io
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import IO, cast

GZIP_MAGIC = b"\x1f\x8b"
_READ_BLOCK = 8 * 1024 * 1024


def is_local(uri: str) -> bool:
    """True for plain paths and ``file://`` URIs."""
    return "://" not in uri or uri.startswith("file://")


def local_path(uri: str) -> Path:
    return Path(uri.removeprefix("file://"))


@contextmanager
def open_binary(uri: str) -> Iterator[IO[bytes]]:
    """Stream ``uri`` as bytes, transparently gunzipping when the content is gzip.

    Compression is detected from the first bytes, not the file name, so a mislabelled
    file is still read correctly. Remote files are streamed through fsspec (gcsfs for
    ``gs://``, aiohttp for ``https://``); nothing is downloaded to disk first.
    """
    if is_local(uri):
        path = local_path(uri)
        if not path.is_file():
            raise FileNotFoundError(f"{uri}: no such file")
        raw: IO[bytes] = open(path, "rb", buffering=_READ_BLOCK)  # noqa: SIM115 (closed below)
    else:
        import fsspec  # deferred: pulls in aiohttp/gcsfs only for remote URIs

        raw = fsspec.open(uri, "rb", block_size=_READ_BLOCK).open()
    try:
        buffered = (
            raw
            if isinstance(raw, io.BufferedReader)
            else io.BufferedReader(cast(io.RawIOBase, raw), _READ_BLOCK)
        )
        if buffered.peek(2)[:2] == GZIP_MAGIC:
            with gzip.GzipFile(fileobj=buffered, mode="rb") as unzipped:
                yield io.BufferedReader(cast(io.RawIOBase, unzipped), _READ_BLOCK)
        else:
            yield buffered
    finally:
        raw.close()
