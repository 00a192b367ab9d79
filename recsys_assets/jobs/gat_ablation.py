"""Job: GAT variants trained and evaluated side by side -> ``eval/ablation.json`` + a table.

Extras: ``splits_uri``, ``node_maps_uri``, ``ui_edges_uri``, ``features_uris`` and ``ii_edges_uris`` (feature
name -> item embeddings / item-item edges), ``base`` (the GAT config the model asset uses,
with ``features``), optional ``variants`` (name -> overrides of ``base``; the default varies
one thing at a time: features, loss, heads, layers, item-item edges, edge attributes),
``output_uri``.
Every variant is chosen on validation like the model itself; test is reported beside it.
"""

from __future__ import annotations

from functools import partial
from typing import Any

from recsys_assets.core.artifacts import write_json
from recsys_assets.core.evaluation import evaluate
from recsys_assets.core.gat import LOSSES, GATConfig
from recsys_assets.core.markdown import markdown_table
from recsys_assets.jobs.pipes_io import JobResult, md, run_job
from recsys_assets.jobs.train_model import fit_gat, load_gat_inputs, load_training_data, make_config


def default_variants(base: dict[str, Any]) -> dict[str, dict[str, Any]]:
    other = "txt" if base["features"] == "fused" else "fused"
    losses = [loss for loss in LOSSES if loss != base.get("loss", GATConfig.loss)]
    return {
        "base": {},
        f"features={other}": {"features": other},
        # ``negatives: 0`` picks the loss's own default count.
        **{f"loss={loss}": {"loss": loss, "negatives": 0} for loss in losses},
        "heads=4": {"heads": 4},
        "layers=1": {"layers": 1},
        "layers=3": {"layers": 3},
        "no item-item edges": {"item_item": False},
        "no edge features": {"edge_features": False},
        "no recency readout": {"recency_readout": [0.0]},
    }


def log_epoch(pipes: Any, variant: str, record: dict[str, float]) -> None:
    epoch, ndcg = int(record["epoch"]), record["val_ndcg@20"]
    if epoch % 10 == 0:
        pipes.log.info(f"ablation {variant} epoch {epoch}: val NDCG@20 {ndcg:.4f}")


def run(params: dict[str, Any], pipes: Any, run_id: str) -> JobResult:
    data = load_training_data(params)
    base = dict(params["base"])
    variants = params.get("variants") or default_variants(base)
    rows: list[dict[str, Any]] = []
    for name, overrides in variants.items():
        settings = {**base, **overrides}
        features = settings.pop("features")
        config = make_config(GATConfig, settings, "gat")
        inputs = {
            "features_uri": params["features_uris"][features],
            "ui_edges_uri": params["ui_edges_uri"],
            "ii_edges_uri": params["ii_edges_uris"][features],
        }
        pipes.log.info(f"ablation {name}: features {features}, {config.to_dict()}")
        x, graph = load_gat_inputs(inputs, data)
        trained = fit_gat(data, x, graph, config, progress=partial(log_epoch, pipes, name))
        metrics = evaluate(trained.users, trained.items, data)
        assert trained.fit is not None
        rows.append(
            {
                "variant": name,
                "features": features,
                "config": config.to_dict(),
                "best_epoch": trained.fit.best_epoch,
                "recency_readout": trained.extra["recency_readout"],
                "train_seconds": round(trained.fit.seconds, 3),
                **{f"val_{m}": metrics["val"][m] for m in ("ndcg@20", "recall@20")},
                **{f"test_{m}": metrics["test"][m] for m in ("ndcg@20", "recall@20", "ndcg@10", "recall@10")},
            }
        )
        pipes.log.info(
            f"ablation {name}: val NDCG@20 {rows[-1]['val_ndcg@20']:.4f}, test {rows[-1]['test_ndcg@20']:.4f}"
        )
    write_json(params["output_uri"], {"data": data.summary(), "variants": rows, "run_id": run_id})
    table = markdown_table(
        [
            "variant",
            "features",
            "val NDCG@20",
            "test NDCG@20",
            "test Recall@20",
            "best epoch",
            "readout",
            "train s",
        ],
        [
            [
                r["variant"],
                r["features"],
                f"{r['val_ndcg@20']:.4f}",
                f"{r['test_ndcg@20']:.4f}",
                f"{r['test_recall@20']:.4f}",
                r["best_epoch"],
                f"{r['recency_readout']:g}",
                f"{r['train_seconds']:.1f}",
            ]
            for r in rows
        ],
    )
    best = max(rows, key=lambda r: r["val_ndcg@20"])
    return JobResult(
        {
            "uri": params["output_uri"],
            "variants": len(rows),
            "best_on_validation": best["variant"],
            "ablation": md(table),
        }
    )


if __name__ == "__main__":
    run_job(run)
