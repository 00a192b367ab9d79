"""Read and write artifacts by URI: a local path, ``file://`` or ``gs://``.

The Dagster IO managers and the job modules that run in Vertex AI containers share these
functions, so an artifact written by either is byte-for-byte what the other reads.

Writes are atomic: locally the bytes go to a hidden temporary file that is renamed over
the target; on GCS an object becomes visible only when its upload completes. Either way a
reader sees the old artifact or the new one, never half of one.
"""

from __future__ import annotations

import hashlib
import io
import json
import os
import tempfile
import uuid
from collections.abc import Callable
from pathlib import Path
from typing import IO, Any

import numpy as np
import pandas as pd
from upath import UPath

LOCAL_PROTOCOLS = ("", "file", "local")


def to_path(uri: str | os.PathLike[str], storage_options: dict[str, Any] | None = None) -> UPath:
    return UPath(uri, **(storage_options or {}))


def is_local(path: UPath) -> bool:
    return path.protocol in LOCAL_PROTOCOLS


def join(root: str, *parts: str) -> str:
    """``root`` joined with ``parts`` by ``/``, for folders and ``gs://`` alike."""
    return "/".join([root.rstrip("/"), *(p.strip("/") for p in parts)])


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


def write_npy(uri: str, array: np.ndarray) -> int:
    return atomic_write(to_path(uri), lambda s: np.save(s, array, allow_pickle=False))


def read_npy(uri: str) -> np.ndarray:
    with to_path(uri).open("rb") as stream:
        return np.load(io.BytesIO(stream.read()), allow_pickle=False)


def read_npz(uri: str) -> dict[str, np.ndarray]:
    with to_path(uri).open("rb") as stream, np.load(io.BytesIO(stream.read()), allow_pickle=False) as archive:
        return {name: archive[name] for name in archive.files}


def write_parquet(uri: str, frame: pd.DataFrame) -> int:
    return atomic_write(to_path(uri), lambda s: frame.to_parquet(s, index=False))


def read_parquet(uri: str, columns: list[str] | None = None) -> pd.DataFrame:
    with to_path(uri).open("rb") as stream:
        return pd.read_parquet(stream, columns=columns)


def write_json(uri: str, obj: Any) -> int:
    return write_bytes(uri, json.dumps(obj, indent=2, allow_nan=False).encode("utf-8") + b"\n")


def write_bytes(uri: str, payload: bytes) -> int:
    def write(stream: IO[bytes]) -> None:
        stream.write(payload)

    return atomic_write(to_path(uri), write)


def read_bytes(uri: str) -> bytes:
    with to_path(uri).open("rb") as stream:
        return stream.read()


def read_json(uri: str) -> Any:
    return json.loads(read_bytes(uri))


def list_files(uri: str, suffix: str) -> list[str]:
    """Files directly under folder ``uri`` whose names end in ``suffix``, sorted by name."""
    folder = to_path(uri)
    if not folder.exists():
        return []
    return sorted(str(p) for p in folder.iterdir() if p.name.endswith(suffix) and not p.name.startswith("."))


def local_copy(uri: str) -> Path:
    """A local path for ``uri``: itself when local, else a cached copy of the file or folder."""
    if "://" not in uri or uri.startswith("file://"):
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
