"""The experiment report asset, the sensor that reads it and the job that ends an experiment,
over a DuckDB warehouse and published versions in a folder."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pandas as pd
import pytest
from dagster import DagsterInstance, RunRequest, build_sensor_context, materialize

from recsys_assets.core.io.artifacts import SERVING_MANIFEST, Artifacts
from recsys_assets.core.warehouse.tables import LOG_TABLES
from recsys_assets.defs.assets.monitoring import experiment_report
from recsys_assets.defs.automation import experiment_sensor
from recsys_assets.defs.environments import SettingsResource
from recsys_assets.defs.jobs import end_experiment
from recsys_assets_tests.conftest import make_settings
from recsys_assets_tests.experiments.test_report import DAY, _arm
from recsys_assets_tests.serving.versions import publish_version
from serving.request_log import DuckDBSink

EXPERIMENT = "v1-vs-v2"


def _setup(tmp_path: Path, treatment_clicks: int, **experiments: Any) -> tuple[Any, SettingsResource]:
    settings = make_settings(tmp_path, monitoring={"experiments": {"min_requests": 500, **experiments}})
    root = Path(settings.artifacts.root)
    publish_version(root, "v1")
    publish_version(root, "v2", seed=2, rollout="ab", share=0.5)
    pd.DataFrame({"item_id": [f"I{i:03d}" for i in range(60)]}).to_parquet(root / "items.parquet")
    sink = DuckDBSink(settings.warehouse.duckdb_path)
    for arm, clicks in (("control", 120), ("treatment", treatment_clicks)):
        requests, events = _arm(EXPERIMENT, arm, 600, clicks, 2.0, ["I000"])
        sink.write(LOG_TABLES["recommendation_requests"], requests)
        sink.write(LOG_TABLES["feedback_events"], events)
    return settings, SettingsResource.of(settings)


def _report_and_sense(instance: DagsterInstance, resource: SettingsResource) -> Any:
    result = materialize([experiment_report], instance=instance, resources={"settings": resource},
                         partition_key=str(DAY))  # fmt: skip
    assert result.success
    metadata = result.asset_materializations_for_node("experiment_report")[0].metadata
    assert metadata["experiments"].value == [EXPERIMENT]
    assert (
        f"plot_{EXPERIMENT}" in metadata
        and "| v1-vs-v2 | treatment | ctr_difference |" in metadata["report"].value
    )
    context = build_sensor_context(instance=instance, resources={"settings": resource})
    return experiment_sensor.evaluate_tick(context)


def test_a_worse_treatment_is_stopped_by_the_sensor(tmp_path: Path) -> None:
    settings, resource = _setup(tmp_path, treatment_clicks=30)
    with DagsterInstance.ephemeral() as instance:
        tick = _report_and_sense(instance, resource)
        (request,) = tick.run_requests
        assert isinstance(request, RunRequest)
        assert {k: request.tags[k] for k in ("experiment", "arm", "action")} == {
            "experiment": EXPERIMENT,
            "arm": "treatment",
            "action": "stop",
        }
        run = end_experiment.execute_in_process(run_config=request.run_config, instance=instance,
                                                resources={"settings": resource})  # fmt: skip
        assert run.success
        manifest = json.loads(Path(Artifacts(settings.artifacts.root).uri(SERVING_MANIFEST)).read_text())
        assert manifest["version"] == "v1" and "experiment" not in manifest
        # The same report read again: nothing new, nothing requested twice.
        again = experiment_sensor.evaluate_tick(
            build_sensor_context(instance=instance, resources={"settings": resource}, cursor=tick.cursor)
        )
        assert not again.run_requests
        # Ending an experiment that is no longer running fails, naming it.
        late = end_experiment.execute_in_process(
            run_config=request.run_config,
            instance=instance,
            resources={"settings": resource},
            raise_on_error=False,
        )
        assert not late.success
        assert "experiment v1-vs-v2 is no longer running (running: none)" in str(late.all_events)


@pytest.mark.parametrize("auto_promote", [False, True])
def test_a_better_treatment_is_proposed_or_promoted(tmp_path: Path, auto_promote: bool) -> None:
    settings, resource = _setup(tmp_path, treatment_clicks=300, auto_promote=auto_promote)
    with DagsterInstance.ephemeral() as instance:
        tick = _report_and_sense(instance, resource)
        if not auto_promote:
            assert not tick.run_requests
            assert "v1-vs-v2: treatment is significantly better (ctr_difference +0.3000" in tick.skip_message
            assert "RECSYS_AUTO_PROMOTE=true" in tick.skip_message
            return
        (request,) = tick.run_requests
        assert request.tags["action"] == "promote"
        assert end_experiment.execute_in_process(run_config=request.run_config, instance=instance,
                                                 resources={"settings": resource}).success  # fmt: skip
        manifest = json.loads(Path(Artifacts(settings.artifacts.root).uri(SERVING_MANIFEST)).read_text())
        assert (
            manifest["version"] == "v2" and manifest["files"]["items.npy"]["path"] == "versions/v2/items.npy"
        )
