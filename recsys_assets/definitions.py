"""The Dagster ``Definitions``: every asset, check and job, with the resources of ``RECSYS_ENV``."""

from __future__ import annotations

from dagster import AssetSelection, Definitions, define_asset_job

from recsys_assets.assets import catalogue, embeddings, graphs
from resources.environments import build_resources

all_assets_job = define_asset_job(
    "all_assets",
    selection=AssetSelection.all(),
    description="Materialize the whole graph (run with a partition range for partitioned assets).",
)

defs = Definitions(
    assets=[
        catalogue.raw_metadata,
        catalogue.raw_reviews,
        catalogue.items,
        catalogue.interactions,
        embeddings.item_text_embeddings,
        embeddings.item_image_embeddings,
        embeddings.item_fused_embeddings,
        graphs.interaction_splits,
        graphs.node_maps,
        graphs.ui_edges,
        graphs.ii_edges_txt,
        graphs.ii_edges_fused,
        graphs.graph_qa_report,
    ],
    jobs=[all_assets_job],
    resources=build_resources(),
)
