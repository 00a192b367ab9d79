"""The Dagster ``Definitions``: every asset, check and job, with the resources of ``RECSYS_ENV``."""

from __future__ import annotations

from dagster import Definitions

from recsys_assets.defs import automation, jobs
from recsys_assets.defs.assets import catalogue, embeddings, graphs, leakage, models, monitoring, serving
from recsys_assets.defs.environments import build_resources

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
        *models.MODEL_ASSETS.values(),
        models.eval_report,
        *models.ON_REQUEST,
        serving.item_embeddings_export,
        serving.faiss_index,
        monitoring.drift_metrics,
        monitoring.experiment_report,
    ],
    asset_checks=leakage.LEAKAGE_CHECKS,
    jobs=jobs.JOBS,
    schedules=[
        automation.drift_metrics_daily_schedule,
        automation.experiment_report_daily_schedule,
    ],
    sensors=[automation.drift_retrain_sensor, automation.experiment_sensor],
    resources=build_resources(),
)
