"""The embeddings family: item text, item images and their fusion, each computed by a job module.

Each asset hands its work to the ``job_runner`` resource (a local subprocess, or a Vertex
AI CustomJob in ``gcp``) and yields what the job reported through Dagster Pipes: the
materialization and its blocking checks, which the job evaluates on what it wrote. Job
modules read and write artifacts by URI, so the asset passes URIs, not data.
"""

from dagster import AssetExecutionContext, AssetKey, asset

from recsys_assets.core.io import artifacts as catalogue
from recsys_assets.defs.assets.job_steps import GPU_POOL, Results, job_checks, run_job
from recsys_assets.defs.environments import SettingsResource
from recsys_assets.pipes.contracts import (
    FusionParams,
    ImageEmbeddingParams,
    TextEmbeddingParams,
    TrainingInputs,
)
from resources.job_runners import JobRunner

GROUP = "embeddings"
ITEMS, INTERACTIONS = AssetKey("items"), AssetKey("interactions")
#: The fusion fits on the split's train rows, as every learned part does (graphs.py defines them).
SPLITS, NODE_MAPS = AssetKey("interaction_splits"), AssetKey("node_maps")


@asset(
    group_name=GROUP,
    deps=[ITEMS],
    kinds={"python", "onnx"},
    check_specs=job_checks("item_text_embeddings", TextEmbeddingParams),
)
def item_text_embeddings(
    context: AssetExecutionContext, settings: SettingsResource, job_runner: JobRunner
) -> Results:
    """Item text (title, brand, description, categories) as 384-d MiniLM vectors: embeddings/txt.npy."""
    artifacts, embeddings = settings.artifacts, settings.tree.embeddings
    params = TextEmbeddingParams(
        asset=context.asset_key.to_user_string(),
        items_uri=artifacts.uri(catalogue.ITEMS),
        output_uri=artifacts.uri(catalogue.TEXT_EMBEDDINGS),
        meta_uri=artifacts.uri(catalogue.TEXT_META),
        encoder=embeddings.text,
        model_cache=embeddings.model_cache,
    )
    yield from run_job(context, job_runner, params, "cpu")


@asset(
    group_name=GROUP,
    deps=[ITEMS, INTERACTIONS],
    pool=GPU_POOL,
    kinds={"pytorch", "gpu"},
    check_specs=job_checks("item_image_embeddings", ImageEmbeddingParams),
)
def item_image_embeddings(
    context: AssetExecutionContext, settings: SettingsResource, job_runner: JobRunner
) -> Results:
    """Item images as L2-normalised vectors (CLIP ViT-B/32 or EfficientNet-Lite0): embeddings/img.npy."""
    artifacts, embeddings = settings.artifacts, settings.tree.embeddings
    params = ImageEmbeddingParams(
        asset=context.asset_key.to_user_string(),
        items_uri=artifacts.uri(catalogue.ITEMS),
        interactions_uri=artifacts.folder(catalogue.INTERACTIONS),
        output_uri=artifacts.uri(catalogue.IMAGE_EMBEDDINGS),
        items_output_uri=artifacts.uri(catalogue.IMAGE_ITEMS),
        meta_uri=artifacts.uri(catalogue.IMAGE_META),
        image=embeddings.image,
        model_cache=embeddings.model_cache,
    )
    yield from run_job(context, job_runner, params, "t4-spot")


@asset(
    group_name=GROUP,
    deps=[item_text_embeddings, item_image_embeddings, SPLITS, NODE_MAPS],
    kinds={"pytorch"},
    check_specs=job_checks("item_fused_embeddings", FusionParams),
)
def item_fused_embeddings(
    context: AssetExecutionContext, settings: SettingsResource, job_runner: JobRunner
) -> Results:
    """Text + image fused by an MLP trained on train co-review into 128-d vectors: embeddings/fused.npy."""
    artifacts = settings.artifacts
    params = FusionParams(
        asset=context.asset_key.to_user_string(),
        data=TrainingInputs(
            splits_uri=artifacts.uri(catalogue.SPLITS), node_maps_uri=artifacts.uri(catalogue.NODE_MAPS)
        ),
        text_uri=artifacts.uri(catalogue.TEXT_EMBEDDINGS),
        image_uri=artifacts.uri(catalogue.IMAGE_EMBEDDINGS),
        image_items_uri=artifacts.uri(catalogue.IMAGE_ITEMS),
        output_uri=artifacts.uri(catalogue.FUSED_EMBEDDINGS),
        config_uri=artifacts.uri(catalogue.FUSION_CONFIG),
        weights_uri=artifacts.uri(catalogue.FUSION_WEIGHTS),
        trained_on_uri=artifacts.uri(catalogue.FUSION_TRAINED_ON),
        fusion=settings.tree.embeddings.fusion,
    )
    yield from run_job(context, job_runner, params, "cpu")
