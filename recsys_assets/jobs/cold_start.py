"""Job: the item-cold-start protocol -> ``eval/cold_start.json``: popularity, the content-only
peers (text and fused) and the GAT, each trained without any interaction of the held-out
items, ranking every item for the users who later chose one of them."""

from __future__ import annotations

from typing import Any

import numpy as np
from dagster_pipes import PipesContext

from recsys_assets.core.io.codecs import read_npy, read_npz, save
from recsys_assets.core.markdown import markdown_table
from recsys_assets.core.models import training
from recsys_assets.core.models.cold_start import ColdStart, cold_metrics, content_scorer, item_cold_start
from recsys_assets.core.models.gat.graph import build_graph
from recsys_assets.core.models.gat.inputs import load_gat_inputs
from recsys_assets.core.models.metrics import Score
from recsys_assets.core.models.popularity import popularity_scores
from recsys_assets.core.models.recency import Order, choose, order_grid
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


def _content_order(features: np.ndarray, protocol: ColdStart, params: ColdStartParams) -> Order:
    """The content peer's use of order, chosen on the cold validation targets."""

    def validate(_: int, order: Order) -> float:
        return float(
            cold_metrics(content_scorer(features, protocol.warm.train, order), protocol)["val"]["ndcg@20"]
        )

    return choose([{}], order_grid(params.order.decays, params.order.floors), validate).best.order


def run(params: ColdStartParams, pipes: PipesContext) -> JobResult:
    data = load_training_data(params.data.splits_uri, params.data.node_maps_uri)
    protocol = item_cold_start(data, params.protocol.share, params.protocol.seed)
    warm = protocol.warm
    pipes.log.info(f"item cold start: {protocol.summary()}")
    rows = []
    counts = popularity_scores(warm.train.indices, warm.n_items)
    rows.append(
        _entry("popularity", lambda r: np.broadcast_to(counts, (len(r), len(counts))), protocol, "-", pipes)
    )
    for name, uri in params.content_uris.items():
        order = _content_order(read_npy(uri), protocol, params)
        rows.append(_entry(f"content ({name})", content_scorer(read_npy(uri), warm.train, order), protocol,
                           order.label(), pipes))  # fmt: skip
    inputs = params.inputs
    features, _ = load_gat_inputs(inputs.features_uri, inputs.ui_edges_uri, inputs.ii_edges_uri, data)
    ui = read_npz(inputs.ui_edges_uri)
    held = np.zeros(data.n_items, dtype=bool)
    held[np.concatenate([protocol.val_items, protocol.test_items])] = True
    keep = ~held[ui["dst"]]
    warm_ui = {k: v[keep] for k, v in ui.items() if k != "num_nodes"}
    graph = build_graph(warm_ui, warm.n_users, warm.n_items, read_npz(inputs.ii_edges_uri))
    pipes.log.info(
        f"training the GAT without the held-out items ({int(keep.sum()):,} of {len(keep):,} edges)"
    )
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
