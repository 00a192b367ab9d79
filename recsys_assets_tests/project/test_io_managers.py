"""The artifact IO manager and the codecs it shares with the job modules: every format round-trips
on a local folder and on the GCS emulator, at its catalogue path, atomically."""

import io
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import pytest
from dagster import (
    AssetExecutionContext,
    AssetIn,
    DagsterInstance,
    DailyPartitionsDefinition,
    Definitions,
    asset,
    materialize,
)
from dagster._core.storage.tags import ASSET_PARTITION_RANGE_END_TAG, ASSET_PARTITION_RANGE_START_TAG
from upath import UPath

from recsys_assets.core.io import codecs
from recsys_assets.core.io.artifacts import Artifact
from recsys_assets.core.io.storage import atomic_write
from recsys_assets.defs.io_manager import ArtifactIOManagerFactory, PerPartition, artifact_metadata

FRAME = pd.DataFrame({"item_id": ["a", "b", "c"], "price": [1.5, None, 3.0], "n": [1, 2, 3]})
MATRIX = np.arange(12, dtype=np.float32).reshape(3, 4)
EDGES = {"src": np.array([0, 1, 2]), "dst": np.array([1, 2, 0]), "weight": np.array([0.5, 1.0, 0.25])}
REPORT = {"recall@20": 0.0433, "models": ["gat", "popularity"], "nested": {"k": 20}}
PATHS = {
    "frame_asset": "tables/frame.parquet",
    "matrix_asset": "embeddings/txt.npy",
    "edges_asset": "graphs/ui_edges.npz",
    "report_asset": "eval/report.json",
}


def _stored(name: str) -> dict[str, str]:
    return artifact_metadata(Artifact(PATHS[name], name))


@asset(metadata=_stored("frame_asset"))
def frame_asset() -> pd.DataFrame:
    return FRAME


@asset(metadata=_stored("matrix_asset"))
def matrix_asset() -> np.ndarray:
    return MATRIX


@asset(metadata=_stored("edges_asset"))
def edges_asset() -> dict[str, np.ndarray]:
    return EDGES


@asset(metadata=_stored("report_asset"))
def report_asset() -> dict[str, Any]:
    return REPORT


@asset(ins={"frame_asset": AssetIn(metadata={"columns": ["item_id"]})})
def reader(
    frame_asset: pd.DataFrame,
    matrix_asset: np.ndarray,
    edges_asset: dict[str, np.ndarray],
    report_asset: dict[str, Any],
) -> None:
    """Reads each artifact back through the IO manager and records what it saw."""
    assert list(frame_asset.columns) == ["item_id"]  # only the requested column is read
    assert frame_asset["item_id"].tolist() == ["a", "b", "c"]
    np.testing.assert_array_equal(matrix_asset, MATRIX)
    assert matrix_asset.dtype == np.float32
    assert set(edges_asset) == {"src", "dst", "weight"}
    np.testing.assert_array_equal(edges_asset["weight"], EDGES["weight"])
    assert report_asset == REPORT


ALL = [frame_asset, matrix_asset, edges_asset, report_asset, reader]


def _round_trip(root: UPath, storage_options: dict[str, Any]) -> None:
    manager = ArtifactIOManagerFactory(base_path=str(root), storage_options=storage_options)
    result = materialize(ALL, resources={"io_manager": manager})
    assert result.success
    for name, relative in PATHS.items():
        (event,) = [m for m in result.get_asset_materialization_events() if m.asset_key.path == [name]]
        metadata = event.materialization.metadata
        target = root / relative
        assert metadata["path"].value == str(target) and "uri" not in metadata  # once, not twice
        assert metadata["bytes"].value == target.stat().st_size > 0
    # Files are readable without this package, in their natural formats.
    assert pd.read_parquet((root / "tables/frame.parquet").open("rb")).equals(FRAME)
    with (root / "embeddings/txt.npy").open("rb") as fh:
        np.testing.assert_array_equal(np.load(fh), MATRIX)
    events = {
        m.asset_key.path[0]: m.materialization.metadata for m in result.get_asset_materialization_events()
    }
    assert events["frame_asset"]["rows"].value == 3
    assert events["frame_asset"]["columns"].value == {"item_id": "object", "price": "float64", "n": "int64"}
    assert (
        events["matrix_asset"]["shape"].value == [3, 4] and events["matrix_asset"]["dtype"].value == "float32"
    )
    assert events["edges_asset"]["arrays"].value["src"] == {"shape": [3], "dtype": "int64"}
    assert events["report_asset"]["keys"].value == "recall@20, models, nested"


def test_round_trip_local(tmp_path: Path) -> None:
    _round_trip(UPath(tmp_path), {})
    leftovers = [p.name for p in tmp_path.rglob("*.tmp")]
    assert leftovers == []


def test_round_trip_gcs_emulator(gcs_options: dict[str, str]) -> None:
    _round_trip(UPath("gs://test-bucket/roundtrip", **gcs_options), gcs_options)


def test_the_job_side_reads_what_the_io_manager_wrote(tmp_path: Path) -> None:
    """One codec per format: ``codecs.load`` (what job modules use) reads the IO manager's files."""
    assert materialize(
        ALL, resources={"io_manager": ArtifactIOManagerFactory(base_path=str(tmp_path))}
    ).success
    assert codecs.read_parquet(str(tmp_path / PATHS["frame_asset"])).equals(FRAME)
    np.testing.assert_array_equal(codecs.read_npy(str(tmp_path / PATHS["matrix_asset"])), MATRIX)
    assert codecs.read_json(str(tmp_path / PATHS["report_asset"])) == REPORT
    np.testing.assert_array_equal(codecs.load(str(tmp_path / PATHS["edges_asset"]))["dst"], EDGES["dst"])
    with pytest.raises(ValueError, match=r"report\.json: expected a \.npy file"):
        codecs.read_npy(str(tmp_path / PATHS["report_asset"]))
    with pytest.raises(ValueError, match=r"model\.pt: no codec for \.pt"):
        codecs.save(str(tmp_path / "model.pt"), b"")


def test_an_asset_without_a_catalogue_entry_is_named(tmp_path: Path) -> None:
    @asset
    def unnamed() -> int:
        return 1

    result = materialize(
        [unnamed],
        resources={"io_manager": ArtifactIOManagerFactory(base_path=str(tmp_path))},
        raise_on_error=False,
    )
    message = result.failure_data_for_node("unnamed").error.cause.message  # type: ignore[union-attr]
    assert "unnamed: no 'artifact' in its definition metadata" in message


def test_atomic_write_keeps_old_file_when_writer_fails(tmp_path: Path) -> None:
    target = UPath(tmp_path / "report.json")
    atomic_write(target, lambda stream: stream.write(b'{"v": 1}'))

    def broken(stream: Any) -> None:
        stream.write(b'{"v": 2, "half')
        raise RuntimeError("disk full")

    with pytest.raises(RuntimeError, match="disk full"):
        atomic_write(target, broken)
    assert target.read_bytes() == b'{"v": 1}'
    assert sorted(p.name for p in tmp_path.iterdir()) == ["report.json"]


def test_json_rejects_nan() -> None:
    with pytest.raises(ValueError, match="Out of range float values"):
        codecs.JSON.dump({"x": float("nan")}, io.BytesIO())


DAYS = DailyPartitionsDefinition(start_date="2024-01-01", end_date="2024-01-04")


@asset(partitions_def=DAYS, metadata=artifact_metadata(Artifact("days/{partition}.parquet", "daily")))
def daily(context: AssetExecutionContext) -> PerPartition:
    return PerPartition(
        {key: pd.DataFrame({"day": [key] * (i + 1)}) for i, key in enumerate(context.partition_keys)}
    )


def test_per_partition_output_writes_one_file_per_partition(tmp_path: Path) -> None:
    defs = Definitions(
        assets=[daily], resources={"io_manager": ArtifactIOManagerFactory(base_path=str(tmp_path))}
    )
    with DagsterInstance.ephemeral() as instance:
        result = defs.resolve_implicit_global_asset_job_def().execute_in_process(
            instance=instance,
            tags={ASSET_PARTITION_RANGE_START_TAG: "2024-01-01", ASSET_PARTITION_RANGE_END_TAG: "2024-01-03"},
        )
    assert result.success
    for i, day in enumerate(["2024-01-01", "2024-01-02", "2024-01-03"]):
        frame = pd.read_parquet(tmp_path / "days" / f"{day}.parquet")
        assert frame["day"].tolist() == [day] * (i + 1)
    rows = {
        m.partition: m.materialization.metadata["rows"].value
        for m in result.get_asset_materialization_events()
    }
    assert rows == {"2024-01-01": 1, "2024-01-02": 2, "2024-01-03": 3}


def test_per_partition_keys_must_match_the_run(tmp_path: Path) -> None:
    @asset(
        partitions_def=DAYS,
        name="daily",
        metadata=artifact_metadata(Artifact("days/{partition}.parquet", "d")),
    )
    def wrong_keys() -> PerPartition:
        return PerPartition({"2024-01-02": pd.DataFrame({"x": [1]})})

    result = materialize(
        [wrong_keys],
        partition_key="2024-01-01",
        resources={"io_manager": ArtifactIOManagerFactory(base_path=str(tmp_path))},
        raise_on_error=False,
    )
    assert not result.success
    message = result.failure_data_for_node("daily").error.cause.message  # type: ignore[union-attr]
    assert "PerPartition keys ['2024-01-02'] do not match the run's partitions ['2024-01-01']" in message
