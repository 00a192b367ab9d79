"""A three-month backfill from the Dagster CLI, exactly as the README shows it."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

import pandas as pd
from dagster import AssetKey, DagsterInstance

from recsys_assets.devdata.synthetic import METADATA_FILE, REVIEWS_FILE, generate

REPO = Path(__file__).resolve().parents[2]
DAGSTER = str(Path(sys.executable).parent / "dagster")


def test_cli_backfill_of_three_months(tmp_path: Path) -> None:
    raw = tmp_path / "raw"
    generate(
        "small",
        raw,
        image_files=False,
        overrides={"n_items": 200, "n_users": 80, "n_reviews": 2_000, "n_reviewed_items": 150},
    )
    home = tmp_path / "dagster_home"
    home.mkdir()
    shutil.copy(REPO / "dagster.yaml", home / "dagster.yaml")
    env = {
        **{k: v for k, v in os.environ.items() if not k.startswith("RECSYS_")},
        "DAGSTER_HOME": str(home),
        "RECSYS_ARTIFACTS_ROOT": str(tmp_path / "artifacts"),
        "RECSYS_RAW_REVIEWS_URI": str(raw / REVIEWS_FILE),
        "RECSYS_RAW_METADATA_URI": str(raw / METADATA_FILE),
    }

    def dagster(*args: str) -> str:
        done = subprocess.run(
            [DAGSTER, "asset", "materialize", "-m", "recsys_assets.definitions", *args],
            cwd=REPO,
            env=env,
            capture_output=True,
            text=True,
            check=False,
            timeout=300,
        )
        assert done.returncode == 0, done.stdout[-3000:] + done.stderr[-3000:]
        return done.stdout + done.stderr

    dagster("--select", "items,items_quarantine")
    log = dagster(
        "--select", "interactions,interactions_quarantine", "--partition-range", "2013-01...2013-03"
    )
    assert "RUN_SUCCESS" in log

    stored = sorted(p.stem for p in (tmp_path / "artifacts" / "interactions").glob("*.parquet"))
    assert stored == ["2013-01", "2013-02", "2013-03"]
    assert all(
        len(pd.read_parquet(tmp_path / "artifacts" / "interactions" / f"{m}.parquet")) > 0 for m in stored
    )
    os.environ["DAGSTER_HOME"], previous = str(home), os.environ.get("DAGSTER_HOME")
    try:
        with DagsterInstance.get() as instance:
            done = instance.get_materialized_partitions(AssetKey("interactions"))
    finally:
        if previous is None:
            os.environ.pop("DAGSTER_HOME")
        else:
            os.environ["DAGSTER_HOME"] = previous
    assert done == {"2013-01", "2013-02", "2013-03"}
    assert "Asset check 'interactions_item_in_items' on 'interactions' passed" in log
    assert "did not pass" not in log
