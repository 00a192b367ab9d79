"""The artifact IO manager: each asset's value stored at its catalogue path, in the format of its
extension (``core/io/codecs.py``), the same on a local folder and on ``gs://``.

An asset names its catalogue entry in its definition metadata (``artifact_metadata``); a
partitioned one's files go in the entry's folder, one per partition key. Writes are atomic, so
a reader sees the old artifact or the new one, never half of one.
"""

from __future__ import annotations

from typing import Any

from dagster import (
    ConfigurableIOManagerFactory,
    InputContext,
    MetadataValue,
    OutputContext,
    UPathIOManager,
)
from pydantic import Field
from upath import UPath

from recsys_assets.core.io.artifacts import Artifact
from recsys_assets.core.io.codecs import Codec, codec_for
from recsys_assets.core.io.storage import atomic_write, is_local

#: The definition-metadata key naming an asset's catalogue entry.
ARTIFACT_KEY = "artifact"


def artifact_metadata(artifact: Artifact) -> dict[str, str]:
    """Definition metadata that stores an asset's value as ``artifact``."""
    return {ARTIFACT_KEY: artifact.path}


class PerPartition(dict[str, Any]):
    """An asset's value for several partitions at once (a single-run backfill).

    Return ``PerPartition({"2013-01": frame, "2013-02": frame})`` from a partitioned asset
    and each value is written to its own partition's file, with its own metadata.
    """


class ArtifactIOManager(UPathIOManager):
    """Stores outputs under ``base_path`` at their catalogue path, in the codec of its extension."""

    extension = None  # per artifact, from its catalogue path

    def _artifact(self, context: InputContext | OutputContext) -> Artifact:
        # On an input, the upstream output's metadata names the artifact.
        source = context.upstream_output if isinstance(context, InputContext) else context
        path = ((source.definition_metadata if source else None) or {}).get(ARTIFACT_KEY)
        if not path:
            raise ValueError(
                f"{context.asset_key.to_user_string()}: no {ARTIFACT_KEY!r} in its definition metadata; "
                "name its catalogue entry with artifact_metadata()"
            )
        return Artifact(str(path), writer=context.asset_key.to_user_string())

    def get_asset_relative_path(self, context: InputContext | OutputContext) -> UPath:
        artifact = self._artifact(context)
        suffix = "" if artifact.partitioned else artifact.extension
        return UPath(*f"{artifact.storage_path}{suffix}".split("/"))

    def get_path_for_partition(
        self, context: InputContext | OutputContext, path: UPath, partition: str
    ) -> UPath:
        return self.make_safe_partition_path(path, partition + self._artifact(context).extension)

    def make_directory(self, path: UPath) -> None:
        # Object stores have no directories; creating marker objects would only add clutter.
        if is_local(path):
            path.mkdir(parents=True, exist_ok=True)

    @staticmethod
    def _codec(path: UPath) -> Codec:
        return codec_for(path.name)

    def _write(self, obj: Any, path: UPath) -> dict[str, Any]:
        codec = self._codec(path)
        size = atomic_write(path, lambda stream: codec.dump(obj, stream))
        return {"bytes": size, **codec.describe(obj)}

    def dump_to_path(self, context: OutputContext, obj: Any, path: UPath) -> None:
        # UPathIOManager adds the file as "path" itself (under another key it showed twice).
        context.add_output_metadata(self._write(obj, path))

    def load_from_path(self, context: InputContext, path: UPath) -> Any:
        # An input may ask for a subset of a table's columns: ``metadata={"columns": [...]}``.
        columns = (context.definition_metadata or {}).get("columns")
        with path.open("rb") as stream:
            return self._codec(path).load(stream, columns)

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
            metadata = {"path": MetadataValue.path(str(path)), **self._write(obj[key], path)}
            context.step_context.add_asset_metadata(metadata, asset_key=context.asset_key, partition_key=key)


class ArtifactIOManagerFactory(ConfigurableIOManagerFactory):
    """An ``ArtifactIOManager`` on ``base_path`` (a folder or ``gs://bucket/prefix``)."""

    base_path: str = Field(description="The artifact root (settings: artifacts.root).")
    #: fsspec storage options (e.g. ``{"token": "anon"}`` for an emulator).
    storage_options: dict[str, Any] = Field(default_factory=dict)

    def create_io_manager(self, context: Any) -> ArtifactIOManager:
        return ArtifactIOManager(UPath(self.base_path, **self.storage_options))
