"""The embedding, graph, model and serving assets end to end: job modules through the local Pipes client."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path
from typing import Any

import duckdb
import numpy as np
import pandas as pd
import pytest
from dagster import DagsterInstance, Definitions, materialize
from dagster._core.storage.tags import ASSET_PARTITION_RANGE_END_TAG, ASSET_PARTITION_RANGE_START_TAG

from recsys_assets.assets import catalogue, embeddings, graphs, models, serving
from recsys_assets.core.synthetic import METADATA_FILE, REVIEWS_FILE, generate
from resources.embeddings import ArtifactStore, EmbeddingConfig
from resources.environments import artifact_io_managers
from resources.graph_config import GraphConfig
from resources.job_runners import LocalJobRunner
from resources.model_config import ModelConfig
from resources.raw_data import QualityPolicy, RawDataSource
from resources.serving_config import ServingConfig

SMALL = {"n_items": 400, "n_users": 200, "n_reviews": 4_000, "n_reviewed_items": 260}
ASSETS = [
    catalogue.raw_metadata,
    catalogue.raw_reviews,
    catalogue.items,
    catalogue.interactions,
    embeddings.item_text_embeddings,
    embeddings.item_image_embeddings,
    embeddings.item_fused_embeddings,
    graphs.interaction_splits,
    graphs.node_maps,
    graphs.ui_edges,
    graphs.ii_edges_txt,
    graphs.ii_edges_fused,
    graphs.graph_qa_report,
    models.popularity_model,
    models.mf_model,
    models.lightgcn_model,
    models.gat_model,
    models.eval_report,
    serving.item_embeddings_export,
    serving.faiss_index,
]
MODEL_CONFIG = ModelConfig(max_epochs=15)


NETWORK_GUARD = """
import os, socket
_connect = socket.socket.connect
def _guarded(self, address):
    host = address[0] if isinstance(address, tuple) else address
    if isinstance(host, str) and host not in ("127.0.0.1", "localhost", "::1") and not host.startswith("/"):
        with open(os.environ["NETWORK_GUARD_LOG"], "a") as log:
            log.write(f"{os.getpid()} {address}\\n")
        raise OSError(f"network access to {address} is forbidden in this test")
    return _connect(self, address)
socket.socket.connect = _guarded
"""


def _guarded_env(base: Path) -> dict[str, str]:
    """Environment for job subprocesses in which any non-loopback connection fails and is logged."""
    guard = base / "guard"
    guard.mkdir()
    (guard / "sitecustomize.py").write_text(NETWORK_GUARD)
    return {
        "PYTHONPATH": os.pathsep.join([str(guard), *filter(None, [os.environ.get("PYTHONPATH")])]),
        "NETWORK_GUARD_LOG": str(base / "network.log"),
        "RECSYS_MODEL_CACHE": str(base / "onnx"),
    }


@pytest.fixture(scope="module")
def materialized(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Any]:
    base = tmp_path_factory.mktemp("embed")
    env = _guarded_env(base)
    # The guard works: a job process that tries to reach the internet is stopped and logged.
    probe = subprocess.run(
        [sys.executable, "-c", "import socket; socket.create_connection(('8.8.8.8', 53), timeout=2)"],
        env={**os.environ, **env},
        capture_output=True,
        text=True,
        check=False,
    )
    assert probe.returncode == 1 and "is forbidden in this test" in probe.stderr
    Path(env["NETWORK_GUARD_LOG"]).unlink()
    raw = base / "raw"
    generate("small", raw, overrides=SMALL)
    # Two broken image URLs: one missing file, one corrupt file.
    images = sorted((raw / "images").iterdir())
    images[0].unlink()
    images[1].write_bytes(b"not an image")
    root = base / "artifacts"
    resources = {
        **artifact_io_managers(str(root)),
        "raw_data": RawDataSource(reviews_uri=str(raw / REVIEWS_FILE), metadata_uri=str(raw / METADATA_FILE)),
        "quality_policy": QualityPolicy(),
        "artifacts": ArtifactStore(root=str(root)),
        "embedding_config": EmbeddingConfig(image_workers=4),
        "job_runner": LocalJobRunner(env=env),
        "graph_config": GraphConfig(),
        "model_config": MODEL_CONFIG,
        "serving_config": ServingConfig(),
    }
    job = Definitions(assets=ASSETS, resources=resources).resolve_implicit_global_asset_job_def()
    with DagsterInstance.ephemeral() as instance:
        result = job.execute_in_process(
            instance=instance,
            tags={ASSET_PARTITION_RANGE_START_TAG: "2012-08", ASSET_PARTITION_RANGE_END_TAG: "2014-07"},
            raise_on_error=False,
        )
        assert result.success
        checks = {e.check_name: e for e in result.get_asset_check_evaluations()}
        metadata = {
            name: m.metadata
            for name in (
                "item_text_embeddings",
                "item_image_embeddings",
                "item_fused_embeddings",
                "eval_report",
                "gat_model",
                "faiss_index",
            )
            for m in result.asset_materializations_for_node(name)
        }
    return {
        "root": root,
        "metadata": metadata,
        "checks": checks,
        "images": len(images),
        "network_log": Path(env["NETWORK_GUARD_LOG"]),
        "resources": resources,
    }


def _json(path: Path) -> Any:
    return json.loads(path.read_text())


def test_no_job_reached_the_network(materialized: dict[str, Any]) -> None:
    assert not materialized["network_log"].exists(), materialized["network_log"].read_text()


def test_text_embeddings_follow_items_order(materialized: dict[str, Any]) -> None:
    root: Path = materialized["root"]
    items = pd.read_parquet(root / "items.parquet")
    text = np.load(root / "embeddings" / "txt.npy")
    assert text.shape == (len(items), 384) and text.dtype == np.float32
    np.testing.assert_allclose(np.linalg.norm(text, axis=1), 1.0, atol=1e-3)
    meta = _json(root / "embeddings" / "txt_meta.json")
    assert meta["count"] == len(items) and meta["dim"] == 384 and meta["max_tokens"] == 128
    assert meta["encoder"] == "packaged:all-MiniLM-L6-v2" and meta["backend"] == "onnx-int8"
    assert meta["items_per_second"] > 0 and len(meta["run_id"]) == 36
    reported = materialized["metadata"]["item_text_embeddings"]
    assert reported["count"].value == len(items)
    assert reported["shape"].value == [len(items), 384]


def test_image_embeddings_count_every_item(materialized: dict[str, Any]) -> None:
    root: Path = materialized["root"]
    items = pd.read_parquet(root / "items.parquet")
    image = np.load(root / "embeddings" / "img.npy")
    rows = pd.read_parquet(root / "embeddings" / "img_items.parquet")
    meta = _json(root / "embeddings" / "img_meta.json")
    with_url = int(items["image_url"].notna().sum())
    assert meta["requested"] == with_url == materialized["images"]
    assert meta["failed_by_reason"] == {"corrupt": 1, "not_found": 1}
    assert image.shape == (with_url - 2, 1280) == (meta["count"], meta["dim"])
    assert meta["encoder"] == "efficientnet-lite0" and meta["device"] == "cpu"
    # img_items names the item of each row, and the rows point back into items.
    assert (items["item_id"].to_numpy()[rows["item_row"]] == rows["item_id"].to_numpy()).all()
    assert len(rows) == len(image)
    reported = materialized["metadata"]["item_image_embeddings"]
    assert "| corrupt | 1 |" in reported["failed_by_reason"].value


def test_fused_embeddings_beat_text_on_held_out_co_review(materialized: dict[str, Any]) -> None:
    root: Path = materialized["root"]
    fused = np.load(root / "embeddings" / "fused.npy")
    items = pd.read_parquet(root / "items.parquet")
    assert fused.shape == (len(items), 128)
    np.testing.assert_allclose(np.linalg.norm(fused, axis=1), 1.0, atol=1e-4)
    config = _json(root / "embeddings" / "fusion_config.json")
    assert config["input_dim"] == 384 + 1280 + 1
    assert config["losses"][-1] < config["losses"][0]
    agreement = config["neighbour_agreement_at_20"]
    assert agreement["fused"] > agreement["text"]
    # The saved MLP reproduces the fused vectors from the same inputs.
    from safetensors.torch import load_file

    from recsys_assets.core import fusion

    state = load_file(root / "embeddings" / "fusion_mlp.safetensors")
    model = fusion.FusionMLP(config["input_dim"], config["config"]["hidden"], config["config"]["out_dim"])
    model.load_state_dict(state)
    image = np.load(root / "embeddings" / "img.npy")
    image_rows = pd.read_parquet(root / "embeddings" / "img_items.parquet")["item_row"].to_numpy()
    x = fusion.fusion_inputs(np.load(root / "embeddings" / "txt.npy"), image, image_rows)
    np.testing.assert_allclose(fusion.embed(model.eval(), x), fused, atol=1e-5)
    reported = materialized["metadata"]["item_fused_embeddings"]
    assert reported["agreement_fused"].value == pytest.approx(agreement["fused"], abs=1e-5)
    assert "held-out co-review pairs in top-20" in reported["neighbour_agreement"].value


def test_embedding_checks_pass_with_their_numbers(materialized: dict[str, Any]) -> None:
    checks = materialized["checks"]
    embedding_checks = {name for name in checks if name.startswith("item_")}
    assert embedding_checks == {
        "item_text_embeddings_aligned",
        "item_image_embeddings_aligned",
        "item_image_embeddings_failure_rate",
        "item_fused_embeddings_aligned",
        "item_fused_embeddings_beat_text",
    }
    assert all(checks[name].passed for name in embedding_checks)
    rate = checks["item_image_embeddings_failure_rate"]
    assert rate.metadata["failure_rate"].value == pytest.approx(2 / materialized["images"])
    assert (
        rate.description
        == rate.metadata["description"].value
        == (f"2 of {materialized['images']} images failed ({2 / materialized['images']:.2%}; limit 50%)")
    )
    assert checks["item_fused_embeddings_beat_text"].description.startswith(
        "held-out co-review pairs in the top-20"
    )


def test_too_many_failed_images_stop_the_fusion(materialized: dict[str, Any], tmp_path: Path) -> None:
    root = tmp_path / "artifacts"
    shutil.copytree(materialized["root"], root)
    resources = {
        **materialized["resources"],
        "artifacts": ArtifactStore(root=str(root)),
        "embedding_config": EmbeddingConfig(image_workers=4, image_max_failure_rate=0.0),
    }
    before = (root / "embeddings" / "fused.npy").stat().st_mtime_ns
    with DagsterInstance.ephemeral() as instance:
        result = materialize(
            [embeddings.item_image_embeddings, embeddings.item_fused_embeddings],
            resources=resources,
            instance=instance,
            raise_on_error=False,
        )
    (check,) = [e for e in result.get_asset_check_evaluations() if e.check_name.endswith("failure_rate")]
    assert not check.passed
    assert "limit 0%" in check.metadata["description"].value
    assert not result.success
    # The blocking check failed, so the fusion never ran and its artifact is untouched.
    assert [m.asset_key.to_user_string() for m in result.get_asset_materialization_events()] == [
        "item_image_embeddings"
    ]
    assert (root / "embeddings" / "fused.npy").stat().st_mtime_ns == before


def test_the_image_cap_keeps_reviewed_items_first(tmp_path: Path) -> None:
    from recsys_assets.jobs.image_embeddings import choose_items

    items = pd.DataFrame({"item_id": ["a", "b", "c", "d", "e"]})
    has_url = np.array([True, True, False, True, True])
    (tmp_path / "interactions").mkdir()
    pd.DataFrame({"item_id": ["d", "c"]}).to_parquet(tmp_path / "interactions" / "2013-01.parquet")
    pd.DataFrame({"item_id": ["e"]}).to_parquet(tmp_path / "interactions" / "2013-02.parquet")
    rows, reviewed = choose_items(items, has_url, str(tmp_path / "interactions"), cap=3)
    # d and e have reviews and images (c has no image); then a, in items order.
    assert rows.tolist() == [0, 3, 4] and reviewed == 2
    rows, reviewed = choose_items(items, has_url, None, cap=3)
    assert rows.tolist() == [0, 1, 3] and reviewed == 0


def test_graphs_follow_the_embeddings(materialized: dict[str, Any]) -> None:
    """Neighbours of a headphones item are headphones; every check on the graphs passed."""
    root: Path = materialized["root"]
    items = pd.read_parquet(root / "items.parquet")
    leaf = items["categories"].map(lambda c: c[-1])
    for name in ("txt", "fused"):
        with np.load(root / "graphs" / f"ii_edges_{name}.npz") as graph:
            src, dst = graph["src"], graph["dst"]
        assert len(src) == 20 * len(items)
        headphones = np.flatnonzero(leaf.to_numpy() == "Headphones")
        same = leaf.to_numpy()[dst[np.isin(src, headphones)]] == "Headphones"
        assert same.mean() > 0.8, (name, same.mean())
    report = json.loads((root / "graphs" / "qa_report.json").read_text())
    assert report["nodes"]["items"] == len(items)
    assert all(v == 0 for problems in report["problems"].values() for v in problems.values())
    splits = pd.read_parquet(root / "splits" / "interactions.parquet")
    assert len(splits) == SMALL["n_reviews"]
    with np.load(root / "graphs" / "ui_edges.npz") as ui:
        assert len(ui["src"]) == int((splits["split"] == "train").sum())
    graph_checks = {n: e for n, e in materialized["checks"].items() if n.startswith(("ui_", "ii_"))}
    assert len(graph_checks) == 5 and all(e.passed for e in graph_checks.values())


def test_every_model_is_stored_as_user_and_item_vectors(materialized: dict[str, Any]) -> None:
    root: Path = materialized["root"]
    maps = _json(root / "graphs" / "node_maps.json")
    for name in ("popularity", "mf", "lightgcn", "gat"):
        users = np.load(root / "models" / name / "users.npy")
        items = np.load(root / "models" / name / "items.npy")
        meta = _json(root / "models" / name / "meta.json")
        assert users.shape[0] == len(maps["users"]) and items.shape[0] == len(maps["items"])
        assert users.shape[1] == items.shape[1] == meta["dim"]
        assert meta["model"] == name and meta["data"]["users"] == len(maps["users"])
        if name != "popularity":
            # Early stopping picked the epoch with the best validation NDCG@20, within the cap.
            best = max(meta["history"], key=lambda h: h["val_ndcg@20"])
            assert meta["best_epoch"] == best["epoch"] and meta["epochs_run"] <= MODEL_CONFIG.max_epochs
            assert meta["best_val_ndcg@20"] == pytest.approx(best["val_ndcg@20"], abs=1e-5)
    checks = materialized["checks"]
    assert all(checks[f"{name}_model_vectors"].passed for name in ("popularity", "mf", "lightgcn", "gat"))


def test_gat_checkpoint_reproduces_its_exported_vectors(materialized: dict[str, Any]) -> None:
    import torch

    from recsys_assets.core.gat import GATConfig, GATRecommender, build_graph, embed

    root: Path = materialized["root"]
    saved = torch.load(root / "models" / "gat.pt", weights_only=True)
    config = GATConfig(**saved["config"])
    assert config.epochs == MODEL_CONFIG.max_epochs and config.layers == MODEL_CONFIG.gat_layers
    with (
        np.load(root / "graphs" / "ui_edges.npz") as ui,
        np.load(root / "graphs" / "ii_edges_fused.npz") as ii,
    ):
        graph = build_graph(dict(ui), saved["n_users"], saved["n_items"], dict(ii))
    assert saved["edge_dims"] == {"user/rates/item": 2, "item/rated_by/user": 2, "item/similar/item": 1}
    model = GATRecommender(
        saved["n_users"], saved["n_items"], saved["feature_dim"], config, graph.edge_dims()
    )
    model.load_state_dict(saved["state_dict"])
    meta = _json(root / "models" / "gat" / "meta.json")
    assert meta["features"] == "fused" and saved["feature_dim"] == 128
    # The recency readout chosen on validation is saved with the weights.
    assert float(model.readout) == meta["recency_readout"] in config.recency_readout
    assert meta["edges"] == {"/".join(r): int(e.shape[1]) for r, e in graph.edges.items()}
    features = torch.from_numpy(np.load(root / "embeddings" / "fused.npy"))
    users, items = embed(model, features, graph)
    np.testing.assert_allclose(items, np.load(root / "models" / "gat" / "items.npy"), atol=1e-5)
    np.testing.assert_allclose(users, np.load(root / "models" / "gat" / "users.npy"), atol=1e-5)


def test_eval_report_holds_every_model_and_the_gate_passes_without_a_blessed_report(
    materialized: dict[str, Any],
) -> None:
    root: Path = materialized["root"]
    report = _json(root / "eval" / "eval.json")
    assert report["candidate"] == "gat" and report["ks"] == [10, 20]
    assert set(report["models"]) == {"popularity", "mf", "lightgcn", "gat"}
    splits = pd.read_parquet(root / "splits" / "interactions.parquet")
    assert report["data"]["test"] == int((splits["split"] == "test").sum())
    for name, model in report["models"].items():
        for split in ("val", "test"):
            metrics = model[split]
            for key in ("recall", "ndcg", "hit", "mrr", "coverage"):
                assert 0.0 <= metrics[f"{key}@10"] <= metrics[f"{key}@20"] <= 1.0, (name, split, key)
            assert set(metrics["slices"]) == {"cold_start", "head", "torso", "tail"}
        assert model["train"]["train_seconds"] >= 0
    # Popularity recommends the same head items to everyone: its coverage is tiny.
    assert (
        report["models"]["popularity"]["test"]["coverage@20"] < report["models"]["gat"]["test"]["coverage@20"]
    )
    assert report["versions"]["packages"]["torch"].startswith("2.13.0") and report["versions"]["code"]
    gate = materialized["checks"]["eval_report_promotion_gate"]
    assert gate.passed and "no blessed report yet" in gate.description
    table = materialized["metadata"]["eval_report"]["report"].value
    assert all(f"| {name} |" in table for name in report["models"])


def test_serving_bundle_holds_the_promoted_model_and_loads(materialized: dict[str, Any]) -> None:
    from recsys_assets.core.serving_index import load_bundle

    root: Path = materialized["root"]
    manifest = _json(root / "serving" / "manifest.json")
    bundle = load_bundle(str(root / "serving" / "manifest.json"))
    assert bundle.version == manifest["version"] and manifest["model"]["name"] == "gat"
    report = _json(root / "eval" / "eval.json")
    assert manifest["eval"]["test"]["ndcg@20"] == report["models"]["gat"]["test"]["ndcg@20"]
    np.testing.assert_array_equal(bundle.items, np.load(root / "models" / "gat" / "items.npy"))
    np.testing.assert_array_equal(bundle.users, np.load(root / "models" / "gat" / "users.npy"))
    maps = _json(root / "graphs" / "node_maps.json")
    assert bundle.item_ids == maps["items"] and bundle.user_ids == maps["users"]
    catalogue_items = pd.read_parquet(root / "items.parquet")
    assert bundle.titles == catalogue_items["title"].fillna("").tolist()
    # Train histories: exactly each user's train items.
    splits = pd.read_parquet(root / "splits" / "interactions.parquet")
    train = splits[splits["split"] == "train"]
    user = maps["users"][7]
    expected = sorted(maps["items"].index(i) for i in train.loc[train["user_id"] == user, "item_id"])
    assert sorted(bundle.history(7).tolist()) == expected
    # Popularity: the most reviewed train item first.
    counts = train["item_id"].value_counts()
    assert bundle.item_ids[bundle.popular[0]] in counts[counts == counts.max()].index
    # 400 items: below exact_below, so exact search (recall 1).
    assert manifest["index"]["kind"] == "flat" and manifest["index"]["recall@20"] == 1.0
    metadata = materialized["metadata"]["faiss_index"]
    assert metadata["recall@20_vs_exact"].value == 1.0 and metadata["version"].value == bundle.version
    assert "| flat |" in metadata["single_query_latency"].value


def test_blessing_then_a_regression_stops_downstream_assets(
    materialized: dict[str, Any], tmp_path: Path
) -> None:
    root = tmp_path / "artifacts"
    shutil.copytree(materialized["root"], root)
    resources = {**materialized["resources"], "artifacts": ArtifactStore(root=str(root))}
    bless = Definitions(jobs=[models.bless_eval_report], resources=resources).resolve_job_def(
        "bless_eval_report"
    )
    with DagsterInstance.ephemeral() as instance:
        assert bless.execute_in_process(
            instance=instance, run_config={"ops": {"bless_current_report": {"config": {"note": "first"}}}}
        ).success
    blessed = _json(root / "eval" / "blessed.json")
    assert (
        blessed["blessed"]["note"] == "first"
        and blessed["models"] == _json(root / "eval" / "eval.json")["models"]
    )

    published = _json(root / "serving" / "manifest.json")
    # A blessed report 10% better than the candidate: the gate fails and blocks downstream.
    gat_test = blessed["models"]["gat"]["test"]
    gat_test["ndcg@20"] *= 1.1
    (root / "eval" / "blessed.json").write_text(json.dumps(blessed))
    with DagsterInstance.ephemeral() as instance:
        result = materialize(
            [models.eval_report, serving.item_embeddings_export, serving.faiss_index],
            resources=resources,
            instance=instance,
            raise_on_error=False,
        )
    gate = next(
        e for e in result.get_asset_check_evaluations() if e.check_name == "eval_report_promotion_gate"
    )
    assert not gate.passed and gate.description.startswith("candidate gat: REGRESSION in ndcg@20: ")
    assert gate.metadata["blessed_ndcg_at_20"].value == pytest.approx(gat_test["ndcg@20"])
    assert gate.metadata["candidate_ndcg_at_20"].value == pytest.approx(gat_test["ndcg@20"] / 1.1)
    assert [m.asset_key.to_user_string() for m in result.get_asset_materialization_events()] == [
        "eval_report"
    ]
    # The API keeps the last good version: the manifest is untouched.
    assert _json(root / "serving" / "manifest.json") == published
    # A later run of the export alone (the gate is not re-evaluated there) refuses too.
    with DagsterInstance.ephemeral() as instance:
        later = materialize([serving.item_embeddings_export], resources=resources, instance=instance,
                            raise_on_error=False)  # fmt: skip
    assert not later.success
    assert "the promotion gate failed (REGRESSION in ndcg@20" in str(later.all_events)
    # A failed report is not blessed without force.
    with DagsterInstance.ephemeral() as instance:
        refused = bless.execute_in_process(instance=instance, raise_on_error=False)
    assert not refused.success
    assert "its promotion gate failed (REGRESSION in ndcg@20" in str(refused.all_events)


def test_ablation_job_records_one_row_per_variant(materialized: dict[str, Any], tmp_path: Path) -> None:
    root = tmp_path / "artifacts"
    shutil.copytree(materialized["root"], root)
    resources = {**materialized["resources"], "artifacts": ArtifactStore(root=str(root))}
    with DagsterInstance.ephemeral() as instance:
        result = materialize([models.gat_ablation], resources=resources, instance=instance)
    ablation = _json(root / "eval" / "ablation.json")
    names = [v["variant"] for v in ablation["variants"]]
    assert names == ["base", "features=txt", "loss=bpr", "loss=bce", "heads=4", "layers=1", "layers=3",
                     "no item-item edges", "no edge features", "no recency readout"]  # fmt: skip
    by_name = {v["variant"]: v for v in ablation["variants"]}
    assert by_name["features=txt"]["features"] == "txt" and by_name["base"]["features"] == "fused"
    assert by_name["loss=bpr"]["config"]["negatives"] == 16 and by_name["base"]["config"]["negatives"] == 512
    assert (
        by_name["layers=3"]["config"]["layers"] == 3
        and not by_name["no edge features"]["config"]["edge_features"]
    )
    off = by_name["no recency readout"]
    assert off["config"]["recency_readout"] == [0.0] and off["recency_readout"] == 0.0
    assert by_name["base"]["recency_readout"] in (0.0, 1.0, 2.0)
    for variant in ablation["variants"]:
        assert 0 < variant["test_ndcg@20"] <= 1 and variant["config"]["epochs"] == MODEL_CONFIG.max_epochs
    (event,) = result.asset_materializations_for_node("gat_ablation")
    table = event.metadata["ablation"].value
    assert all(f"| {name} |" in table for name in names)
    assert (
        event.metadata["best_on_validation"].value
        == max(ablation["variants"], key=lambda v: v["val_ndcg@20"])["variant"]
    )


def test_unknown_model_settings_are_named() -> None:
    from recsys_assets.core.gat import GATConfig
    from recsys_assets.jobs.train_model import make_config

    with pytest.raises(
        ValueError, match=r"gat config: unknown setting\(s\) \['tau'\]; known: \['batch_size'"
    ):
        make_config(GATConfig, {"tau": 0.2}, "gat")


def test_drift_metrics_materialize_a_day_of_logs_idempotently(
    materialized: dict[str, Any], tmp_path: Path
) -> None:
    import datetime as dt

    from recsys_assets.assets import monitoring
    from recsys_assets.core.serving_index import load_bundle
    from recsys_assets.core.warehouse_tables import LOG_TABLES
    from resources.warehouse import DriftConfig, WarehouseResource
    from serving.request_log import DuckDBSink

    root: Path = materialized["root"]
    bundle = load_bundle(str(root / "serving" / "manifest.json"))
    day = dt.date(2026, 11, 20)
    ts = dt.datetime(2026, 11, 20, 9, tzinfo=dt.UTC)
    path = tmp_path / "warehouse.duckdb"
    sink = DuckDBSink(str(path))
    served = bundle.item_ids[:30]
    sink.write(LOG_TABLES["recommendation_requests"], [
        {"request_id": f"r{i}", "ts": ts, "user_id": bundle.user_ids[i], "strategy": "user",
         "model_version": bundle.version, "k": 3, "items": served[i : i + 3], "scores": [3.0, 2.0, 1.0],
         "latency_ms": 2.0}
        for i in range(10)
    ])  # fmt: skip
    # Clicks by known users on their own train items, and 5 by a stranger on an item never trained on.
    counts = np.bincount(bundle.history_items, minlength=len(bundle.item_ids))
    untrained = int(np.flatnonzero(counts == 0)[0])
    events = [
        {"request_id": f"r{u}", "ts": ts, "user_id": bundle.user_ids[u],
         "item_id": bundle.item_ids[int(bundle.history(u)[0])], "event": "click"}
        for u in range(15)
    ] + [{"request_id": "r0", "ts": ts, "user_id": "stranger", "item_id": bundle.item_ids[untrained],
          "event": "click"}] * 5  # fmt: skip
    sink.write(LOG_TABLES["feedback_events"], events)
    resources = {
        "artifacts": materialized["resources"]["artifacts"],
        "warehouse": WarehouseResource(kind="duckdb", duckdb_path=str(path)),
        "drift_config": DriftConfig(thresholds={"unseen_user_share": 0.2}),
    }
    with DagsterInstance.ephemeral() as instance:
        for _ in range(2):  # the second run replaces the first one's rows
            result = materialize(
                [monitoring.drift_metrics], resources=resources, instance=instance, partition_key=str(day)
            )
            assert result.success
    metadata = result.asset_materializations_for_node("drift_metrics")[0].metadata
    assert metadata["model_version"].value == bundle.version
    breached = metadata["breached"].value
    assert (
        "unseen_user_share" in breached and "unseen_item_share" not in breached
    )  # 0.25: above 0.2, below 0.3
    assert "| unseen_user_share | 0.2500 | 0.2 | breach |" in metadata["metrics"].value
    assert metadata["last_30_days"].value.splitlines()[2].startswith("| 2026-11-20 |")
    assert metadata["last_30_days_plot"].value.startswith(
        "![drift over the last 30 days](data:image/png;base64,"
    )
    assert Path(metadata["plot_uri"].value).read_bytes()[:4] == b"\x89PNG"
    with duckdb.connect(str(path), read_only=True) as con:
        rows = dict(con.execute(
            "SELECT metric_name, value FROM drift_metrics WHERE metric_date = DATE '2026-11-20'"
        ).fetchall())  # fmt: skip
    assert len(rows) == 11
    assert rows["unseen_user_share"] == pytest.approx(0.25) and rows["unseen_item_share"] == pytest.approx(
        0.25
    )
    assert rows["fallback_rate"] == 0.0 and rows["catalogue_coverage"] == pytest.approx(
        12 / len(bundle.item_ids)
    )
