"""Job: the item-cold-start protocol -> ``eval/cold_start.json``: popularity, the content-only
peers (text and fused) and the GAT, each trained without any interaction of the held-out
items, ranking every item for the users who later chose one of them."""

from __future__ import annotations

from typing import Any

from dagster_pipes import PipesContext

from recsys_assets.core.io.codecs import read_npy, save
from recsys_assets.core.markdown import markdown_table
from recsys_assets.core.models import training
from recsys_assets.core.models.cold_start import (
    ColdStart,
    cold_metrics,
    content_order,
    content_scorer,
    item_cold_start,
    popularity_scorer,
)
from recsys_assets.core.models.gat.graph import RATES, without_items
from recsys_assets.core.models.gat.inputs import load_gat_inputs
from recsys_assets.core.models.metrics import Score
from recsys_assets.core.models.recency import Order
from recsys_assets.core.models.training_data import load_training_data
from recsys_assets.jobs.contracts import ColdStartParams
from recsys_assets.jobs.pipes_io import JobResult, json_value, run_job


def _entry(
    name: str, score: Score, protocol: ColdStart, settings: str, pipes: PipesContext
) -> dict[str, Any]:
    metrics = cold_metrics(score, protocol)
    val, test = metrics["val"]["ndcg@20"], metrics["test"]["ndcg@20"]
    pipes.log.info(f"{name}: cold val NDCG@20 {val:.4f}, cold test {test:.4f}")
    return {"model": name, "settings": settings, **metrics}


def run(params: ColdStartParams, pipes: PipesContext) -> JobResult:
    data = load_training_data(params.data.splits_uri, params.data.node_maps_uri)
    protocol = item_cold_start(data, params.protocol.share, params.protocol.seed)
    warm = protocol.warm
    pipes.log.info(f"item cold start: {protocol.summary()}")
    rows = [_entry("popularity", popularity_scorer(protocol), protocol, "-", pipes)]
    for name, uri in params.content_uris.items():
        content = read_npy(uri)
        order = content_order(content, protocol, params.order)
        rows.append(_entry(f"content ({name})", content_scorer(content, warm.train, order), protocol,
                           order.label(), pipes))  # fmt: skip
    inputs = params.inputs
    features, full = load_gat_inputs(inputs.features_uri, inputs.ui_edges_uri, inputs.ii_edges_uri, data)
    graph = without_items(full, protocol.held())
    kept, total = int(graph.edges[RATES].shape[1]), int(full.edges[RATES].shape[1])
    pipes.log.info(f"training the GAT without the held-out items ({kept:,} of {total:,} edges)")
    trained = training.fit_gat(warm, features, graph, params.gat)
    order = Order(**trained.extra["training_order"])
    gat_score = trained.model.scorer(warm.train, warm.n_items, order)
    rows.append(_entry(f"gat ({inputs.features})", gat_score, protocol, order.label(), pipes))
    described: dict[str, Any] = {**params.protocol.to_dict(), **protocol.summary()}
    report = {"protocol": described, "models": rows}
    save(params.output_uri, report)
    table = markdown_table(
        ["model", "order", "cold val NDCG@20", "cold test NDCG@20", "cold test Recall@20",
         "held-out share of the top 20 (test)"],
        [[r["model"], r["settings"], f"{r['val']['ndcg@20']:.4f}", f"{r['test']['ndcg@20']:.4f}",
          f"{r['test']['recall@20']:.4f}", f"{r['test']['held_out_share_of_top']:.3f}"] for r in rows],
    )  # fmt: skip
    metadata = {
        "uri": params.output_uri,
        "protocol": json_value(described),
        "report": table,
        **{_slug(r["model"]) + "_cold_test_ndcg_at_20": round(r["test"]["ndcg@20"], 5) for r in rows},
    }
    return JobResult(metadata)


def _slug(model: str) -> str:
    return model.replace(" (", "_").rstrip(")")


if __name__ == "__main__":
    run_job(run, ColdStartParams)
