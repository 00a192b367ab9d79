"""Bytes by URI: a local path, ``file://``, ``gs://`` (and ``http(s)://`` for raw inputs).

Writes are atomic: locally the bytes go to a hidden temporary file that is renamed over the
target; on GCS an object becomes visible only when its upload completes. Either way a reader
sees the old file or the new one, never half of one.
"""

from __future__ import annotations

import gzip
import hashlib
import io
import os
import tempfile
import uuid
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import IO, Any, cast

from upath import UPath

LOCAL_PROTOCOLS = ("", "file", "local")
GZIP_MAGIC = b"\x1f\x8b"
_READ_BLOCK = 8 * 1024 * 1024


def to_path(uri: str | os.PathLike[str], storage_options: dict[str, Any] | None = None) -> UPath:
    return UPath(uri, **(storage_options or {}))


def is_local(uri: str | UPath) -> bool:
    """True for plain paths and ``file://`` URIs."""
    if isinstance(uri, UPath):
        return uri.protocol in LOCAL_PROTOCOLS
    return "://" not in uri or uri.startswith("file://")


def join(root: str, *parts: str) -> str:
    """``root`` joined with ``parts`` by ``/``, for folders and ``gs://`` alike."""
    return "/".join([root.rstrip("/"), *(p.strip("/") for p in parts)])


def exists(uri: str) -> bool:
    return bool(to_path(uri).exists())


def atomic_write(path: UPath, write: Callable[[IO[bytes]], None]) -> int:
    """Write through ``write(stream)`` so readers never see a partial file; return bytes."""
    if is_local(path):
        target = path.path
        os.makedirs(os.path.dirname(target) or ".", exist_ok=True)
        tmp = os.path.join(os.path.dirname(target), f".{os.path.basename(target)}.{uuid.uuid4().hex}.tmp")
        try:
            with open(tmp, "wb") as stream:
                write(stream)
                stream.flush()
                os.fsync(stream.fileno())
            os.replace(tmp, target)
        finally:
            if os.path.exists(tmp):
                os.unlink(tmp)
        return os.path.getsize(target)
    # Object stores publish an object only when its upload is finalised.
    with path.open("wb") as stream:
        write(stream)
    return int(path.stat().st_size)


def write_bytes(uri: str, payload: bytes) -> int:
    def write(stream: IO[bytes]) -> None:
        stream.write(payload)

    return atomic_write(to_path(uri), write)


def read_bytes(uri: str) -> bytes:
    with to_path(uri).open("rb") as stream:
        return stream.read()


def list_files(uri: str, suffix: str) -> list[str]:
    """Files directly under folder ``uri`` whose names end in ``suffix``, sorted by name."""
    folder = to_path(uri)
    if not folder.exists():
        return []
    return sorted(str(p) for p in folder.iterdir() if p.name.endswith(suffix) and not p.name.startswith("."))


def local_copy(uri: str) -> Path:
    """A local path for ``uri``: itself when local, else a cached copy of the file or folder."""
    if is_local(uri):
        return Path(uri.removeprefix("file://"))
    import fsspec

    target = Path(tempfile.gettempdir()) / "recsys-downloads" / hashlib.sha256(uri.encode()).hexdigest()[:16]
    if not target.exists():
        fs, path = fsspec.core.url_to_fs(uri)
        if not fs.exists(path):
            raise FileNotFoundError(f"{uri}: no such file or folder")
        staging = target.with_name(f".{target.name}.{uuid.uuid4().hex}")
        if fs.isdir(path):
            fs.get(path.rstrip("/") + "/", str(staging), recursive=True)
        else:
            fs.get(path, str(staging))
        os.replace(staging, target)
    return target


@contextmanager
def open_stream(uri: str) -> Iterator[IO[bytes]]:
    """Stream ``uri`` as bytes, transparently gunzipping when the content is gzip.

    Compression is detected from the first bytes, not the file name, so a mislabelled
    file is still read correctly. Remote files are streamed through fsspec (gcsfs for
    ``gs://``, aiohttp for ``https://``); nothing is downloaded to disk first.
    """
    if is_local(uri):
        path = Path(uri.removeprefix("file://"))
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
