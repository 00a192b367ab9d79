"""One codec per storage format: how an object becomes a file, is read back, and is described.

The Dagster IO manager and the job modules (which read and write by URI inside Vertex AI
containers) both go through these, so an artifact written by either is byte-for-byte what the
other reads. Artifacts are stored in their natural formats, never pickled, so people and other
systems read them without this package. The format follows the file's extension.
"""

from __future__ import annotations

import io
import json
import shutil
from abc import ABC, abstractmethod
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path, PurePosixPath
from typing import IO, Any, ClassVar

import numpy as np
import pandas as pd
import pyarrow.parquet as pq

from recsys_assets.core.io.storage import atomic_write, to_path


class Codec(ABC):
    """How one kind of Python object becomes one file."""

    extension: ClassVar[str]

    @abstractmethod
    def dump(self, obj: Any, stream: IO[bytes]) -> None: ...

    @abstractmethod
    def load(self, stream: IO[bytes], columns: list[str] | None = None) -> Any:
        """The object; ``columns`` reads a subset where the format allows it (parquet)."""

    @abstractmethod
    def describe(self, obj: Any) -> dict[str, Any]:
        """Plain metadata for people: rows, columns, shape, dtype..."""


@dataclass(frozen=True)
class ParquetFile:
    """A parquet file already written on local disk, to be stored as an artifact as it is.

    Staging writes tables larger than memory this way; the IO manager copies the bytes.
    """

    path: Path


class ParquetCodec(Codec):
    """``pandas.DataFrame`` (or a ``ParquetFile``) <-> parquet."""

    extension = ".parquet"

    def dump(self, obj: pd.DataFrame | ParquetFile, stream: IO[bytes]) -> None:
        if isinstance(obj, ParquetFile):
            with obj.path.open("rb") as source:
                shutil.copyfileobj(source, stream, 8 * 1024 * 1024)
            return
        if not isinstance(obj, pd.DataFrame):
            raise TypeError(f"parquet artifacts hold a pandas DataFrame, got {type(obj).__name__}")
        obj.to_parquet(stream, index=False)

    def load(self, stream: IO[bytes], columns: list[str] | None = None) -> pd.DataFrame:
        return pd.read_parquet(stream, columns=columns)

    def describe(self, obj: pd.DataFrame | ParquetFile) -> dict[str, Any]:
        if isinstance(obj, ParquetFile):
            schema = pq.read_schema(obj.path)
            return {
                "rows": pq.read_metadata(obj.path).num_rows,
                "columns": {name: str(schema.field(name).type) for name in schema.names},
            }
        return {"rows": len(obj), "columns": {str(name): str(dtype) for name, dtype in obj.dtypes.items()}}


class NpyCodec(Codec):
    """A dense ``numpy.ndarray`` <-> ``.npy`` (no pickles)."""

    extension = ".npy"

    def dump(self, obj: np.ndarray, stream: IO[bytes]) -> None:
        if not isinstance(obj, np.ndarray):
            raise TypeError(f"npy artifacts hold a numpy array, got {type(obj).__name__}")
        np.save(stream, obj, allow_pickle=False)

    def load(self, stream: IO[bytes], columns: list[str] | None = None) -> np.ndarray:
        return np.load(io.BytesIO(stream.read()), allow_pickle=False)

    def describe(self, obj: np.ndarray) -> dict[str, Any]:
        return {"shape": list(obj.shape), "dtype": str(obj.dtype)}


class NpzCodec(Codec):
    """A mapping of names to arrays (edge lists: ``src``, ``dst``, ``weight``) <-> ``.npz``."""

    extension = ".npz"

    def dump(self, obj: Mapping[str, np.ndarray], stream: IO[bytes]) -> None:
        if not isinstance(obj, Mapping):
            raise TypeError(f"npz artifacts hold a mapping of arrays, got {type(obj).__name__}")
        np.savez(stream, allow_pickle=False, **{name: np.asarray(a) for name, a in obj.items()})

    def load(self, stream: IO[bytes], columns: list[str] | None = None) -> dict[str, np.ndarray]:
        with np.load(io.BytesIO(stream.read()), allow_pickle=False) as archive:
            return {name: archive[name] for name in archive.files}

    def describe(self, obj: Mapping[str, np.ndarray]) -> dict[str, Any]:
        arrays = {
            name: {"shape": list(np.shape(a)), "dtype": str(np.asarray(a).dtype)} for name, a in obj.items()
        }
        return {"arrays": arrays}


class JsonCodec(Codec):
    """A JSON-serialisable object (reports, maps, manifests) <-> pretty-printed ``.json``."""

    extension = ".json"

    def dump(self, obj: Any, stream: IO[bytes]) -> None:
        stream.write(json.dumps(obj, indent=2, allow_nan=False).encode("utf-8") + b"\n")

    def load(self, stream: IO[bytes], columns: list[str] | None = None) -> Any:
        return json.loads(stream.read())

    def describe(self, obj: Any) -> dict[str, Any]:
        """Its top-level keys as one line of text (the UI shows a list as raw JSON)."""
        if not (isinstance(obj, dict) and obj):
            return {}
        keys = [str(k) for k in obj]
        return {"keys": ", ".join(keys[:50]) + (f" and {len(keys) - 50} more" if len(keys) > 50 else "")}


PARQUET, NPY, NPZ, JSON = ParquetCodec(), NpyCodec(), NpzCodec(), JsonCodec()
CODECS: dict[str, Codec] = {codec.extension: codec for codec in (PARQUET, NPY, NPZ, JSON)}


def codec_for(path: str) -> Codec:
    """The codec of ``path``'s extension."""
    suffix = PurePosixPath(path).suffix
    if suffix not in CODECS:
        raise ValueError(
            f"{path}: no codec for {suffix or 'files without an extension'}; have {sorted(CODECS)}"
        )
    return CODECS[suffix]


def save(uri: str, obj: Any) -> int:
    """Write ``obj`` to ``uri`` atomically in the format of its extension; return bytes written."""
    codec = codec_for(uri)
    return atomic_write(to_path(uri), lambda stream: codec.dump(obj, stream))


def load(uri: str, columns: list[str] | None = None) -> Any:
    with to_path(uri).open("rb") as stream:
        return codec_for(uri).load(stream, columns)


def read_parquet(uri: str, columns: list[str] | None = None) -> pd.DataFrame:
    return _typed(uri, PARQUET, columns)


def read_npy(uri: str) -> np.ndarray:
    return _typed(uri, NPY)


def read_npz(uri: str) -> dict[str, np.ndarray]:
    return _typed(uri, NPZ)


def read_json(uri: str) -> Any:
    return _typed(uri, JSON)


def _typed(uri: str, codec: Codec, columns: list[str] | None = None) -> Any:
    if not uri.endswith(codec.extension):
        raise ValueError(f"{uri}: expected a {codec.extension} file")
    with to_path(uri).open("rb") as stream:
        return codec.load(stream, columns)


def npy_bytes(array: np.ndarray) -> bytes:
    """``array`` as the bytes of an ``.npy`` file (for files bundled and checksummed together)."""
    buffer = io.BytesIO()
    NPY.dump(array, buffer)
    return buffer.getvalue()


def npz_bytes(arrays: Mapping[str, np.ndarray]) -> bytes:
    """``arrays`` as the bytes of an ``.npz`` file."""
    buffer = io.BytesIO()
    NpzCodec().dump(arrays, buffer)
    return buffer.getvalue()
