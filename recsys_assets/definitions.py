"""The Dagster ``Definitions``: every asset, check and job, with the resources of ``RECSYS_ENV``."""

from __future__ import annotations

from dagster import AssetSelection, Definitions, define_asset_job

from recsys_assets import automation, experiment_automation
from recsys_assets.assets import catalogue, embeddings, graphs, leakage, models, monitoring, serving
from recsys_assets.environments import build_resources

all_assets_job = define_asset_job(
    "all_assets",
    # The ablation trains several GATs; it is its own job, run when someone asks for it. The
    # daily drift metrics have their own schedule (and partitions unlike the monthly ones).
    # A search trains a model many times: it runs when someone asks for it (``search``).
    selection=AssetSelection.all()
    - AssetSelection.assets(models.gat_ablation, models.hyperparameter_search, models.cold_start_report)
    - AssetSelection.groups(monitoring.GROUP),
    description="Materialize the whole graph (run with a partition range for partitioned assets).",
)
gat_ablation_job = define_asset_job(
    "ablation",
    selection=AssetSelection.assets(models.gat_ablation),
    description="Train GAT variants (features, loss, heads, layers) and record their table.",
)

cold_start_job = define_asset_job(
    "cold_start",
    selection=AssetSelection.assets(models.cold_start_report),
    description="Hold items out entirely and see which model recommends them from their content.",
)
search_job = define_asset_job(
    "search",
    selection=AssetSelection.assets(models.hyperparameter_search),
    description="Search one model's settings with Optuna (partition: the model); its asset then uses them.",
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
        *models.MODEL_ASSETS.values(),
        models.eval_report,
        models.gat_ablation,
        models.hyperparameter_search,
        models.cold_start_report,
        serving.item_embeddings_export,
        serving.faiss_index,
        monitoring.drift_metrics,
        monitoring.experiment_report,
    ],
    asset_checks=leakage.LEAKAGE_CHECKS,
    jobs=[
        all_assets_job,
        gat_ablation_job,
        search_job,
        cold_start_job,
        models.bless_eval_report,
        automation.drift_job,
        automation.retrain_job,
        experiment_automation.experiment_report_job,
        experiment_automation.end_experiment,
    ],
    schedules=[
        automation.drift_metrics_daily_schedule,
        experiment_automation.experiment_report_daily_schedule,
    ],
    sensors=[automation.drift_retrain_sensor, experiment_automation.experiment_sensor],
    resources=build_resources(),
)
