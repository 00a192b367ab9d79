"""The graphs family: the interaction split, node maps, user-item and item-item edges, QA report."""

from collections.abc import Iterator
from typing import Any

import numpy as np
import pandas as pd
from dagster import (
    AssetCheckResult,
    AssetCheckSpec,
    AssetExecutionContext,
    AssetIn,
    AssetsDefinition,
    MetadataValue,
    Output,
    asset,
)

from recsys_assets.core.catalogue.display import display_names
from recsys_assets.core.graphs.edges import edge_problems
from recsys_assets.core.graphs.edges import ui_edges as build_ui_edges
from recsys_assets.core.graphs.knn import knn_graph
from recsys_assets.core.graphs.node_maps import NodeMaps, build_node_maps
from recsys_assets.core.graphs.qa import degree_plot, qa_report, report_markdown
from recsys_assets.core.graphs.splits import SPLITS, split_interactions
from recsys_assets.core.io import artifacts as catalogue
from recsys_assets.core.io.codecs import read_npy
from recsys_assets.core.markdown import image
from recsys_assets.defs.assets.embeddings import item_fused_embeddings, item_text_embeddings
from recsys_assets.defs.environments import SettingsResource
from recsys_assets.defs.io_manager import artifact_metadata

GROUP = "graphs"


@asset(
    group_name=GROUP,
    ins={"interactions": AssetIn()},
    metadata=artifact_metadata(catalogue.SPLITS),
)
def interaction_splits(
    context: AssetExecutionContext, interactions: dict[str, pd.DataFrame]
) -> Output[pd.DataFrame]:
    """Per-user chronological train/val/test split (last 10% test, 10% before it val; n < 3: train)."""
    frame = pd.concat(list(interactions.values()), ignore_index=True)
    result = split_interactions(frame)
    counts = result.frame["split"].value_counts().reindex(list(SPLITS), fill_value=0)
    context.log.info(
        f"split {len(frame):,} interactions: " + ", ".join(f"{k} {v:,}" for k, v in counts.items())
    )
    return Output(
        result.frame,
        metadata={
            **{f"{name}_rows": int(counts[name]) for name in SPLITS},
            "users": int(result.frame["user_id"].nunique()),
            "repeated_user_item_pairs": result.repeated_pairs,
            "item_order": result.item_order,
        },
    )


@asset(
    group_name=GROUP,
    ins={
        "items": AssetIn(metadata={"columns": ["item_id"]}),
        "interaction_splits": AssetIn(metadata={"columns": ["user_id", "split"]}),
    },
    metadata=artifact_metadata(catalogue.NODE_MAPS),
)
def node_maps(items: pd.DataFrame, interaction_splits: pd.DataFrame) -> Output[dict[str, list[str]]]:
    """User and item ids <-> node indices (items in items order, all of them; users in train)."""
    train = interaction_splits[interaction_splits["split"] == "train"]
    maps = build_node_maps(items["item_id"], train)
    return Output(maps.to_json(), metadata={"users": len(maps.users), "items": len(maps.items)})


def _problem_check(check: str, problems: Any) -> AssetCheckResult:
    return AssetCheckResult(
        check_name=check,
        passed=problems.ok,
        description=(
            f"{problems.self_loops} self loops, {problems.duplicates} duplicate edges, "
            f"{problems.out_of_range} out-of-range node indices"
        ),
        metadata=vars(problems),
    )


@asset(
    group_name=GROUP,
    ins={
        "interaction_splits": AssetIn(metadata={"columns": ["user_id", "item_id", "rating", "ts", "split"]})
    },
    metadata=artifact_metadata(catalogue.UI_EDGES),
    check_specs=[
        AssetCheckSpec(
            "ui_edges_valid",
            asset="ui_edges",
            blocking=True,
            description="No duplicate or out-of-range edges.",
        )
    ],
)
def ui_edges(
    interaction_splits: pd.DataFrame, node_maps: dict[str, list[str]]
) -> Iterator[Output[dict[str, np.ndarray]] | AssetCheckResult]:
    """Train user -> item edges (weight = rating / user mean; recency in the history): graphs/ui_edges.npz."""
    maps = NodeMaps.from_json(node_maps)
    edges = build_ui_edges(interaction_splits[interaction_splits["split"] == "train"], maps)
    yield Output(
        edges,
        metadata={
            "edges": len(edges["src"]),
            "users": len(maps.users),
            "items": len(maps.items),
            "items_with_edges": len(np.unique(edges["dst"])),
            "weight_mean": float(edges["weight"].mean()) if len(edges["weight"]) else 0.0,
        },
    )
    yield _problem_check(
        "ui_edges_valid",
        edge_problems(edges["src"], edges["dst"], len(maps.users), len(maps.items), same_kind=False),
    )


def _knn_asset(name: str, embeddings_asset: AssetsDefinition) -> AssetsDefinition:
    key, source = f"ii_edges_{name}", catalogue.ITEM_FEATURES[name]

    @asset(
        name=key,
        group_name=GROUP,
        deps=[embeddings_asset],
        metadata=artifact_metadata(catalogue.II_EDGES[name]),
        kinds={"faiss"},
        check_specs=[
            AssetCheckSpec(
                f"{key}_valid",
                asset=key,
                blocking=True,
                description="No self loops, duplicates or bad indices.",
            ),
            AssetCheckSpec(
                f"{key}_recall",
                asset=key,
                blocking=True,
                description="Measured recall@k >= the configured floor.",
            ),
        ],
        description=f"Cosine kNN item-item edges over {source.path} (FAISS): "
        f"{catalogue.II_EDGES[name].path}.",
    )
    def knn_edges(
        context: AssetExecutionContext, settings: SettingsResource
    ) -> Iterator[Output[dict[str, np.ndarray]] | AssetCheckResult]:
        graphs = settings.tree.graphs
        vectors = read_npy(settings.artifacts.uri(source))
        graph = knn_graph(
            vectors,
            graphs.knn,
            progress=lambda done, total: context.log.info(f"{key}: {done:,}/{total:,} items searched"),
        )
        yield Output(graph.to_npz(), metadata={**graph.meta, "edges": len(graph.src)})
        n = len(vectors)
        yield _problem_check(f"{key}_valid", edge_problems(graph.src, graph.dst, n, n, same_kind=True))
        recall = float(graph.meta["recall_at_k"])
        yield AssetCheckResult(
            check_name=f"{key}_recall",
            passed=recall >= graphs.recall_floor,
            description=(
                f"recall@{graphs.knn.k} {recall:.4f} ({graph.meta['method']}, "
                f"{graph.meta['recall_sample']} sampled items vs exact); floor {graphs.recall_floor}"
            ),
            metadata={"recall_at_k": recall, "floor": graphs.recall_floor},
        )

    return knn_edges


ii_edges_txt = _knn_asset("txt", item_text_embeddings)
ii_edges_fused = _knn_asset("fused", item_fused_embeddings)


@asset(
    group_name=GROUP,
    ins={"items": AssetIn(metadata={"columns": ["item_id", "title", "brand", "categories"]})},
    metadata=artifact_metadata(catalogue.GRAPH_QA),
)
def graph_qa_report(
    items: pd.DataFrame,
    node_maps: dict[str, list[str]],
    ui_edges: dict[str, np.ndarray],
    ii_edges_txt: dict[str, np.ndarray],
    ii_edges_fused: dict[str, np.ndarray],
) -> Output[dict[str, Any]]:
    """Counts, degree histograms, orphans, problems and sample neighbours: graphs/qa_report.json."""
    titles = pd.Series(display_names(items))
    report = qa_report(
        NodeMaps.from_json(node_maps), ui_edges, {"txt": ii_edges_txt, "fused": ii_edges_fused}, titles
    )
    return Output(report, metadata={
        "report": MetadataValue.md(report_markdown(report)),
        "degree_histograms": MetadataValue.md(image("degree histograms", degree_plot(report))),
    })  # fmt: skip
