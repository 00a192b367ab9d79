"""The model assets in the materialized graph: every model stored the same way, the GAT's
checkpoint, the evaluation report and the promotion gate, blessing, and the ablation."""

from __future__ import annotations

import json
import shutil
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import pytest
import torch
from dagster import DagsterInstance, Definitions, materialize

from recsys_assets.core.io import artifacts as catalogue
from recsys_assets.core.io.codecs import read_json, read_npy, read_npz
from recsys_assets.core.io.sparse import csr_from_arrays
from recsys_assets.core.io.storage import read_bytes
from recsys_assets.core.models import registry
from recsys_assets.core.models.gat.checkpoint import load_checkpoint
from recsys_assets.core.models.gat.graph import build_graph
from recsys_assets.core.models.gat.model import embed
from recsys_assets.core.models.ranker.scores import scores_from_arrays
from recsys_assets.core.models.recency import Order
from recsys_assets.core.models.training_data import load_training_data
from recsys_assets.defs import jobs
from recsys_assets.defs.assets import models, serving
from recsys_assets_tests.conftest import make_resources
from recsys_assets_tests.pipeline.conftest import EPOCHS, Pipeline

pytestmark = pytest.mark.xdist_group("pipeline")
EMBEDDING = tuple(spec.name for spec in registry.MODELS if spec.kind == "embedding")
ITEM_ITEM = tuple(spec.name for spec in registry.MODELS if spec.kind == "item_item")
MODELS = (*EMBEDDING, *ITEM_ITEM)
RANKERS = tuple(spec.name for spec in registry.MODELS if spec.kind == "ranker")


def test_every_model_is_stored_as_vectors_or_neighbour_lists_with_its_order(pipeline: Pipeline) -> None:
    pipeline.require(*(f"{name}_model" for name in MODELS))
    artifacts = pipeline.artifacts
    maps = read_json(artifacts.uri(catalogue.NODE_MAPS))
    for name in ITEM_ITEM:
        meta = read_json(artifacts.uri(catalogue.MODEL_META, model=name))
        weights = csr_from_arrays(read_npz(artifacts.uri(catalogue.MODEL_NEIGHBOURS, model=name)), name)
        assert meta["kind"] == "item_item" and weights.shape == (len(maps["items"]),) * 2
        assert meta["neighbours"] == weights.nnz > 0
        # The settings and the order were chosen together on validation: the best row of the table.
        best = max(meta["order_tried"], key=lambda row: row["val_ndcg@20"])
        assert meta["order_val_ndcg@20"]["chosen"] == best["val_ndcg@20"]
        assert {k: best[k] for k in meta["chosen"]} == meta["chosen"]
        assert {k: best[k] for k in ("decay", "floor", "readout")} == meta["order"]
        assert pipeline.checks[f"{name}_model_vectors"].passed
        shown = pipeline.metadata[f"{name}_model"]
        assert (
            shown["kind"].value == "item_item"
            and shown["order_chosen"].value == Order(**meta["order"]).label()
        )
        # The UI shows the best combinations tried, best first.
        assert shown["order_tried"].value.splitlines()[2].endswith(f"| {best['val_ndcg@20']:.4f} |")
    assert (
        "| l2 | decay | floor | readout | val NDCG@20 |"
        in pipeline.metadata["ease_model"]["order_tried"].value
    )
    for name in EMBEDDING:
        users = read_npy(artifacts.uri(catalogue.MODEL_USERS, model=name))
        items = read_npy(artifacts.uri(catalogue.MODEL_ITEMS, model=name))
        meta = read_json(artifacts.uri(catalogue.MODEL_META, model=name))
        assert users.shape[0] == len(maps["users"]) and items.shape[0] == len(maps["items"])
        assert users.shape[1] == items.shape[1] == meta["dim"]
        assert meta["model"] == name and meta["data"]["users"] == len(maps["users"])
        if name != "popularity":
            # Early stopping picked the epoch with the best validation NDCG@20, within the cap.
            best = max(meta["history"], key=lambda h: h["val_ndcg@20"])
            assert meta["best_epoch"] == best["epoch"] and meta["epochs_run"] <= EPOCHS
            assert meta["best_val_ndcg@20"] == pytest.approx(best["val_ndcg@20"], abs=1e-5)
            assert meta["config"]["epochs"] == EPOCHS
        # The grid (49 uses of order), and for the GAT the one it trained with when not among them.
        # A model with an encoder reads the order itself: none is tried.
        expected = (
            (1,)
            if name == "popularity" or registry.spec(name).encoder
            else {"gat": (49, 50)}.get(name, (49,))
        )
        assert meta["kind"] == "embedding" and len(meta["order_tried"]) in expected
    assert all(pipeline.checks[f"{name}_model_vectors"].passed for name in MODELS)
    assert "| epoch | train loss | val NDCG@20 |" in pipeline.metadata["mf_model"]["learning_curve"].value


def test_gat_checkpoint_reproduces_its_exported_vectors(pipeline: Pipeline) -> None:
    pipeline.require("gat_model")
    artifacts = pipeline.artifacts
    model = load_checkpoint(read_bytes(artifacts.uri(catalogue.MODEL_CHECKPOINT, model="gat")))
    config = pipeline.settings.models.gat
    assert model.config == config and model.config.epochs == EPOCHS
    data = load_training_data(artifacts.uri(catalogue.SPLITS), artifacts.uri(catalogue.NODE_MAPS))
    ui = read_npz(artifacts.uri(catalogue.UI_EDGES))
    graph = build_graph(ui, data.n_users, data.n_items, read_npz(artifacts.uri(catalogue.II_EDGES["fused"])))
    meta = read_json(artifacts.uri(catalogue.MODEL_META, model="gat"))
    assert meta["features"] == "fused" and meta["checkpoint_uri"] == artifacts.uri(
        catalogue.MODEL_CHECKPOINT, model="gat"
    )
    # The recency readout chosen on validation while training is saved with the weights.
    # (learned with the sequence context, the default)
    assert float(model.readout) == meta["recency_readout"] == meta["training_order"]["readout"]
    assert config.sequence and meta["training_order"]["decay"] == config.recency_decay
    assert meta["edges"] == {"/".join(r): int(e.shape[1]) for r, e in graph.edges.items()}
    features = torch.from_numpy(read_npy(artifacts.uri(catalogue.FUSED_EMBEDDINGS)))
    # The exported users are order-free: the shared readout chosen afterwards applies on top.
    users, items = embed(model, features, graph, readout=False)
    np.testing.assert_allclose(items, read_npy(artifacts.uri(catalogue.MODEL_ITEMS, model="gat")), atol=1e-5)
    np.testing.assert_allclose(users, read_npy(artifacts.uri(catalogue.MODEL_USERS, model="gat")), atol=1e-5)


def test_the_ranker_learns_from_every_models_candidates_and_reports_them(pipeline: Pipeline) -> None:
    pipeline.require("ranker_model", "blend_model", "eval_report")
    artifacts = pipeline.artifacts
    meta = read_json(artifacts.uri(catalogue.MODEL_META, model="ranker"))
    retrievers = [spec.name for spec in registry.RETRIEVERS]
    assert meta["kind"] == "ranker" and meta["sources"] == [
        *retrievers,
        "fused_knn",
        "txt_knn",
        "cold_content",
    ]
    # Recall on validation per retriever and for the union (at least any one source's).
    recall = {row["source"]: row["recall"] for row in meta["recall"]}
    assert recall["union"] >= max(v for k, v in recall.items() if k != "union") > 0
    assert {name for name, _ in meta["importance"]} == set(meta["features"])
    booster = read_bytes(artifacts.uri(catalogue.RANKER_BOOSTER, model="ranker")).decode()
    assert booster.startswith("tree") and "objective=lambdarank" in booster
    scores = scores_from_arrays(read_npz(artifacts.uri(catalogue.MODEL_SCORES, model="ranker")), "scores")[
        "test"
    ]
    data = load_training_data(artifacts.uri(catalogue.SPLITS), artifacts.uri(catalogue.NODE_MAPS))
    test_users = np.flatnonzero(data.test.lengths() > 0)
    assert set(np.unique(scores.nonzero()[0])) == set(test_users)
    metadata = pipeline.metadata["ranker_model"]
    assert "validation recall" in metadata["candidates"].value and "union" in metadata["candidates"].value
    assert "share of gain" in metadata["importance"].value
    assert metadata["importance_plot"].value.startswith("![feature importance](data:image/png;base64,")
    # Its leakage check allows validation (it learns from it) and passed: no test row seen.
    check = pipeline.checks["ranker_model_fitted_on_train_only"]
    assert check.passed and "no test interaction seen" in check.description
    blend = read_json(artifacts.uri(catalogue.MODEL_META, model="blend"))
    report = read_json(artifacts.uri(catalogue.EVAL_REPORT))
    best_two = sorted(blend["alone_val_ndcg@20"], key=lambda name: -blend["alone_val_ndcg@20"][name])[:2]
    assert blend["sources"] == best_two and 0 <= blend["chosen"]["weight"] <= 1
    assert {"ranker", "blend"} <= set(report["models"]) and report["candidate"] != "blend"


def test_eval_report_holds_every_model_and_the_gate_passes_without_a_blessed_report(
    pipeline: Pipeline,
) -> None:
    pipeline.require("eval_report")
    artifacts = pipeline.artifacts
    report = read_json(artifacts.uri(catalogue.EVAL_REPORT))
    candidate = report["candidate"]
    decision = report["decision"]
    # The validation-best model serves, or a model cheaper to serve that it does not beat
    # significantly; the report says which and why, with the gap's interval.
    # Every model may serve but the blend (a peer for the ranker).
    assert [name for name, m in report["models"].items() if not m["servable"]] == ["blend"]
    val = {name: m["val"]["ndcg@20"] for name, m in report["models"].items() if m["servable"]}
    best = max(val, key=lambda name: val[name])
    assert (
        decision["validation_best"] == best and decision["served"] == candidate and report["ks"] == [10, 20]
    )
    assert candidate == decision["tied_with_best"][0] and best in decision["tied_with_best"]
    assert report["candidate_reason"] == decision["reason"]
    assert report["candidate_reason"].startswith(f"{best}: best validation NDCG@20 among servable models")
    assert ", 95% CI " in report["candidate_reason"] and ", p = " in report["candidate_reason"]
    if candidate != best:
        assert f"the tie goes to {candidate}, cheaper to serve" in report["candidate_reason"]
    assert pipeline.metadata["eval_report"]["candidate_reason"].value == report["candidate_reason"]
    assert set(report["models"]) == {*MODELS, *RANKERS}
    splits = pd.read_parquet(artifacts.uri(catalogue.SPLITS))
    assert report["data"]["test"] == int((splits["split"] == "test").sum())
    for name, model in report["models"].items():
        for split in ("val", "test"):
            metrics = model[split]
            for key in ("recall", "ndcg", "hit", "mrr", "coverage"):
                assert 0.0 <= metrics[f"{key}@10"] <= metrics[f"{key}@20"] <= 1.0, (name, split, key)
            assert set(metrics["slices"]) == {"cold_start", "head", "torso", "tail"}
        assert model["train"]["train_seconds"] >= 0
        # Every metric with its 95% interval over users, and every model against the served one.
        for split in ("val", "test"):
            for metric in ("ndcg@20", "recall@20", "ndcg@10", "recall@10"):
                lo, hi = model[split]["ci"][metric]
                assert lo <= model[split][metric] <= hi, (name, split, metric)
            if name == candidate:
                assert "vs_served" not in model
                continue
            versus = model["vs_served"][split]["ndcg@20"]
            served = report["models"][candidate][split]["ndcg@20"]
            assert versus["relative"] == pytest.approx(model[split]["ndcg@20"] / served - 1)
            assert versus["p"] <= versus["p_holm"] <= 1 and versus["significant"] == (versus["p_holm"] < 0.05)
        assert model["files"]["users_uri"] == artifacts.uri(catalogue.MODEL_USERS, model=name)
        if name in RANKERS:
            # A ranker learns from validation: its record is train and validation, never test.
            assert model["kind"] == "ranker" and "order_free" not in model
            assert model["trained_on"]["interactions"] == report["data"]["train"] + report["data"]["val"]
            continue
        assert model["trained_on"]["interactions"] == report["data"]["train"]
        assert model["kind"] == ("item_item" if name in ITEM_ITEM else "embedding")
        # With the order chosen, and without it when one was chosen.
        if model["order"]["decay"]:
            assert set(model["order_free"]) == {"order", "val", "test"}
            assert model["order_free"]["val"]["ndcg@20"] <= model["val"]["ndcg@20"] + 1e-9
        else:
            assert "order_free" not in model
    # Popularity recommends the same head items to everyone: its coverage is tiny.
    assert (
        report["models"]["popularity"]["test"]["coverage@20"] < report["models"]["gat"]["test"]["coverage@20"]
    )
    assert report["versions"]["packages"]["torch"].startswith("2.13.0") and report["versions"]["code"]
    gate = pipeline.checks["eval_report_promotion_gate"]
    assert gate.passed and "no blessed report yet" in gate.description
    assert gate.metadata["observed"].value == pytest.approx(report["models"][candidate]["test"]["ndcg@20"])
    # The UI's table is the compact one, the served model marked; the wide one is a file.
    metadata = pipeline.metadata["eval_report"]
    table = metadata["report"].value
    assert (
        table.splitlines()[0]
        == "| model | val NDCG@20 | val vs served | test NDCG@20 (CI) | test vs served |"
    )
    assert len(table) < 1_000 and table.count("(serves)") == 1
    served = report["models"][candidate]
    lo, hi = served["test"]["ci"]["ndcg@20"]
    assert (
        f"| **{candidate} (serves)** | {served['val']['ndcg@20']:.4f} | - | "
        f"{served['test']['ndcg@20']:.4f} ({lo:.4f}-{hi:.4f}) | - |" in table
    )
    # A difference that is not significant is marked so.
    insignificant = [n for n, m in report["models"].items() if n != candidate
                     and not m["vs_served"]["test"]["ndcg@20"]["significant"]]  # fmt: skip
    assert table.count(" n.s. |") >= len(insignificant)
    assert report["uncertainty"]["resamples"] == 1000 and report["uncertainty"]["test_history"] == "train+val"
    assert all(f"| {name} |" in table for name in report["models"] if name != candidate)
    wide = Path(artifacts.uri(catalogue.EVAL_TABLE)).read_text()
    assert metadata["full_table_uri"].value == artifacts.uri(catalogue.EVAL_TABLE)
    assert f"| **{candidate}** (served) |" in wide and "| test Hit@20 |" in wide
    assert "| test vs served (p, Holm) |" in wide
    assert metadata["served"].value == (
        f"{candidate}: {report['candidate_reason']}. Promotion gate passed: "
        f"{gate.description.removeprefix(f'candidate {candidate}: ')}"
    )
    assert metadata["learning_curves"].value.startswith("![learning curves](data:image/png;base64,")
    # Five test users, their recent history and the candidate's top items, by display name.
    examples = metadata["examples"].value.splitlines()
    assert examples[0] == f"{candidate}'s top items for 5 test users:" and len(examples) == 2 + 2 + 5
    assert all(row.count(" | ") == 2 and " (of " in row for row in examples[4:])


def _copy(pipeline: Pipeline, tmp_path: Path, models: dict[str, Any] | None = None) -> dict:
    """Resources over a copy of the pipeline's artifacts, for tests that change them (``models``:
    changes to the models settings)."""
    shutil.copytree(pipeline.root, tmp_path / "artifacts")
    changes: dict[str, Any] = {"artifacts": {"root": str(tmp_path / "artifacts")}}
    settings = pipeline.settings.with_changes(changes | ({"models": models} if models else {}))
    return make_resources(settings)


def test_blessing_then_a_regression_stops_downstream_assets(pipeline: Pipeline, tmp_path: Path) -> None:
    pipeline.require("eval_report", "faiss_index")
    resources = _copy(pipeline, tmp_path)
    artifacts = resources["settings"].artifacts
    blessed_path = Path(artifacts.uri(catalogue.BLESSED_REPORT))
    bless = Definitions(jobs=[jobs.bless_eval_report], resources=resources).resolve_job_def(
        "bless_eval_report"
    )
    with DagsterInstance.ephemeral() as instance:
        assert bless.execute_in_process(
            instance=instance, run_config={"ops": {"bless_current_report": {"config": {"note": "first"}}}}
        ).success
    blessed = json.loads(blessed_path.read_text())
    assert blessed["blessed"]["note"] == "first"
    assert blessed["models"] == read_json(artifacts.uri(catalogue.EVAL_REPORT))["models"]

    published = read_json(artifacts.uri(catalogue.SERVING_MANIFEST))
    # A blessed report 10% better than the candidate: the gate fails and blocks downstream.
    candidate = blessed["candidate"]
    gat_test = blessed["models"][candidate]["test"]
    gat_test["ndcg@20"] *= 1.1
    blessed_path.write_text(json.dumps(blessed))
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
    assert not gate.passed and gate.description.startswith(f"candidate {candidate}: REGRESSION in ndcg@20: ")
    assert gate.metadata["blessed_ndcg_at_20"].value == pytest.approx(gat_test["ndcg@20"])
    assert gate.metadata["candidate_ndcg_at_20"].value == pytest.approx(gat_test["ndcg@20"] / 1.1)
    assert [m.asset_key.to_user_string() for m in result.get_asset_materialization_events()] == [
        "eval_report"
    ]
    # The API keeps the last good version: the manifest is untouched.
    assert read_json(artifacts.uri(catalogue.SERVING_MANIFEST)) == published
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


def test_the_ranker_ablation_compares_each_variant_with_the_full_ranker(
    pipeline: Pipeline, tmp_path: Path
) -> None:
    pipeline.require("ranker_model")
    resources = _copy(pipeline, tmp_path)
    with DagsterInstance.ephemeral() as instance:
        result = materialize([models.ranker_ablation], resources=resources, instance=instance)
    ablation = read_json(resources["settings"].artifacts.uri(catalogue.RANKER_ABLATION))
    rows = {row["variant"]: row for row in ablation["variants"]}
    assert list(rows) == ["full", "without the GAT", "without EASE and ItemKNN", "without content"]
    assert "gat" not in rows["without the GAT"]["sources"] and "gat" in rows["full"]["sources"]
    assert not {"ease", "itemknn"} & set(rows["without EASE and ItemKNN"]["sources"])
    assert not any(s.endswith("_knn") or s == "cold_content" for s in rows["without content"]["sources"])
    # The full ranker as ranker_model trained it (same settings, same data).
    report = read_json(resources["settings"].artifacts.uri(catalogue.EVAL_REPORT))
    assert rows["full"]["test"]["ndcg@20"] == pytest.approx(report["models"]["ranker"]["test"]["ndcg@20"])
    for split in ("val", "test"):
        compared = ablation["comparisons_ndcg@20"][split]
        assert set(compared) == set(rows) - {"full"}
        for name, comparison in compared.items():
            relative = rows[name][split]["ndcg@20"] / rows["full"][split]["ndcg@20"] - 1
            assert comparison["relative"] == pytest.approx(relative)
            assert comparison["p"] <= comparison["p_holm"] <= 1
    (event,) = result.asset_materializations_for_node("ranker_ablation")
    assert all(f"| {name} |" in event.metadata["ablation"].value for name in rows)
    assert "without the GAT vs full" in event.metadata["comparisons"].value


def test_ablation_job_records_one_row_per_variant(pipeline: Pipeline, tmp_path: Path) -> None:
    pipeline.require("gat_model")
    resources = _copy(pipeline, tmp_path)
    with DagsterInstance.ephemeral() as instance:
        result = materialize([models.gat_ablation], resources=resources, instance=instance)
    ablation = read_json(resources["settings"].artifacts.uri(catalogue.ABLATION))
    names = [v["variant"] for v in ablation["variants"]]
    assert names == ["base", "features=txt", "loss=bpr", "loss=bce", "heads=4", "layers=1", "layers=3",
                     "no item-item edges", "no edge features", "no order at all",
                     "no sequence context", "no next-item edges"]  # fmt: skip
    by_name = {v["variant"]: v for v in ablation["variants"]}
    assert by_name["features=txt"]["features"] == "txt" and by_name["base"]["features"] == "fused"
    assert by_name["loss=bpr"]["config"]["negatives"] == 16 and by_name["base"]["config"]["negatives"] == 512
    assert (
        by_name["layers=3"]["config"]["layers"] == 3
        and not by_name["no edge features"]["config"]["edge_features"]
    )
    off = by_name["no order at all"]
    assert off["config"]["recency_readout"] == [0.0] and off["recency_readout"] == 0.0
    assert not off["config"]["sequence"] and not off["config"]["next_edges"]
    # The base learns its readout weight with its sequence context.
    assert by_name["base"]["config"]["sequence"] and by_name["base"]["recency_readout"] != 1.0
    for variant in ablation["variants"]:
        assert 0 < variant["test_ndcg@20"] <= 1 and variant["config"]["epochs"] == EPOCHS
    (event,) = result.asset_materializations_for_node("gat_ablation")
    table = event.metadata["ablation"].value
    assert all(f"| {name} |" in table for name in names)
    assert (
        event.metadata["best_on_validation"].value
        == max(ablation["variants"], key=lambda v: v["val_ndcg@20"])["variant"]
    )


def test_unknown_model_settings_are_named() -> None:
    from recsys_assets.settings import SettingsError
    from recsys_assets.settings.models import GATConfig

    with pytest.raises(
        SettingsError, match=r"ablation variant 'x': tau: Extra inputs are not permitted; known "
    ):
        GATConfig().with_changes({"tau": 0.2}, "ablation variant 'x'")


def test_a_search_finds_settings_that_the_model_asset_then_trains_with(
    pipeline: Pipeline, tmp_path: Path
) -> None:
    pipeline.require("ease_model")
    resources = _copy(pipeline, tmp_path, {"search": {"trials": 4}})
    artifacts = resources["settings"].artifacts
    with DagsterInstance.ephemeral() as instance:
        result = materialize([models.hyperparameter_search], partition_key="ease", resources=resources,
                             instance=instance)  # fmt: skip
        assert result.success
        (event,) = result.asset_materializations_for_node("hyperparameter_search")
        best = read_json(artifacts.uri(catalogue.SEARCH_BEST, model="ease"))
        assert best["model"] == "ease" and best["trials"] == 4 and len(best["params"]["l2"]) == 1
        assert event.metadata["best_val_ndcg20"].value == best["val_ndcg@20"]
        assert event.metadata["trials"].value == 4 and event.metadata["new_trials"].value == 4
        assert "| trial | state | val NDCG@20 |" in event.metadata["trials_table"].value
        assert "data:image/png;base64," in event.metadata["optimisation_history"].value
        # A second run resumes the study from its journal.
        again = materialize([models.hyperparameter_search], partition_key="ease", resources=resources,
                            instance=instance)  # fmt: skip
        assert read_json(artifacts.uri(catalogue.SEARCH_BEST, model="ease"))["trials"] == 8
        assert again.success
        trained = materialize([models.MODEL_ASSETS["ease"]], resources=resources, instance=instance)
    assert trained.success
    meta = read_json(artifacts.uri(catalogue.MODEL_META, model="ease"))
    best = read_json(artifacts.uri(catalogue.SEARCH_BEST, model="ease"))
    assert meta["tuned_from"] == artifacts.uri(catalogue.SEARCH_BEST, model="ease")
    assert meta["config"]["l2"] == best["params"]["l2"] and meta["chosen"]["l2"] == best["params"]["l2"][0]
    assert meta["order_val_ndcg@20"]["chosen"] == pytest.approx(best["val_ndcg@20"], abs=1e-5)


def test_the_rankers_search_reads_the_trained_retrievers_and_its_asset_then_trains_with_the_best(
    pipeline: Pipeline, tmp_path: Path
) -> None:
    pipeline.require("ranker_model")
    resources = _copy(pipeline, tmp_path, {"search": {"trials": 2}})
    artifacts = resources["settings"].artifacts
    with DagsterInstance.ephemeral() as instance:
        result = materialize([models.hyperparameter_search], partition_key="ranker", resources=resources,
                             instance=instance)  # fmt: skip
        assert result.success
        best = read_json(artifacts.uri(catalogue.SEARCH_BEST, model="ranker"))
        assert best["trials"] == 2 and set(best["params"]) == {"per_source", "grid"}
        assert 0 < best["val_ndcg@20"] < 1 and len(best["params"]["grid"]) == 1
        trained = materialize([models.MODEL_ASSETS["ranker"]], resources=resources, instance=instance)
    assert trained.success
    meta = read_json(artifacts.uri(catalogue.MODEL_META, model="ranker"))
    assert meta["tuned_from"] == artifacts.uri(catalogue.SEARCH_BEST, model="ranker")
    assert meta["config"]["per_source"] == best["params"]["per_source"]
    assert meta["config"]["grid"] == best["params"]["grid"]
    # A retriever not trained yet is named, not a missing file somewhere in the job.
    Path(artifacts.uri(catalogue.MODEL_META, model="ease")).unlink()
    with (
        DagsterInstance.ephemeral() as instance,
        pytest.raises(Exception, match=r"materialize ease_model first"),
    ):
        materialize(
            [models.hyperparameter_search], partition_key="ranker", resources=resources, instance=instance
        )


def test_cold_start_report_ranks_held_out_items_by_model(pipeline: Pipeline, tmp_path: Path) -> None:
    pipeline.require("gat_model")
    resources = _copy(pipeline, tmp_path)
    with DagsterInstance.ephemeral() as instance:
        result = materialize([models.cold_start_report], resources=resources, instance=instance)
    report = read_json(resources["settings"].artifacts.uri(catalogue.COLD_START_REPORT))
    names = [row["model"] for row in report["models"]]
    assert names == ["popularity", "content (txt)", "content (fused)", "gat (fused)", "ranker"]
    protocol = report["protocol"]
    assert protocol["share"] == 0.1 and protocol["held_out_items"] >= 2
    assert protocol["cold_test_interactions"] > 0 and protocol["cold_val_interactions"] > 0
    by_name = {row["model"]: row for row in report["models"]}
    # Popularity has never seen a held-out item: none reaches anyone's top 20.
    assert by_name["popularity"]["test"]["ndcg@20"] == 0.0
    assert by_name["popularity"]["test"]["held_out_share_of_top"] == 0.0
    for row in report["models"]:
        assert 0.0 <= row["test"]["ndcg@20"] <= row["test"]["hit@20"] <= 1.0
        lo, hi = row["test"]["ci"]["ndcg@20"]
        assert lo <= row["test"]["ndcg@20"] <= hi
    # The comparisons the table invites, paired over the same users and Holm-corrected.
    compared = report["comparisons_ndcg@20"]["test"]
    assert set(compared) == {
        "gat (fused) vs content (txt)", "gat (fused) vs content (fused)", "ranker vs content (txt)",
        "ranker vs content (fused)", "content (fused) vs content (txt)",
    }  # fmt: skip
    # The ranker's retrievers were fitted on the warm rows; content proposes the cold items.
    assert set(by_name["ranker"]["settings"].split(", ")) == {
        "popularity", "gat", "ease", "fused_knn", "txt_knn", "cold_content"
    }  # fmt: skip
    assert all(c["p"] <= c["p_holm"] <= 1 for c in compared.values())
    (event,) = result.asset_materializations_for_node("cold_start_report")
    assert "| gat (fused) |" in event.metadata["report"].value
    # The fused content (a peer, and the GAT's input and edges) comes from a fusion refit without
    # the held-out items' interactions, and the table says so.
    assert protocol["fused"].startswith("fused vectors from the fusion MLP refit on the warm train rows only")
    assert event.metadata["report"].value.endswith(
        f"Content (fused) and the GAT's fused input: {protocol['fused']}."
    )
    assert event.metadata["comparisons"].value.endswith("(paired over users, Holm-corrected)")
    assert event.metadata["gat_fused_cold_test_ndcg_at_20"].value == round(
        by_name["gat (fused)"]["test"]["ndcg@20"], 5
    )


def test_every_fitted_artifact_passes_its_leakage_check(pipeline: Pipeline) -> None:
    pipeline.require("item_fused_embeddings", *(f"{name}_model" for name in MODELS))
    splits = pd.read_parquet(pipeline.artifacts.uri(catalogue.SPLITS))
    train = int((splits["split"] == "train").sum())
    for asset in ("item_fused_embeddings", *(f"{name}_model" for name in MODELS)):
        check = pipeline.checks[f"{asset}_fitted_on_train_only"]
        assert check.passed, check.description
        assert check.description.startswith(f"{asset} was fitted on exactly the split's {train:,} train")
        assert check.metadata["validation_seen"].value == check.metadata["test_seen"].value == 0


def test_a_model_fitted_on_train_and_validation_is_stopped_by_its_check(
    pipeline: Pipeline, tmp_path: Path
) -> None:
    """A leak planted for real: popularity fitted on the train and validation rows, written
    with the training job's own code, then the check run through Dagster against the split."""
    from dagster import AssetSelection, define_asset_job

    from recsys_assets.core.graphs.node_maps import NodeMaps
    from recsys_assets.core.io.codecs import save
    from recsys_assets.core.models import training
    from recsys_assets.core.models.training_data import training_data
    from recsys_assets.defs.assets.leakage import LEAKAGE_CHECKS
    from recsys_assets.pipes.contracts import TRAIN_CONTRACTS, TrainingInputs
    from recsys_assets.pipes.train_model import save_model

    pipeline.require("popularity_model")
    resources = _copy(pipeline, tmp_path)
    artifacts = resources["settings"].artifacts
    splits = pd.read_parquet(artifacts.uri(catalogue.SPLITS))
    leaky = splits.assign(split=splits["split"].astype(str).replace({"val": "train"}))
    data = training_data(leaky, NodeMaps.from_json(read_json(artifacts.uri(catalogue.NODE_MAPS))))
    trained = training.fit_popularity(data)
    params = TRAIN_CONTRACTS["popularity"](
        asset="popularity_model",
        model="popularity",
        data=TrainingInputs(splits_uri="", node_maps_uri=""),
        output=models.model_files(artifacts, "popularity"),
    )
    save_model(params, trained)
    trained_on = data.trained_on()
    save(params.output.trained_on_uri, trained_on.keys)
    meta = read_json(params.output.meta_uri)
    save(params.output.meta_uri, {**meta, "trained_on": trained_on.summary(params.output.trained_on_uri)})

    (check,) = [c for c in LEAKAGE_CHECKS if "popularity_model" in str(c.check_keys)]
    job = define_asset_job("leak", selection=AssetSelection.checks(check))
    definitions = Definitions(
        assets=[models.MODEL_ASSETS["popularity"]], asset_checks=[check], jobs=[job], resources=resources
    )
    with DagsterInstance.ephemeral() as instance:
        result = definitions.resolve_job_def("leak").execute_in_process(
            instance=instance, raise_on_error=False
        )
    (evaluation,) = result.get_asset_check_evaluations()
    n_val = int((splits["split"] == "val").sum())
    first = splits[splits["split"] == "val"].iloc[0]
    assert not evaluation.passed
    assert evaluation.description == (
        f"LEAK: popularity_model was fitted on {n_val:,} validation and 0 test interaction(s) of "
        f"interaction_splits (e.g. user {first['user_id']!r}, item {first['item_id']!r} at {first['ts']}, "
        f"a val row); it must fit on the {int((splits['split'] == 'train').sum()):,} train rows only"
    )
    assert evaluation.metadata["validation_seen"].value == n_val


def test_models_trained_with_several_seeds_report_their_spread(pipeline: Pipeline, tmp_path: Path) -> None:
    pipeline.require("eval_report")
    resources = _copy(pipeline, tmp_path)
    settings = resources["settings"].tree.with_changes({"models": {"seeds": 2, "mf": {"epochs": 5}}})
    resources = make_resources(settings)
    with DagsterInstance.ephemeral() as instance:
        selected = [models.MODEL_ASSETS["mf"], models.eval_report]
        result = materialize(selected, resources=resources, instance=instance, selection=selected)
    assert result.success
    artifacts = resources["settings"].artifacts
    meta = read_json(artifacts.uri(catalogue.MODEL_META, model="mf"))
    assert [run["seed"] for run in meta["seeds"]] == [0, 1]
    report = read_json(artifacts.uri(catalogue.EVAL_REPORT))
    mf = report["models"]["mf"]
    # The first seed is the model eval_report evaluates, the same way.
    assert meta["seeds"][0]["test_ndcg@20"] == pytest.approx(mf["test"]["ndcg@20"], abs=1e-9)
    tests = [run["test_ndcg@20"] for run in meta["seeds"]]
    assert mf["seeds"]["test_ndcg@20"]["mean"] == pytest.approx(np.mean(tests))
    assert mf["seeds"]["test_ndcg@20"]["sd"] == pytest.approx(np.std(tests, ddof=1))
    assert report["models"]["ease"]["seeds"] is None  # closed form: one fit
    wide = Path(artifacts.uri(catalogue.EVAL_TABLE)).read_text()
    assert f"{np.mean(tests):.4f} ± {np.std(tests, ddof=1):.4f} (2 seeds)" in wide
