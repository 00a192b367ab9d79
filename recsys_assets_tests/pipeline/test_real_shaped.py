"""A real-shaped dump end to end through eval_report: the shape of the 2018 Gift Cards 5-core
file (2,972 reviews by 458 users of 148 items, strict JSON, whole reviews repeated, and 4 pairs
reviewed again later), which once stopped the model stage (issue: "ui_edges.npz: 2041 edges but
the split has 2045 train interactions")."""

from __future__ import annotations

from pathlib import Path

import pandas as pd
import pytest
from dagster import DagsterInstance

from recsys_assets.core.io import artifacts as artifact_catalogue
from recsys_assets.core.io.artifacts import Artifacts
from recsys_assets.core.io.codecs import read_json, read_npz
from recsys_assets.core.models import registry
from recsys_assets.defs.assets import catalogue, embeddings, graphs, models
from recsys_assets.devdata.synthetic import generate
from recsys_assets_tests.conftest import make_resources, make_settings
from recsys_assets_tests.pipeline.conftest import execute_graph

pytestmark = pytest.mark.xdist_group("real_shaped")

#: 2,968 first reviews of a pair + 4 re-reviews = the file's 2,972 lines of reviews.
GIFT_CARDS = {
    "n_items": 200,
    "n_users": 458,
    "n_reviews": 2_968,
    "n_reviewed_items": 148,
    "re_review_share": 4 / 2_968,
    "duplicate_review_share": 6 / 2_968,
    "blank_lines": 0,
    "repeated_item_share": 0.0,
    "wrong_type_review_share": 0.0,
    "wrong_type_item_share": 0.0,
}
ASSETS = [
    catalogue.raw_metadata, catalogue.raw_reviews, catalogue.items, catalogue.interactions,
    embeddings.item_text_embeddings, embeddings.item_image_embeddings, embeddings.item_fused_embeddings,
    graphs.interaction_splits, graphs.node_maps, graphs.ui_edges, graphs.ii_edges_txt, graphs.ii_edges_fused,
    *models.MODEL_ASSETS.values(), models.eval_report,
]  # fmt: skip


def test_re_reviewed_pairs_reach_the_report_as_one_pair_each(tmp_path: Path) -> None:
    raw = tmp_path / "raw"
    manifest = generate("small", raw, fmt="2018", overrides=GIFT_CARDS)
    assert manifest["expected_split"] == {"pairs": 2_968, "repeated_user_item_pairs": 4}
    files = manifest["files"]
    assert isinstance(files, dict)
    epochs = {"epochs": 5}
    settings = make_settings(
        tmp_path,
        data={"reviews_uri": str(raw / files["reviews"]), "metadata_uri": str(raw / files["metadata"]),
              "format": "2018"},
        embeddings={"image": {"workers": 2}},
        models={spec.settings: epochs for spec in registry.MODELS if spec.epochs and spec.settings},
    )  # fmt: skip
    with DagsterInstance.ephemeral() as instance:
        result = execute_graph(ASSETS, make_resources(settings), instance)
    failures = [e.step_failure_data.error.to_string() for e in result.all_events if e.is_step_failure]
    assert result.success, failures
    split_meta = result.asset_materializations_for_node("interaction_splits")[0].metadata
    assert split_meta["repeated_user_item_pairs"].value == 4
    root = Artifacts(settings.artifacts.root)
    splits = pd.read_parquet(root.uri(artifact_catalogue.SPLITS))
    # Staging kept all 2,972 events (the 6 repeated whole reviews collapsed); the split one per pair.
    assert len(splits) == 2_968 and splits["events"].sum() == 2_972 and (splits["events"] == 2).sum() == 4
    assert not splits.duplicated(["user_id", "item_id"]).any()
    edges = read_npz(root.uri(artifact_catalogue.UI_EDGES))
    assert len(edges["src"]) == int((splits["split"] == "train").sum())
    report = read_json(root.uri(artifact_catalogue.EVAL_REPORT))
    assert report["data"]["train"] + report["data"]["val"] + report["data"]["test"] == 2_968
    assert set(report["models"]) == set(models.MODEL_ASSETS)
    checks = {e.check_name: e for e in result.get_asset_check_evaluations()}
    fitted = [name for name in checks if name.endswith("_fitted_on_train_only")]
    assert len(fitted) == len(registry.MODELS) + 1 and all(checks[name].passed for name in fitted)
