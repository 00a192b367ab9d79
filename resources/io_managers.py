"""Artifact storage: one ``UPathIOManager`` per file format, the same on a folder and on ``gs://``.

Each artifact is stored in its natural format (parquet, npy, npz, json) so that people and
other systems can read it without this package. A new format is one ``ArtifactFormat``
subclass (extension, write, read, describe) and one entry in ``FORMATS``.

Writes are atomic: locally the bytes go to a hidden temporary file that is renamed over
the target; on GCS an object becomes visible only when its upload completes. Either way a
reader sees the old artifact or the new one, never half of one.
"""

from __future__ import annotations

import io
import json
from abc import ABC, abstractmethod
from collections.abc import Callable, Mapping
from typing import IO, Any, ClassVar, Literal

import numpy as np
import pandas as pd
from dagster import (
    ConfigurableIOManagerFactory,
    InputContext,
    MetadataValue,
    OutputContext,
    UPathIOManager,
)
from pydantic import Field
from upath import UPath

from recsys_assets.core.artifacts import atomic_write, is_local


class ArtifactFormat(ABC):
    """How one kind of Python object becomes one file."""

    extension: ClassVar[str]

    @abstractmethod
    def write(self, obj: Any, stream: IO[bytes]) -> None: ...

    @abstractmethod
    def read(self, stream: IO[bytes], context: InputContext) -> Any: ...

    @abstractmethod
    def describe(self, obj: Any) -> dict[str, Any]:
        """Metadata for the Dagster UI: rows, columns, shape, dtype..."""


class ParquetFormat(ArtifactFormat):
    """``pandas.DataFrame`` <-> parquet. An input may ask for a subset: ``metadata={"columns": [...]}``."""

    extension = ".parquet"

    def write(self, obj: pd.DataFrame, stream: IO[bytes]) -> None:
        if not isinstance(obj, pd.DataFrame):
            raise TypeError(f"parquet artifacts hold a pandas DataFrame, got {type(obj).__name__}")
        obj.to_parquet(stream, index=False)

    def read(self, stream: IO[bytes], context: InputContext) -> pd.DataFrame:
        columns = (context.definition_metadata or {}).get("columns")
        return pd.read_parquet(stream, columns=columns)

    def describe(self, obj: pd.DataFrame) -> dict[str, Any]:
        return {
            "rows": MetadataValue.int(len(obj)),
            "columns": MetadataValue.json({str(name): str(dtype) for name, dtype in obj.dtypes.items()}),
        }


class NpyFormat(ArtifactFormat):
    """A dense ``numpy.ndarray`` <-> ``.npy`` (no pickles)."""

    extension = ".npy"

    def write(self, obj: np.ndarray, stream: IO[bytes]) -> None:
        if not isinstance(obj, np.ndarray):
            raise TypeError(f"npy artifacts hold a numpy array, got {type(obj).__name__}")
        np.save(stream, obj, allow_pickle=False)

    def read(self, stream: IO[bytes], context: InputContext) -> np.ndarray:
        return np.load(io.BytesIO(stream.read()), allow_pickle=False)

    def describe(self, obj: np.ndarray) -> dict[str, Any]:
        return {"shape": MetadataValue.json(list(obj.shape)), "dtype": MetadataValue.text(str(obj.dtype))}


class NpzFormat(ArtifactFormat):
    """A mapping of names to arrays (edge lists: ``src``, ``dst``, ``weight``) <-> ``.npz``."""

    extension = ".npz"

    def write(self, obj: Mapping[str, np.ndarray], stream: IO[bytes]) -> None:
        if not isinstance(obj, Mapping):
            raise TypeError(f"npz artifacts hold a mapping of arrays, got {type(obj).__name__}")
        np.savez(stream, allow_pickle=False, **{name: np.asarray(a) for name, a in obj.items()})

    def read(self, stream: IO[bytes], context: InputContext) -> dict[str, np.ndarray]:
        with np.load(io.BytesIO(stream.read()), allow_pickle=False) as archive:
            return {name: archive[name] for name in archive.files}

    def describe(self, obj: Mapping[str, np.ndarray]) -> dict[str, Any]:
        return {
            "arrays": MetadataValue.json(
                {
                    name: {"shape": list(np.shape(a)), "dtype": str(np.asarray(a).dtype)}
                    for name, a in obj.items()
                }
            )
        }


class JsonFormat(ArtifactFormat):
    """A JSON-serialisable dict (reports, configs) <-> pretty-printed ``.json``."""

    extension = ".json"

    def write(self, obj: Any, stream: IO[bytes]) -> None:
        stream.write(json.dumps(obj, indent=2, allow_nan=False).encode("utf-8") + b"\n")

    def read(self, stream: IO[bytes], context: InputContext) -> Any:
        return json.loads(stream.read())

    def describe(self, obj: Any) -> dict[str, Any]:
        keys = list(obj) if isinstance(obj, dict) else []
        return {"keys": MetadataValue.json(keys[:50])} if keys else {}


FormatName = Literal["parquet", "npy", "npz", "json"]
FORMATS: dict[str, Callable[[], ArtifactFormat]] = {
    "parquet": ParquetFormat,
    "npy": NpyFormat,
    "npz": NpzFormat,
    "json": JsonFormat,
}


class PerPartition(dict[str, Any]):
    """An asset's value for several partitions at once (a single-run backfill).

    Return ``PerPartition({"2013-01": frame, "2013-02": frame})`` from a partitioned asset
    and each value is written to its own partition's file, with its own metadata.
    """


class ArtifactIOManager(UPathIOManager):
    """Stores outputs under ``base_path`` in one ``ArtifactFormat``.

    The file name follows the asset key, or the asset's ``storage_path`` definition
    metadata when it sets one (``"embeddings/txt"`` -> ``embeddings/txt.npy``); partitions
    are files named by their key inside that folder.
    """

    def __init__(self, base_path: UPath, artifact_format: ArtifactFormat):
        super().__init__(base_path=base_path)
        self.artifact_format = artifact_format
        self.extension = artifact_format.extension

    def get_asset_relative_path(self, context: InputContext | OutputContext) -> UPath:
        # On an input, the upstream output's metadata holds the storage path.
        source = context.upstream_output if isinstance(context, InputContext) else context
        storage_path = ((source.definition_metadata if source else None) or {}).get("storage_path")
        if storage_path:
            return UPath(*str(storage_path).strip("/").split("/"))
        return super().get_asset_relative_path(context)

    def make_directory(self, path: UPath) -> None:
        # Object stores have no directories; creating marker objects would only add clutter.
        if is_local(path):
            path.mkdir(parents=True, exist_ok=True)

    def _write(self, obj: Any, path: UPath) -> dict[str, Any]:
        size = atomic_write(path, lambda stream: self.artifact_format.write(obj, stream))
        return {
            "uri": MetadataValue.path(str(path)),
            "bytes": MetadataValue.int(size),
            **self.artifact_format.describe(obj),
        }

    def dump_to_path(self, context: OutputContext, obj: Any, path: UPath) -> None:
        context.add_output_metadata(self._write(obj, path))

    def load_from_path(self, context: InputContext, path: UPath) -> Any:
        with path.open("rb") as stream:
            return self.artifact_format.read(stream, context)

    def handle_output(self, context: OutputContext, obj: Any) -> None:
        if not isinstance(obj, PerPartition):
            if context.has_asset_partitions and len(context.asset_partition_keys) > 1:
                raise TypeError(
                    f"{context.asset_key.to_user_string()}: a run over "
                    f"{len(context.asset_partition_keys)} partitions must return PerPartition"
                    " with one value per partition key"
                )
            super().handle_output(context, obj)
            return
        paths = self._get_paths_for_partitions(context)
        if set(obj) != set(paths):
            raise ValueError(
                f"{context.asset_key.to_user_string()}: PerPartition keys {sorted(obj)} do not"
                f" match the run's partitions {sorted(paths)}"
            )
        for key, path in paths.items():
            self.make_directory(path.parent)
            context.log.debug(self.get_writing_output_log_message(path))
            metadata = self._write(obj[key], path)
            context.step_context.add_asset_metadata(metadata, asset_key=context.asset_key, partition_key=key)


class ArtifactIOManagerFactory(ConfigurableIOManagerFactory):
    """An ``ArtifactIOManager`` on ``base_path`` (a folder or ``gs://bucket/prefix``)."""

    base_path: str
    format: FormatName = "parquet"
    #: fsspec storage options (e.g. ``{"token": "anon"}`` for an emulator).
    storage_options: dict[str, Any] = Field(default_factory=dict)

    def create_io_manager(self, context: Any) -> ArtifactIOManager:
        return ArtifactIOManager(UPath(self.base_path, **self.storage_options), FORMATS[self.format]())
