"""The serving assets in the materialized graph: the published version holds the promoted model
and loads; and drift metrics computed against it."""

from __future__ import annotations

import datetime as dt
import shutil
from pathlib import Path

import duckdb
import httpx
import numpy as np
import pandas as pd
import pytest
from dagster import DagsterInstance, materialize

from recsys_assets.core.io import artifacts as catalogue
from recsys_assets.core.io.artifacts import Artifacts
from recsys_assets.core.io.codecs import read_json, read_parquet
from recsys_assets.core.models.recency import Order
from recsys_assets.core.models.scoring import load_scorable
from recsys_assets.core.models.training_data import load_training_data
from recsys_assets.core.serving.bundle import Bundle, load_bundle
from recsys_assets.core.serving.export import NO_INDEX
from recsys_assets.core.warehouse.tables import LOG_TABLES
from recsys_assets.defs.assets import monitoring
from recsys_assets.devtools.local_api import local_api, wait_for
from recsys_assets_tests.conftest import make_resources
from recsys_assets_tests.pipeline.conftest import Pipeline, pinned_export
from serving.request_log import DuckDBSink

pytestmark = pytest.mark.xdist_group("pipeline")


def _served_scores_match_the_evaluation(bundle: Bundle, artifacts: Artifacts, name: str) -> None:
    """The version scores users exactly as ``eval_report`` scored the model, with its order."""
    meta = read_json(artifacts.uri(catalogue.MODEL_META, model=name))
    kinds = (("users_uri", catalogue.MODEL_USERS), ("items_uri", catalogue.MODEL_ITEMS),
             ("neighbours_uri", catalogue.MODEL_NEIGHBOURS))  # fmt: skip
    files = {key: artifacts.uri(artifact, model=name) for key, artifact in kinds}
    model = load_scorable(**files, meta=meta)
    data = load_training_data(artifacts.uri(catalogue.SPLITS), artifacts.uri(catalogue.NODE_MAPS))
    users = np.arange(10)
    expected = model.scorer(data.train, data.n_items, Order(**meta["order"]))(users)
    if bundle.neighbours is not None:
        for user in users:
            rows, weights = bundle.weighted_history(int(user))
            np.testing.assert_allclose(weights @ bundle.neighbours[rows].toarray(), expected[user], rtol=1e-5)
    else:
        assert bundle.users is not None and bundle.items is not None
        np.testing.assert_allclose(bundle.users[users] @ bundle.items.T, expected, rtol=1e-4, atol=1e-5)


def test_serving_bundle_holds_the_promoted_model_and_loads(pipeline: Pipeline) -> None:
    pipeline.require("faiss_index")
    artifacts = pipeline.artifacts
    manifest = read_json(artifacts.uri(catalogue.SERVING_MANIFEST))
    bundle = load_bundle(artifacts.uri(catalogue.SERVING_MANIFEST))
    report = read_json(artifacts.uri(catalogue.EVAL_REPORT))
    name = report["candidate"]
    assert bundle.version == manifest["version"] and manifest["model"]["name"] == name
    assert manifest["model"]["reason"] == report["candidate_reason"]
    assert manifest["model"]["order"] == report["models"][name]["order"]
    assert manifest["eval"]["test"]["ndcg@20"] == report["models"][name]["test"]["ndcg@20"]
    _served_scores_match_the_evaluation(bundle, artifacts, name)
    maps = read_json(artifacts.uri(catalogue.NODE_MAPS))
    assert bundle.item_ids == maps["items"] and bundle.user_ids == maps["users"]
    # Every item has a display name: its title, else one from its brand, category and id.
    items = read_parquet(artifacts.uri(catalogue.ITEMS))
    titled = items["title"].fillna("") != ""
    assert all(bundle.titles) and (~titled).sum() > 0
    assert [t for t, has in zip(bundle.titles, titled, strict=True) if has] == items.loc[
        titled, "title"
    ].tolist()
    untitled = items.loc[~titled].iloc[0]
    assert bundle.titles[int(np.flatnonzero(~titled)[0])] == (
        f"{untitled['brand']} {untitled['categories'][-1]} ({untitled['item_id']})"
    )
    # Train histories: exactly each user's train items.
    splits = pd.read_parquet(artifacts.uri(catalogue.SPLITS))
    train = splits[splits["split"] == "train"]
    user = maps["users"][7]
    expected = sorted(maps["items"].index(i) for i in train.loc[train["user_id"] == user, "item_id"])
    assert sorted(bundle.history(7).tolist()) == expected
    # Popularity: the most reviewed train item first.
    counts = train["item_id"].value_counts()
    assert bundle.item_ids[bundle.popular[0]] in counts[counts == counts.max()].index
    metadata = pipeline.metadata["faiss_index"]
    if bundle.neighbours is not None:
        assert manifest["index"] == {"kind": "none", "reason": NO_INDEX} and metadata["kind"].value == "none"
    else:
        # 400 items: below exact_below, so exact search (recall 1).
        assert manifest["index"]["kind"] == "flat" and manifest["index"]["recall@20"] == 1.0
        assert (
            metadata["recall@20_vs_exact"].value == 1.0
            and "| flat |" in metadata["single_query_latency"].value
        )
    assert metadata["version"].value == bundle.version
    assert pipeline.metadata["item_embeddings_export"]["version"].value == bundle.version
    # The pending record the export wrote names the version the index published.
    assert read_json(artifacts.uri(catalogue.SERVING_PENDING))["version"] == bundle.version


@pytest.mark.parametrize("kind", ["embedding", "item_item"])
def test_a_pinned_candidate_of_either_kind_is_exported_and_served(
    pipeline: Pipeline, tmp_path: Path, kind: str
) -> None:
    pinned = "gat" if kind == "embedding" else "itemknn"
    artifacts = pinned_export(pipeline, tmp_path / "artifacts", pinned)
    report = read_json(artifacts.uri(catalogue.EVAL_REPORT))
    assert (
        report["candidate"] == pinned
        and "pinned by the models.candidate setting" in report["candidate_reason"]
    )
    bundle = load_bundle(artifacts.uri(catalogue.SERVING_MANIFEST))
    assert bundle.manifest["model"]["name"] == pinned and bundle.manifest["model"]["kind"] == kind
    assert (bundle.neighbours is not None) == (kind == "item_item") and (bundle.index is None) == (
        kind == "item_item"
    )
    _served_scores_match_the_evaluation(bundle, artifacts, pinned)


def test_a_promoted_ranker_serves_known_users_in_two_stages_and_the_rest_by_its_fallback(
    pipeline: Pipeline, ranker_version: Artifacts, tmp_path: Path
) -> None:
    artifacts = ranker_version
    report = read_json(artifacts.uri(catalogue.EVAL_REPORT))
    bundle = load_bundle(artifacts.uri(catalogue.SERVING_MANIFEST))
    model = bundle.manifest["model"]
    assert model["name"] == "ranker" and model["kind"] == "ranker" and bundle.ranker is not None
    # The fallback is the retriever best on validation, served (and scoring) exactly as evaluated.
    retrievers = {n: m["val"]["ndcg@20"] for n, m in report["models"].items() if m["kind"] != "ranker"}
    fallback = model["fallback"]["name"]
    assert fallback == max(retrievers, key=lambda n: retrievers[n])
    assert model["fallback"]["kind"] == report["models"][fallback]["kind"]
    _served_scores_match_the_evaluation(bundle, artifacts, fallback)
    meta = read_json(artifacts.uri(catalogue.MODEL_META, model="ranker"))
    assert [s.name for s in bundle.ranker.sources] == meta["sources"]
    assert set(bundle.manifest["files"]) >= {"ranker.json", "ranker.npz", "ranker.txt"}

    with local_api(Path(artifacts.uri(catalogue.SERVING_MANIFEST)), str(tmp_path / "w.duckdb")) as api:
        wait_for(api, lambda body: body.get("status") == "ready", "load the ranker version")
        user = bundle.user_ids[3]
        served = httpx.post(f"{api}/recommend", json={"user_id": user, "k": 10}).json()
        assert served["strategy"] == "user" and len(served["items"]) == 10
        expected = bundle.ranker.rank(3, set(bundle.history(3).tolist()))
        assert [i["item_id"] for i in served["items"]] == [bundle.item_ids[i] for i in expected.items[:10]]
        assert all(i["sources"] and set(i["sources"]) <= set(meta["sources"]) for i in served["items"])
        assert not {i["item_id"] for i in served["items"]} & {bundle.item_ids[i] for i in bundle.history(3)}
        ids = [i["item_id"] for i in served["items"][:3]]
        why = httpx.get(f"{api}/explorer/users/{user}/why", params={"ids": ids}).json()
        assert why["model"] == "ranker" and why["stages"] == "two stages"
        assert [w["item_id"] for w in why["items"]] == ids
        assert [w["sources"] for w in why["items"]] == [i["sources"] for i in served["items"][:3]]
        assert all(w["features"] and w["features"][0]["contribution"] > 0 for w in why["items"])
        assert all(f["description"] for w in why["items"] for f in w["features"])
        # A user the version does not know: their recent items, by the fallback, with no sources.
        recent = [bundle.item_ids[0], bundle.item_ids[1]]
        cold = httpx.post(f"{api}/recommend", json={"user_id": "someone-new", "recent_items": recent}).json()
        assert cold["strategy"] == "recent_items" and "sources" not in cold["items"][0]
        similar = httpx.get(f"{api}/items/{bundle.item_ids[0]}/similar", params={"k": 5}).json()
        assert len(similar["items"]) == 5 and "sources" not in similar["items"][0]


def test_drift_metrics_materialize_a_day_of_logs_idempotently(pipeline: Pipeline, tmp_path: Path) -> None:
    pipeline.require("faiss_index")
    bundle = load_bundle(pipeline.artifacts.uri(catalogue.SERVING_MANIFEST))
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
    shutil.copytree(pipeline.root, tmp_path / "artifacts")
    settings = pipeline.settings.with_changes({
        "artifacts": {"root": str(tmp_path / "artifacts")}, "warehouse": {"duckdb_path": str(path)},
        # 20 interactions: read on them (the default minimum sample is 200).
        "monitoring": {"thresholds": {"unseen_user_share": 0.2},
                       "min_samples": {"unseen_user_share": 20, "unseen_item_share": 20}},
    })  # fmt: skip
    with DagsterInstance.ephemeral() as instance:
        for _ in range(2):  # the second run replaces the first one's rows
            result = materialize(
                [monitoring.drift_metrics], resources=make_resources(settings), instance=instance,
                partition_key=str(day),
            )  # fmt: skip
            assert result.success
    metadata = result.asset_materializations_for_node("drift_metrics")[0].metadata
    assert metadata["model_version"].value == bundle.version
    breached = metadata["breached"].value
    # 0.25: above 0.2 (overridden), below 0.3 (the default).
    assert "unseen_user_share" in breached and "unseen_item_share" not in breached
    assert "| unseen_user_share | 0.2500 | 0.2 | breach |" in metadata["metrics"].value
    assert metadata["last_30_days"].value.splitlines()[2].startswith("| 2026-11-20 |")
    assert metadata["last_30_days_plot"].value.startswith(
        "![drift over the last 30 days](data:image/png;base64,"
    )
    assert metadata["plot_uri"].value == str(tmp_path / "artifacts" / "monitoring" / "drift_2026-11-20.png")
    assert Path(metadata["plot_uri"].value).read_bytes()[:4] == b"\x89PNG"
    with duckdb.connect(str(path), read_only=True) as con:
        rows = dict(con.execute(
            "SELECT metric_name, value FROM drift_metrics WHERE metric_date = DATE '2026-11-20'"
        ).fetchall())  # fmt: skip
    assert len(rows) == 11
    assert rows["unseen_user_share"] == pytest.approx(0.25) and rows["unseen_item_share"] == pytest.approx(
        0.25
    )
    assert rows["fallback_rate"] == 0.0
    assert rows["catalogue_coverage"] == pytest.approx(12 / len(bundle.item_ids))
