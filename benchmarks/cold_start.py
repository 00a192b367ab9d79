"""MovieLens-100k, item cold start: items held out entirely, ranked among all items.

    python -m benchmarks.movielens cold

The protocol of ``core/models/cold_start.py`` (10% of the items with interactions held out,
half for cold validation, half for cold test) with popularity, the content-only peer (its
order chosen on cold validation) and the GAT trained without the held-out items, on the item
text (title + genres + year). The same job runs in the asset graph (``cold_start_report``).
"""

from __future__ import annotations

from typing import Any

import numpy as np

from benchmarks.movielens import gat_inputs, ml100k
from benchmarks.results import machine, now, verdict, write_section
from recsys_assets.core.graphs.edges import ui_edges
from recsys_assets.core.graphs.knn import knn_graph
from recsys_assets.core.markdown import markdown_table
from recsys_assets.core.models import training
from recsys_assets.core.models.cold_start import cold_metrics, content_scorer, item_cold_start
from recsys_assets.core.models.gat.graph import build_graph
from recsys_assets.core.models.popularity import popularity_scores
from recsys_assets.core.models.recency import Order, choose, order_grid
from recsys_assets.settings.graphs import KnnConfig
from recsys_assets.settings.models import ColdStartConfig, GATConfig, OrderConfig

#: The GAT must reach this multiple of the content-only peer's cold test NDCG@20.
TARGET = 1.2


def cold() -> None:
    split, items, maps, data = ml100k()
    text, _ = gat_inputs(split, items, maps, data)
    protocol_config = ColdStartConfig()
    protocol = item_cold_start(data, protocol_config.share, protocol_config.seed)
    warm = protocol.warm
    rows: list[dict[str, Any]] = []
    counts = popularity_scores(warm.train.indices, data.n_items)
    popular = cold_metrics(lambda r: np.broadcast_to(counts, (len(r), len(counts))), protocol)
    rows.append({"model": "popularity", "order": "-", **popular})

    order_config = OrderConfig()

    def content_val(_: int, order: Order) -> float:
        return float(cold_metrics(content_scorer(text, warm.train, order), protocol)["val"]["ndcg@20"])

    content_order = choose([{}], order_grid(order_config.decays, order_config.floors), content_val).best.order
    rows.append({"model": "content (text)", "order": content_order.label(),
                 **cold_metrics(content_scorer(text, warm.train, content_order), protocol)})  # fmt: skip
    ui = ui_edges(split[split["split"] == "train"], maps)
    held = np.zeros(data.n_items, dtype=bool)
    held[np.concatenate([protocol.val_items, protocol.test_items])] = True
    keep = ~held[ui["dst"]]
    graph = build_graph({k: v[keep] for k, v in ui.items() if k != "num_nodes"}, data.n_users, data.n_items,
                        knn_graph(text, KnnConfig(k=20)).to_npz())  # fmt: skip
    variants: tuple[tuple[str, dict[str, Any]], ...] = (
        ("gat", {}),
        ("gat, id dropout 0.5", {"id_dropout": 0.5}),
    )
    for name, overrides in variants:
        trained = training.fit_gat(warm, text, graph, GATConfig().with_changes(overrides))
        order = Order(**trained.extra["training_order"])
        scored = cold_metrics(trained.model.scorer(warm.train, warm.n_items, order), protocol)
        rows.append({"model": name, "order": order.label(), **scored})
        print(rows[-1]["model"], rows[-1]["test"]["ndcg@20"], flush=True)
    content = rows[1]["test"]["ndcg@20"]
    best_gat = max(rows[2:], key=lambda r: r["val"]["ndcg@20"])
    lines = [
        "## MovieLens-100k: item cold start",
        "",
        "- command: `python -m benchmarks.movielens cold`",
        f"- date: {now()}",
        f"- machine: {machine()}",
        f"- protocol: {protocol.summary()}; every item ranked, train items excluded; content = "
        "all-MiniLM-L6-v2 over title + genres + year, item-item edges = its exact kNN (k 20)",
        "",
        markdown_table(
            [
                "model",
                "order",
                "cold val NDCG@20",
                "cold test NDCG@20",
                "cold test Recall@20",
                "held-out share of the top 20 (test)",
            ],
            [
                [
                    r["model"],
                    r["order"],
                    f"{r['val']['ndcg@20']:.4f}",
                    f"{r['test']['ndcg@20']:.4f}",
                    f"{r['test']['recall@20']:.4f}",
                    f"{r['test']['held_out_share_of_top']:.3f}",
                ]
                for r in rows
            ],
        ),
        "",
        f"GAT chosen on cold validation: {best_gat['model']}, cold test NDCG@20 "
        f"{best_gat['test']['ndcg@20']:.4f} = {best_gat['test']['ndcg@20'] / max(content, 1e-12):.2f}x the "
        f"content-only peer's {content:.4f}; target >= {TARGET}x: "
        f"{verdict(best_gat['test']['ndcg@20'] >= TARGET * content)}.",
    ]
    write_section("movielens_cold_start", lines)
    print("\n".join(lines))
