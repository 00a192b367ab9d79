"""Artifact IO managers: every format round-trips on a local folder and on the GCS emulator."""

from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import pytest
from dagster import (
    AssetExecutionContext,
    AssetIn,
    DailyPartitionsDefinition,
    Definitions,
    asset,
    materialize,
)
from upath import UPath

from recsys_assets.core.artifacts import atomic_write
from resources.environments import IO_MANAGER_KEYS, artifact_io_managers
from resources.io_managers import ArtifactIOManager, JsonFormat, PerPartition

FRAME = pd.DataFrame({"item_id": ["a", "b", "c"], "price": [1.5, None, 3.0], "n": [1, 2, 3]})
MATRIX = np.arange(12, dtype=np.float32).reshape(3, 4)
EDGES = {"src": np.array([0, 1, 2]), "dst": np.array([1, 2, 0]), "weight": np.array([0.5, 1.0, 0.25])}
REPORT = {"recall@20": 0.0433, "models": ["gat", "popularity"], "nested": {"k": 20}}


@asset(metadata={"storage_path": "tables/frame"})
def frame_asset() -> pd.DataFrame:
    return FRAME


@asset(io_manager_key=IO_MANAGER_KEYS["npy"], metadata={"storage_path": "embeddings/txt"})
def matrix_asset() -> np.ndarray:
    return MATRIX


@asset(io_manager_key=IO_MANAGER_KEYS["npz"], metadata={"storage_path": "graphs/ui_edges"})
def edges_asset() -> dict[str, np.ndarray]:
    return EDGES


@asset(io_manager_key=IO_MANAGER_KEYS["json"])
def report_asset() -> dict[str, Any]:
    return REPORT


@asset(ins={"frame_asset": AssetIn(metadata={"columns": ["item_id"]})})
def reader(
    frame_asset: pd.DataFrame,
    matrix_asset: np.ndarray,
    edges_asset: dict[str, np.ndarray],
    report_asset: dict[str, Any],
) -> pd.DataFrame:
    """Reads each artifact back through its IO manager and records what it saw."""
    assert list(frame_asset.columns) == ["item_id"]  # only the requested column is read
    assert frame_asset["item_id"].tolist() == ["a", "b", "c"]
    np.testing.assert_array_equal(matrix_asset, MATRIX)
    assert matrix_asset.dtype == np.float32
    assert set(edges_asset) == {"src", "dst", "weight"}
    np.testing.assert_array_equal(edges_asset["weight"], EDGES["weight"])
    assert report_asset == REPORT
    return pd.DataFrame({"ok": [True]})


ALL = [frame_asset, matrix_asset, edges_asset, report_asset, reader]


def _round_trip(root: UPath, storage_options: dict[str, Any]) -> None:
    result = materialize(ALL, resources=artifact_io_managers(str(root), storage_options))
    assert result.success
    expected = {
        "frame_asset": "tables/frame.parquet",
        "matrix_asset": "embeddings/txt.npy",
        "edges_asset": "graphs/ui_edges.npz",
        "report_asset": "report_asset.json",
    }
    for name, relative in expected.items():
        (event,) = [m for m in result.get_asset_materialization_events() if m.asset_key.path == [name]]
        metadata = event.materialization.metadata
        target = root / relative
        assert metadata["uri"].value == str(target)
        assert metadata["bytes"].value == target.stat().st_size > 0
    # Files are readable without this package, in their natural formats.
    assert pd.read_parquet((root / "tables/frame.parquet").open("rb")).equals(FRAME)
    with (root / "embeddings/txt.npy").open("rb") as fh:
        np.testing.assert_array_equal(np.load(fh), MATRIX)
    frame_md = next(
        m for m in result.get_asset_materialization_events() if m.asset_key.path == ["frame_asset"]
    ).materialization.metadata
    assert frame_md["rows"].value == 3
    matrix_md = next(
        m for m in result.get_asset_materialization_events() if m.asset_key.path == ["matrix_asset"]
    ).materialization.metadata
    assert matrix_md["shape"].value == [3, 4]


def test_round_trip_local(tmp_path: Path) -> None:
    _round_trip(UPath(tmp_path), {})
    leftovers = [p.name for p in tmp_path.rglob("*.tmp")]
    assert leftovers == []


def test_round_trip_gcs_emulator(gcs_options: dict[str, str]) -> None:
    _round_trip(UPath("gs://test-bucket/roundtrip", **gcs_options), gcs_options)


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
        JsonFormat().write({"x": float("nan")}, __import__("io").BytesIO())


DAYS = DailyPartitionsDefinition(start_date="2024-01-01", end_date="2024-01-04")


@asset(partitions_def=DAYS, metadata={"storage_path": "days"})
def daily(context: AssetExecutionContext) -> PerPartition:
    return PerPartition(
        {key: pd.DataFrame({"day": [key] * (i + 1)}) for i, key in enumerate(context.partition_keys)}
    )


def test_per_partition_output_writes_one_file_per_partition(tmp_path: Path) -> None:
    from dagster import DagsterInstance
    from dagster._core.storage.tags import ASSET_PARTITION_RANGE_END_TAG, ASSET_PARTITION_RANGE_START_TAG

    defs = Definitions(assets=[daily], resources=artifact_io_managers(str(tmp_path)))
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
    @asset(partitions_def=DAYS, name="daily")
    def wrong_keys() -> PerPartition:
        return PerPartition({"2024-01-02": pd.DataFrame({"x": [1]})})

    result = materialize(
        [wrong_keys],
        partition_key="2024-01-01",
        resources=artifact_io_managers(str(tmp_path)),
        raise_on_error=False,
    )
    assert not result.success
    message = result.failure_data_for_node("daily").error.cause.message  # type: ignore[union-attr]
    assert "PerPartition keys ['2024-01-02'] do not match the run's partitions ['2024-01-01']" in message


def test_manager_uses_format_extension(tmp_path: Path) -> None:
    manager = ArtifactIOManager(UPath(tmp_path), JsonFormat())
    assert manager.extension == ".json"
