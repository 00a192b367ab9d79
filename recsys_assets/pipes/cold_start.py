"""Job: the item-cold-start protocol -> ``eval/cold_start.json``: popularity, the content-only
peers (text and fused), the GAT and the two-stage ranker, each trained without any interaction
of the held-out items, ranking every item for the users who later chose one of them.

Nothing fitted here sees a held-out item's interactions: the fusion MLP (whose fused vectors
are a content peer, the GAT's input and its item-item edges) is refit on the warm train rows,
and its kNN edges rebuilt from the refit, rather than taken from ``item_fused_embeddings``,
which trained on the held-out items' co-reviews.
"""

from __future__ import annotations

from typing import Any

import numpy as np
from dagster_pipes import PipesContext

from recsys_assets.core.embeddings import fusion
from recsys_assets.core.graphs.knn import knn_graph
from recsys_assets.core.io.codecs import read_npy, read_npz, read_parquet, save
from recsys_assets.core.io.sparse import Csr
from recsys_assets.core.markdown import markdown_table
from recsys_assets.core.models import training
from recsys_assets.core.models.cold_start import (
    ColdStart,
    cold_scores,
    content_order,
    content_scorer,
    item_cold_start,
    popularity_scorer,
)
from recsys_assets.core.models.gat.graph import RATES, without_items
from recsys_assets.core.models.gat.inputs import gat_graph
from recsys_assets.core.models.metrics import Score
from recsys_assets.core.models.ranker.fit import fit as fit_ranker
from recsys_assets.core.models.ranker.inputs import RankerInputs
from recsys_assets.core.models.recency import ORDER_FREE, Order
from recsys_assets.core.models.report import with_ci
from recsys_assets.core.models.scoring import Scorable
from recsys_assets.core.models.training_data import TrainingData, load_training_data
from recsys_assets.core.models.uncertainty import (
    SPLIT_SEEDS,
    Column,
    Resampled,
    column,
    compare_pairs,
    describe,
)
from recsys_assets.pipes.contracts import ColdStartParams
from recsys_assets.pipes.pipes_io import JobResult, json_value, run_job
from recsys_assets.settings.models import EvaluationConfig, RankerConfig

#: What the report says of the fused vectors it used.
REFIT_NOTE = (
    "fused vectors from the fusion MLP refit on the warm train rows only: it never saw an interaction "
    "of a held-out item"
)


def _entry(
    name: str,
    score: Score,
    protocol: ColdStart,
    settings: str,
    pipes: PipesContext,
    per_user: dict[str, dict[str, np.ndarray]],
) -> dict[str, Any]:
    metrics, per_user[name] = cold_scores(score, protocol)
    val, test = metrics["val"]["ndcg@20"], metrics["test"]["ndcg@20"]
    pipes.log.info(f"{name}: cold val NDCG@20 {val:.4f}, cold test {test:.4f}")
    return {"model": name, "settings": settings, **metrics}


def with_intervals(
    rows: list[dict[str, Any]], per_user: dict[str, dict[str, np.ndarray]], config: EvaluationConfig
) -> dict[str, dict[str, Any]]:
    """Each row's cold NDCG@20 with its interval (users resampled once per split, shared by every
    model), and the comparisons the table invites, paired and Holm-corrected: the GAT and the
    ranker against each content peer, and fused content against text."""
    names = [r["model"] for r in rows]
    content = [n for n in names if n.startswith("content")]
    learned = [n for n in names if n.startswith(("gat", "ranker"))]
    pairs = [(model, peer) for model in learned for peer in content]
    pairs += [(content[1], content[0])] if len(content) == 2 else []
    found: dict[str, dict[str, Any]] = {}
    for split, offset in SPLIT_SEEDS.items():
        columns = {
            column(n, "ndcg@20"): Column(per_user[n][split], np.ones(len(per_user[n][split]))) for n in names
        }
        resampled = Resampled.of(columns, config.resamples, config.seed + offset, config.confidence)
        for row in rows:
            row[split]["ci"] = {"ndcg@20": resampled.interval(column(row["model"], "ndcg@20"))}
        compared = compare_pairs(resampled, [(column(a, "ndcg@20"), column(b, "ndcg@20")) for a, b in pairs])
        found[split] = {f"{a} vs {b}": c for (a, b), c in zip(pairs, compared, strict=True)}
    return found


def cold_ranker(
    protocol: ColdStart,
    retrievers: dict[str, tuple[Scorable, Order]],
    content: dict[str, np.ndarray],
    config: RankerConfig,
    pipes: PipesContext,
    per_user: dict[str, dict[str, np.ndarray]],
) -> dict[str, Any]:
    """The two-stage ranker on the protocol: its retrievers fitted on the warm rows (popularity,
    EASE, the GAT above) and the content never fitted on a held-out item's interactions; it learns
    from the warm validation targets only, so the cold validation targets stay as unseen as the cold
    test ones (folds over users would not hold the few held-out items apart: a ranker taught on some
    users' cold validation items scores those same items for the others), and ranks every item (the
    warm train items excluded) for the cold users from the train history."""
    warm = protocol.warm
    # "test" here is every cold user (validation and test): the final model scores them alike.
    rows = [np.repeat(np.arange(warm.n_users), t.lengths()) for t in (protocol.cold_val, protocol.cold_test)]
    cold = Csr.from_pairs(
        np.concatenate(rows),
        np.concatenate([protocol.cold_val.indices, protocol.cold_test.indices]),
        warm.n_users,
    )
    data = TrainingData(warm.train, warm.val, cold, warm.n_items, test_history=warm.train)
    pipes.log.info(f"training the ranker on the warm retrievers {sorted(retrievers)} and content")
    inputs = RankerInputs(retrievers, content)
    trained = fit_ranker(data, config, training.Fitting(ranker=inputs, log=pipes.log.info))
    scores = trained.model.split_scorers()
    assert scores is not None
    metrics, per_user["ranker"] = cold_scores(scores["test"], protocol)
    val, test = metrics["val"]["ndcg@20"], metrics["test"]["ndcg@20"]
    pipes.log.info(f"ranker: cold val NDCG@20 {val:.4f}, cold test {test:.4f}")
    return {"model": "ranker", "settings": ", ".join(trained.extra["sources"]), **metrics}


def refit_fusion(
    params: ColdStartParams, protocol: ColdStart, text: np.ndarray, pipes: PipesContext
) -> np.ndarray:
    """The fused vectors of a fusion MLP fitted on the warm train rows (none of a held-out item's)."""
    image = read_npy(params.image_uri)
    image_rows = read_parquet(params.image_items_uri, columns=["item_row"])["item_row"].to_numpy()
    warm = protocol.warm
    pairs = fusion.co_review_pairs(warm.train, params.fusion.pair_window)
    if protocol.held()[pairs].any():
        raise RuntimeError("cold start: a held-out item reached the fusion's training pairs")
    pipes.log.info(f"refitting the fusion MLP on the warm train rows ({len(warm.train.indices):,})")
    return fusion.fit_fusion(text, image, image_rows, warm, params.fusion, pipes.log.info).fused


def run(params: ColdStartParams, pipes: PipesContext) -> JobResult:
    data = load_training_data(params.data.splits_uri, params.data.node_maps_uri)
    protocol = item_cold_start(data, params.protocol.share, params.protocol.seed)
    warm = protocol.warm
    pipes.log.info(f"item cold start: {protocol.summary()}")
    text = read_npy(params.text_uri)
    content = {"txt": text, "fused": refit_fusion(params, protocol, text, pipes)}
    per_user: dict[str, dict[str, np.ndarray]] = {}
    rows = [_entry("popularity", popularity_scorer(protocol), protocol, "-", pipes, per_user)]
    for name, vectors in content.items():
        order = content_order(vectors, protocol, params.order)
        rows.append(_entry(f"content ({name})", content_scorer(vectors, warm.train, order), protocol,
                           order.label(), pipes, per_user))  # fmt: skip
    inputs = params.inputs
    features = content[inputs.features]
    refit = inputs.features == "fused"
    ii = knn_graph(features, params.knn).to_npz() if refit else read_npz(inputs.ii_edges_uri)
    ii_source = "the kNN edges of the refit fused vectors" if refit else inputs.ii_edges_uri
    full = gat_graph(read_npz(inputs.ui_edges_uri), ii, data, inputs.ui_edges_uri, ii_source)
    graph = without_items(full, protocol.held())
    kept, total = int(graph.edges[RATES].shape[1]), int(full.edges[RATES].shape[1])
    pipes.log.info(f"training the GAT without the held-out items ({kept:,} of {total:,} edges)")
    trained = training.fit_gat(warm, params.gat, training.Fitting(content=(features, graph)))
    order = Order(**trained.extra["training_order"])
    gat_score = trained.model.scorer(warm.train, warm.n_items, order)
    rows.append(_entry(f"gat ({inputs.features})", gat_score, protocol, order.label(), pipes, per_user))
    if params.ranker is not None:
        retrievers = {
            "popularity": (training.fit_popularity(warm).model, ORDER_FREE),
            "gat": (trained.model, order),
        }
        ease = training.fit_ease(warm, params.ease, training.Fitting(order=params.order))
        retrievers["ease"] = (ease.model, ease.order)
        rows.append(cold_ranker(protocol, retrievers, content, params.ranker, pipes, per_user))
    comparisons = with_intervals(rows, per_user, params.evaluation)
    described: dict[str, Any] = {**params.protocol.to_dict(), **protocol.summary(), "fused": REFIT_NOTE}
    report = {"protocol": described, "models": rows, "comparisons_ndcg@20": comparisons}
    save(params.output_uri, report)
    table = markdown_table(
        ["model", "order", "cold val NDCG@20 (95% CI)", "cold test NDCG@20 (95% CI)", "cold test Recall@20",
         "held-out share of the top 20 (test)"],
        [[r["model"], r["settings"], with_ci(r["val"]), with_ci(r["test"]), f"{r['test']['recall@20']:.4f}",
          f"{r['test']['held_out_share_of_top']:.3f}"] for r in rows],
    )  # fmt: skip
    confidence = params.evaluation.confidence
    said = [
        describe(a, b, c, "cold test NDCG@20", confidence)
        for (a, b), c in ((key.split(" vs ", 1), c) for key, c in comparisons["test"].items())
    ]
    metadata = {
        "uri": params.output_uri,
        "protocol": json_value(described),
        "report": table + f"\n\nContent (fused) and the GAT's fused input: {REFIT_NOTE}.",
        "comparisons": "; ".join(said) + " (paired over users, Holm-corrected)",
        **{_slug(r["model"]) + "_cold_test_ndcg_at_20": round(r["test"]["ndcg@20"], 5) for r in rows},
    }
    return JobResult(metadata)


def _slug(model: str) -> str:
    return model.replace(" (", "_").rstrip(")")


if __name__ == "__main__":
    run_job(run, ColdStartParams)
