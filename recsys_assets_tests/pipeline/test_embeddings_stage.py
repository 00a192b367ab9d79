"""The embedding assets in the materialized graph: text, images, fusion, and their blocking checks."""

from __future__ import annotations

import shutil
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from dagster import DagsterInstance, materialize

from recsys_assets.core.io import artifacts as catalogue
from recsys_assets.core.io.codecs import read_json, read_npy, read_parquet
from recsys_assets.defs.assets import embeddings
from recsys_assets_tests.conftest import make_resources
from recsys_assets_tests.pipeline.conftest import Pipeline

pytestmark = pytest.mark.xdist_group("pipeline")


def test_no_job_reached_the_network(pipeline: Pipeline) -> None:
    pipeline.require("item_text_embeddings", "item_image_embeddings", "item_fused_embeddings", "gat_model")
    assert not pipeline.network_log.exists(), pipeline.network_log.read_text()


def test_text_embeddings_follow_items_order(pipeline: Pipeline) -> None:
    pipeline.require("item_text_embeddings")
    artifacts = pipeline.artifacts
    items = read_parquet(artifacts.uri(catalogue.ITEMS))
    text = read_npy(artifacts.uri(catalogue.TEXT_EMBEDDINGS))
    assert text.shape == (len(items), 384) and text.dtype == np.float32
    np.testing.assert_allclose(np.linalg.norm(text, axis=1), 1.0, atol=1e-3)
    meta = read_json(artifacts.uri(catalogue.TEXT_META))
    assert meta["count"] == len(items) and meta["dim"] == 384 and meta["max_tokens"] == 128
    assert meta["encoder"] == "packaged:all-MiniLM-L6-v2" and meta["backend"] == "onnx-int8"
    assert meta["items_per_second"] > 0 and meta["run_id"] == pipeline.run_id
    reported = pipeline.metadata["item_text_embeddings"]
    assert reported["count"].value == len(items)
    assert reported["shape"].value == [len(items), 384]
    # The ONNX export went to the configured cache, not to a default folder.
    assert list((pipeline.base / "onnx").glob("text-*/model.int8.onnx"))


def test_image_embeddings_count_every_item(pipeline: Pipeline) -> None:
    pipeline.require("item_image_embeddings")
    artifacts = pipeline.artifacts
    items = read_parquet(artifacts.uri(catalogue.ITEMS))
    image = read_npy(artifacts.uri(catalogue.IMAGE_EMBEDDINGS))
    rows = read_parquet(artifacts.uri(catalogue.IMAGE_ITEMS))
    meta = read_json(artifacts.uri(catalogue.IMAGE_META))
    with_url = int(items["image_url"].notna().sum())
    assert meta["requested"] == with_url == pipeline.images
    assert meta["failed_by_reason"] == {"corrupt": 1, "not_found": 1}
    assert image.shape == (with_url - 2, 1280) == (meta["count"], meta["dim"])
    assert meta["encoder"] == "efficientnet-lite0" and meta["device"] == "cpu"
    # img_items names the item of each row, and the rows point back into items.
    assert (items["item_id"].to_numpy()[rows["item_row"]] == rows["item_id"].to_numpy()).all()
    assert len(rows) == len(image)
    reported = pipeline.metadata["item_image_embeddings"]
    assert "| corrupt | 1 |" in reported["failed_by_reason"].value


def test_fused_embeddings_fit_on_train_rows_and_beat_text_on_validation_co_review(pipeline: Pipeline) -> None:
    pipeline.require("item_fused_embeddings")
    from safetensors.torch import load_file

    from recsys_assets.core.embeddings import fusion

    artifacts = pipeline.artifacts
    fused = read_npy(artifacts.uri(catalogue.FUSED_EMBEDDINGS))
    items = read_parquet(artifacts.uri(catalogue.ITEMS))
    assert fused.shape == (len(items), 128)
    np.testing.assert_allclose(np.linalg.norm(fused, axis=1), 1.0, atol=1e-4)
    config = read_json(artifacts.uri(catalogue.FUSION_CONFIG))
    assert config["input_dim"] == 384 + 1280 + 1
    assert config["losses"][-1] < config["losses"][0]
    agreement = config["neighbour_agreement_at_20"]
    assert agreement["fused"] > agreement["text"]
    assert config["config"] == pipeline.settings.embeddings.fusion.to_dict()
    # The saved MLP reproduces the fused vectors from the same inputs.
    state = load_file(artifacts.uri(catalogue.FUSION_WEIGHTS))
    model = fusion.FusionMLP(config["input_dim"], config["config"]["hidden"], config["config"]["out_dim"])
    model.load_state_dict(state)
    image = read_npy(artifacts.uri(catalogue.IMAGE_EMBEDDINGS))
    image_rows = read_parquet(artifacts.uri(catalogue.IMAGE_ITEMS))["item_row"].to_numpy()
    x = fusion.fusion_inputs(read_npy(artifacts.uri(catalogue.TEXT_EMBEDDINGS)), image, image_rows)
    np.testing.assert_allclose(fusion.embed(model.eval(), x), fused, atol=1e-5)
    reported = pipeline.metadata["item_fused_embeddings"]
    assert reported["agreement_fused"].value == pytest.approx(agreement["fused"], abs=1e-5)
    assert "(last train item, validation item) pairs in top-20" in reported["neighbour_agreement"].value
    # It fitted on the split's train rows, and its record says so (checked against the split).
    splits = read_parquet(artifacts.uri(catalogue.SPLITS))
    train = int((splits["split"] == "train").sum())
    assert config["train_interactions"] == config["trained_on"]["interactions"] == train
    assert config["val_interactions"] == int((splits["split"] == "val").sum())
    assert read_npy(artifacts.uri(catalogue.FUSION_TRAINED_ON)).shape == (train,)
    check = pipeline.checks["item_fused_embeddings_fitted_on_train_only"]
    assert check.passed and check.description == (
        f"item_fused_embeddings was fitted on exactly the split's {train:,} train interactions "
        f"(fingerprint {config['trained_on']['fingerprint']}); no validation or test interaction seen"
    )


def test_embedding_checks_pass_with_their_numbers(pipeline: Pipeline) -> None:
    pipeline.require("item_text_embeddings", "item_image_embeddings", "item_fused_embeddings")
    checks = pipeline.checks
    embedding_checks = {name for name in checks if name.startswith("item_")}
    assert embedding_checks == {
        "item_text_embeddings_aligned",
        "item_image_embeddings_aligned",
        "item_image_embeddings_failure_rate",
        "item_fused_embeddings_aligned",
        "item_fused_embeddings_beat_text",
        "item_fused_embeddings_fitted_on_train_only",
    }
    assert all(checks[name].passed for name in embedding_checks)
    rate = checks["item_image_embeddings_failure_rate"]
    assert rate.metadata["failure_rate"].value == pytest.approx(2 / pipeline.images)
    assert rate.metadata["observed"].value == pytest.approx(2 / pipeline.images)
    assert rate.metadata["threshold"].value == 0.5
    assert (
        rate.description
        == rate.metadata["description"].value
        == (f"2 of {pipeline.images} images failed ({2 / pipeline.images:.2%}; limit 50%)")
    )
    assert "| corrupt | 1 |" in rate.metadata["failed_by_reason"].value
    assert checks["item_fused_embeddings_beat_text"].description.startswith(
        "(last train item, validation item) pairs in the top-20"
    )


def test_too_many_failed_images_stop_the_fusion(pipeline: Pipeline, tmp_path: Path) -> None:
    pipeline.require("item_image_embeddings", "item_fused_embeddings")
    shutil.copytree(pipeline.root, tmp_path / "artifacts")
    settings = pipeline.settings.with_changes(
        {
            "artifacts": {"root": str(tmp_path / "artifacts")},
            "embeddings": {"image": {"max_failure_rate": 0.0}},
        }
    )
    fused = Path(settings.artifacts.root) / catalogue.FUSED_EMBEDDINGS.path
    before = fused.stat().st_mtime_ns
    with DagsterInstance.ephemeral() as instance:
        result = materialize(
            [embeddings.item_image_embeddings, embeddings.item_fused_embeddings],
            resources=make_resources(settings),
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
    assert fused.stat().st_mtime_ns == before


def test_the_image_cap_keeps_reviewed_items_first() -> None:
    from recsys_assets.core.embeddings.images import choose_items

    items = pd.Series(["a", "b", "c", "d", "e"])
    has_url = np.array([True, True, False, True, True])
    rows, reviewed = choose_items(items, has_url, {"d", "c", "e"}, cap=3)
    # d and e have reviews and images (c has no image); then a, in items order.
    assert rows.tolist() == [0, 3, 4] and reviewed == 2
    rows, reviewed = choose_items(items, has_url, set(), cap=3)
    assert rows.tolist() == [0, 1, 3] and reviewed == 0
