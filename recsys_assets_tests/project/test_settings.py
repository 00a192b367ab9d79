"""The settings tree: every variable maps to its field, defaults follow the environment, a bad
value is named, the README's table is the tree's, nothing else reads ``RECSYS_*``, and the
resources take their values from the tree."""

from __future__ import annotations

import re
from pathlib import Path

import pytest
from pydantic import BaseModel

from recsys_assets.settings import PROJECT_ROOT, Settings, SettingsError, load_settings
from recsys_assets.settings.base import Section, bindings

ROOT = Path(__file__).resolve().parents[2]


def test_every_field_is_documented_and_every_variable_is_unique_to_its_meaning() -> None:
    def walk(model: type[BaseModel], prefix: str) -> list[str]:
        missing = []
        for name, field in model.model_fields.items():
            if not field.description:
                missing.append(prefix + name)
            if isinstance(field.annotation, type) and issubclass(field.annotation, Section):
                missing += walk(field.annotation, f"{prefix}{name}.")
        return missing

    assert walk(Settings, "") == []
    by_env: dict[str, list[str]] = {}
    for binding in bindings(Settings):
        by_env.setdefault(binding.env, []).append(binding.dotted)
    # One variable sets several fields only where they mean the same thing.
    assert {env: paths for env, paths in by_env.items() if len(paths) > 1} == {
        "RECSYS_MAX_EPOCHS": [
            "models.mf.epochs",
            "models.lightgcn.epochs",
            "models.sasrec.epochs",
            "models.gat.epochs",
        ]
    }
    assert all(env.startswith("RECSYS_") for env in by_env)


def test_defaults_need_no_variable_and_follow_the_environment() -> None:
    local = Settings.from_env({})
    assert local.env == "local" and local.artifacts.root == str(PROJECT_ROOT / "data" / "artifacts")
    assert local.data.reviews_uri == str(PROJECT_ROOT / "data/raw/small/reviews_Electronics_5.json.gz")
    assert local.warehouse.kind == "duckdb" and local.serving.log_sink == "duckdb"
    assert local.embeddings.image.encoder == "efficientnet-lite0" and not local.drift_automation_on()
    gcp = Settings.from_env({"RECSYS_ENV": "gcp", "RECSYS_GCS_BUCKET": "b", "RECSYS_GCS_PREFIX": "/p/"})
    assert gcp.artifacts.root == "gs://b/p" and gcp.data.metadata_uri == "gs://b/raw/meta_Electronics.json.gz"
    assert gcp.warehouse.kind == "bigquery" and gcp.serving.log_sink == "bigquery"
    assert (
        gcp.embeddings.image.encoder == "clip" and gcp.jobs.pipes_bucket == "b" and gcp.drift_automation_on()
    )
    # Explicit values win over the environment's defaults.
    chosen = Settings.from_env({"RECSYS_ENV": "gcp", "RECSYS_IMAGE_ENCODER": "efficientnet-lite0",
                                "RECSYS_ARTIFACTS_ROOT": "/mnt/a", "RECSYS_LOG_SINK": "none"})  # fmt: skip
    assert chosen.embeddings.image.encoder == "efficientnet-lite0" and chosen.artifacts.root == "/mnt/a"
    assert chosen.serving.log_sink == "none"


def test_variables_reach_their_fields() -> None:
    environ = {
        "RECSYS_GAT_HEADS": "4", "RECSYS_GAT_LOSS": "bpr", "RECSYS_MAX_EPOCHS": "7", "RECSYS_KNN_K": " 15 ",
        "RECSYS_DRIFT_THRESHOLDS": '{"ctr": 0.02}', "RECSYS_INDEX_KIND": "ivf", "RECSYS_MONTHS_START": "",
    }  # fmt: skip
    got = Settings.from_env(environ)
    assert got.models.gat.heads == 4 and got.models.gat.loss == "bpr" and got.models.gat.negatives == 16
    assert got.models.mf.epochs == got.models.lightgcn.epochs == got.models.gat.epochs == 7
    assert got.graphs.knn.k == 15 and got.serving.index.kind == "ivf"
    assert got.monitoring.metrics()["ctr"].threshold == 0.02
    assert got.data.months_start == "2012-08"  # a blank variable is unset
    # The JSON object of GAT hyperparameters is applied last: it wins over RECSYS_GAT_HEADS.
    both = Settings.from_env(
        {"RECSYS_GAT_HEADS": "4", "RECSYS_GAT_CONFIG": '{"heads": 8, "temperature": 0.1}'}
    )
    assert both.models.gat.heads == 8 and both.models.gat.temperature == 0.1


@pytest.mark.parametrize(
    ("environ", "message"),
    [
        ({"RECSYS_GAT_HEADS": "0"}, "RECSYS_GAT_HEADS='0': Input should be greater than or equal to 1"),
        (
            {"RECSYS_TEXT_BACKEND": "gpu"},
            "RECSYS_TEXT_BACKEND='gpu': Input should be 'onnx-int8', 'onnx-fp32' or",
        ),
        ({"RECSYS_GAT_CONFIG": "{heads: 2}"}, "RECSYS_GAT_CONFIG='{heads: 2}' is not JSON"),
        ({"RECSYS_GAT_CONFIG": "[2]"}, "RECSYS_GAT_CONFIG='[2]': expected a JSON object"),
        (
            {"RECSYS_GAT_CONFIG": '{"tau": 2}'},
            "RECSYS_GAT_CONFIG='{\"tau\": 2}' (models.gat.tau): Extra inputs",
        ),
        ({"RECSYS_GAT_CONFIG": '{"fanouts": [5]}'}, "fanouts [5]: expected one per layer (2)"),
        ({"RECSYS_DRIFT_THRESHOLDS": '{"psi": 1}'}, "thresholds for unknown metrics ['psi']"),
        ({"RECSYS_MONTHS_START": "2013-13"}, "RECSYS_MONTHS_START='2013-13': String should match pattern"),
        ({"RECSYS_MONTHS_END": "2010-01"}, "months_end 2010-01 must come after months_start 2012-08"),
        (
            {"RECSYS_STAGING_ENGINE": "bigquery"},
            "data.staging_engine 'bigquery' stages the dumps in the warehouse's BigQuery dataset; "
            "the warehouse is 'duckdb' (set RECSYS_WAREHOUSE=bigquery)",
        ),
    ],
)
def test_a_bad_value_is_named(environ: dict[str, str], message: str) -> None:
    with pytest.raises(SettingsError) as raised:
        Settings.from_env(environ)
    assert message in str(raised.value)


def test_settings_are_read_once() -> None:
    assert load_settings() is load_settings()


def test_nothing_else_reads_recsys_variables() -> None:
    reads = re.compile(r"(environ(\.get)?[\[(]|getenv\()\s*[\"']RECSYS_")
    offenders = [
        str(path.relative_to(ROOT))
        for package in ("recsys_assets", "resources", "serving")
        for path in (ROOT / package).rglob("*.py")
        if "settings" not in path.parts and reads.search(path.read_text())
    ]
    assert offenders == []


def test_the_settings_resource_shows_the_tree_and_takes_run_overrides() -> None:
    from recsys_assets.defs.environments import SettingsResource, build_resources

    settings = Settings.from_env({"RECSYS_GAT_HEADS": "2", "RECSYS_ADMIN_API_KEY": "secret"})
    resource = SettingsResource.of(settings)
    assert resource.values["models"]["gat"]["heads"] == 2
    assert "admin_api_key" not in resource.values["serving"]  # the UI shows the tree, not secrets
    assert resource.tree.models == settings.models
    changed = SettingsResource(values=resource.values, overrides={"models": {"gat": {"layers": 3}}})
    assert changed.tree.models.gat.layers == 3 and changed.tree.models.gat.heads == 2
    with pytest.raises(
        ValueError, match=r"models\.gat\.layers\n  Input should be greater than or equal to 1"
    ):
        _ = SettingsResource(values=resource.values, overrides={"models": {"gat": {"layers": 0}}}).tree
    # The resources take every value from the tree, environment by environment.
    gcp = Settings.from_env(
        {"RECSYS_ENV": "gcp", "RECSYS_VERTEX_REGION": "europe-west4", "RECSYS_GCP_PROJECT": "p"}
    )
    resources = build_resources(gcp)
    runner = resources["job_runner"]
    assert (runner.project, runner.region, runner.pipes_bucket) == ("p", "europe-west4", "recsys-artifacts")
    assert (runner.poll_interval, runner.max_preemption_retries) == (gcp.jobs.poll_interval_s, 3)
    assert resources["io_manager"].base_path == "gs://recsys-artifacts/recsys"
    assert resources["io_manager"].storage_options == {"project": "p"}
