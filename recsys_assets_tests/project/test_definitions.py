"""The Definitions load in every environment, with the designed keys, groups and dependencies."""

from __future__ import annotations

import json
import os
import subprocess
import sys

import pytest

from recsys_assets.core.models import registry

TRAINING_INPUTS = ["interaction_splits", "node_maps"]
DESCRIBE = """
import json
from recsys_assets.definitions import defs
graph = defs.resolve_asset_graph()
resources = defs.resources
print(json.dumps({
    "assets": {
        key.to_user_string(): {
            "group": graph.get(key).group_name,
            "deps": sorted(k.to_user_string() for k in graph.get(key).parent_keys),
            "partitioned": graph.get(key).partitions_def is not None,
            "description": graph.get(key).description,
        }
        for key in graph.get_all_asset_keys()
    },
    "checks": sorted(k.name for k in graph.asset_check_keys),
    "blocking": sorted(k.name for k in graph.asset_check_keys if graph.get_check_spec(k).blocking),
    "resources": sorted(resources),
    "io_roots": [resources["io_manager"].base_path],
    "raw": [resources["settings"].tree.data.reviews_uri, resources["settings"].tree.data.metadata_uri],
    "jobs": sorted(j.name for j in defs.jobs),
    "pools": {k.to_user_string(): sorted(graph.get(k).pools or []) for k in graph.get_all_asset_keys()},
    "job_runner": type(resources["job_runner"]).__name__,
    "image_encoder": resources["settings"].tree.embeddings.image.encoder,
    "warehouse": resources["settings"].tree.warehouse.kind,
    "automation": {
        **{s.name: s.default_status.value for s in defs.schedules},
        **{s.name: s.default_status.value for s in defs.sensors},
    },
    "retrain": sorted(
        k.to_user_string() for k in defs.resolve_job_def("retrain").asset_layer.executable_asset_keys
    ),
    "all_assets_has_drift": any(
        k.to_user_string() == "drift_metrics"
        for k in defs.resolve_job_def("all_assets").asset_layer.executable_asset_keys
    ),
}))
"""


def _describe(env: dict[str, str]) -> dict:  # type: ignore[type-arg]
    clean = {k: v for k, v in os.environ.items() if not k.startswith("RECSYS_")}
    done = subprocess.run(
        [sys.executable, "-c", DESCRIBE], env={**clean, **env}, capture_output=True, text=True, check=False
    )
    assert done.returncode == 0, done.stderr
    return json.loads(done.stdout.strip().splitlines()[-1])


GAT_INPUTS = {"ii_edges_fused", "ii_edges_txt", "interaction_splits", "item_fused_embeddings"}
GAT_INPUTS |= {"item_text_embeddings", "node_maps", "ui_edges"}
#: What a ranker (and its ablation) reads: the split, the content vectors and every other model.
RANKER_INPUTS = [
    "interaction_splits", "node_maps", "item_fused_embeddings", "item_text_embeddings",
    *(spec.asset for spec in registry.RETRIEVERS),
]  # fmt: skip
EXPECTED_ASSETS = {
    "raw_metadata": ("raw", [], False),
    "raw_reviews": ("raw", [], False),
    "items": ("catalogue", ["raw_metadata"], False),
    "items_quarantine": ("catalogue", ["raw_metadata"], False),
    "interactions": ("catalogue", ["items", "raw_reviews"], True),
    "interactions_quarantine": ("catalogue", ["items", "raw_reviews"], True),
    "item_text_embeddings": ("embeddings", ["items"], False),
    "item_image_embeddings": ("embeddings", ["interactions", "items"], False),
    # The fusion fits on the split's train rows, as every learned part does.
    "item_fused_embeddings": (
        "embeddings",
        ["interaction_splits", "item_image_embeddings", "item_text_embeddings", "node_maps"],
        False,
    ),
    "interaction_splits": ("graphs", ["interactions"], False),
    "node_maps": ("graphs", ["interaction_splits", "items"], False),
    "ui_edges": ("graphs", ["interaction_splits", "node_maps"], False),
    "ii_edges_txt": ("graphs", ["item_text_embeddings"], False),
    "ii_edges_fused": ("graphs", ["item_fused_embeddings"], False),
    "graph_qa_report": (
        "graphs",
        ["ii_edges_fused", "ii_edges_txt", "items", "node_maps", "ui_edges"],
        False,
    ),
    # Every registered model: the split, and the content and graphs for a model that reads them;
    # a ranker (and the blend) reads every other model and the content vectors.
    **{
        spec.asset: (
            "models",
            sorted(GAT_INPUTS) if spec.content else ["interaction_splits", "node_maps"],
            False,
        )
        for spec in registry.RETRIEVERS
    },
    **{
        spec.asset: (
            "models",
            sorted(RANKER_INPUTS),
            False,
        )
        for spec in registry.MODELS
        if spec.kind == "ranker"
    },
    "eval_report": ("models", sorted(spec.asset for spec in registry.MODELS), False),
    "gat_ablation": ("models", ["gat_model"], False),
    "ranker_ablation": (
        "models",
        sorted([*RANKER_INPUTS, "ranker_model"]),
        False,
    ),
    "hyperparameter_search": ("models", sorted(GAT_INPUTS), True),
    "cold_start_report": ("models", sorted(GAT_INPUTS), False),
    "item_embeddings_export": ("serving", ["eval_report", "interaction_splits", "items", "node_maps"], False),
    "faiss_index": ("serving", ["item_embeddings_export"], False),
    "drift_metrics": ("monitoring", ["faiss_index", "item_text_embeddings", "items"], True),
    "experiment_report": ("monitoring", ["faiss_index", "items"], True),
}
BLOCKING = [
    "interactions_ids_not_null",
    "interactions_item_in_items",
    "interactions_no_duplicate_events",
    "interactions_quarantine_rate",
    "interactions_rating_in_range",
    "interactions_ts_in_month",
    "items_item_id_not_null",
    "items_item_id_unique",
    "items_quarantine_rate",
    "item_text_embeddings_aligned",
    "item_image_embeddings_aligned",
    "item_image_embeddings_failure_rate",
    "item_fused_embeddings_aligned",
    "item_fused_embeddings_beat_text",
    "ui_edges_valid",
    "ii_edges_txt_valid",
    "ii_edges_txt_recall",
    "ii_edges_fused_valid",
    "ii_edges_fused_recall",
    *(f"{spec.asset}_vectors" for spec in registry.MODELS),
    "eval_report_promotion_gate",
    # Every fitted artifact: no validation or test interaction seen (assets/leakage.py).
    "item_fused_embeddings_fitted_on_train_only",
    *(f"{spec.asset}_fitted_on_train_only" for spec in registry.MODELS),
]


@pytest.mark.parametrize("env", ["local", "gcp"])
def test_definitions_load(env: str) -> None:
    described = _describe({"RECSYS_ENV": env, "RECSYS_GCS_BUCKET": "my-bucket"})
    got = {k: (v["group"], v["deps"], v["partitioned"]) for k, v in described["assets"].items()}
    assert got == EXPECTED_ASSETS
    assert all(v["description"] for v in described["assets"].values())
    warnings = [
        "interactions_row_count_vs_previous_month",
        "interactions_duplicate_share",
        "items_repeated_lines",
    ]
    assert described["checks"] == sorted([*BLOCKING, *warnings])
    assert described["blocking"] == sorted(BLOCKING)
    assert described["jobs"] == [
        "ablation", "all_assets", "bless_eval_report", "cold_start", "drift_metrics_daily", "end_experiment",
        "experiment_report_daily", "retrain", "search",
    ]  # fmt: skip
    on = {"local": "STOPPED", "gcp": "RUNNING"}[env]
    assert described["automation"] == {
        "drift_metrics_daily_schedule": on, "drift_retrain_sensor": on,
        "experiment_report_daily_schedule": on, "experiment_sensor": on,
    }  # fmt: skip
    assert described["retrain"] == sorted(
        k
        for k, v in EXPECTED_ASSETS.items()
        if v[0] in ("embeddings", "graphs", "models", "serving")
        and k not in ("gat_ablation", "ranker_ablation", "hyperparameter_search", "cold_start_report")
    )
    # Only the accelerator steps occupy the GPU pool.
    gpu = {"item_image_embeddings", "gat_model", "hyperparameter_search", "cold_start_report"}
    assert {k for k, pools in described["pools"].items() if pools} == gpu
    assert all(described["pools"][k] == ["gpu"] for k in gpu)
    assert described["resources"] == ["io_manager", "job_runner", "settings"]
    assert described["job_runner"] == {"local": "LocalJobRunner", "gcp": "VertexJobRunner"}[env]
    assert described["image_encoder"] == {"local": "efficientnet-lite0", "gcp": "clip"}[env]
    assert described["warehouse"] == {"local": "duckdb", "gcp": "bigquery"}[env]
    assert described["all_assets_has_drift"] is False  # daily partitions: its own schedule
    (root,) = described["io_roots"]
    if env == "gcp":
        assert root == "gs://my-bucket/recsys"
        assert described["raw"] == [
            "gs://my-bucket/raw/reviews_Electronics_5.json.gz",
            "gs://my-bucket/raw/meta_Electronics.json.gz",
        ]
    else:
        assert root.endswith("data/artifacts") and "://" not in root
        assert described["raw"][0].endswith("data/raw/small/reviews_Electronics_5.json.gz")


def test_settings_are_validated() -> None:
    clean = {k: v for k, v in os.environ.items() if not k.startswith("RECSYS_")}
    for var, value, message in [
        ("RECSYS_ENV", "aws", "RECSYS_ENV='aws': Input should be 'local' or 'gcp'"),
        ("RECSYS_RAW_FORMAT", "2020", "RECSYS_RAW_FORMAT='2020': Input should be '2014', '2018' or '2023'"),
        (
            "RECSYS_MAX_QUARANTINE_RATE",
            "lots",
            "RECSYS_MAX_QUARANTINE_RATE='lots': Input should be a valid number",
        ),
        (
            "RECSYS_IMAGE_ENCODER",
            "vit",
            "RECSYS_IMAGE_ENCODER='vit': Input should be 'clip' or 'efficientnet-lite0'",
        ),
    ]:
        done = subprocess.run(
            [sys.executable, "-c", "import recsys_assets.definitions"],
            env={**clean, var: value},
            capture_output=True,
            text=True,
            check=False,
        )
        assert done.returncode != 0
        assert message in done.stderr


def test_the_repository_loads_as_a_code_server_loads_it() -> None:
    """Every job, schedule and sensor together: names that collide only fail here (the
    ablation job once shared its name with the gat_ablation asset's op)."""
    from recsys_assets.definitions import defs

    repository = defs.get_repository_def()
    assert {job.name for job in repository.get_all_jobs()} >= {"ablation", "all_assets", "retrain"}
    assert sorted(s.name for s in repository.schedule_defs) == [
        "drift_metrics_daily_schedule", "experiment_report_daily_schedule"
    ]  # fmt: skip
    assert sorted(s.name for s in repository.sensor_defs) == ["drift_retrain_sensor", "experiment_sensor"]
