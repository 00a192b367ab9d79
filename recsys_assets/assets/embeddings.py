"""The embeddings family: item text, item images and their fusion, each computed by a job module.

Each asset hands its work to the ``job_runner`` resource (a local subprocess, or a Vertex
AI CustomJob in ``gcp``) and yields what the job reported through Dagster Pipes: the
materialization and its blocking checks, which the job evaluates on what it wrote. Job
modules read and write artifacts by URI, so the asset passes URIs, not data.
"""

from dagster import AssetExecutionContext, AssetKey, asset

from recsys_assets.assets.job_steps import GPU_POOL, Results, job_checks, run_job_module
from resources.embeddings import ArtifactStore, EmbeddingConfig
from resources.job_runners import JobRunner

GROUP = "embeddings"
ITEMS, INTERACTIONS = AssetKey("items"), AssetKey("interactions")


@asset(
    group_name=GROUP,
    deps=[ITEMS],
    kinds={"python", "onnx"},
    check_specs=job_checks(
        "item_text_embeddings", aligned="One finite unit-length 384-d row per items row, in items order."
    ),
)
def item_text_embeddings(
    context: AssetExecutionContext,
    artifacts: ArtifactStore,
    embedding_config: EmbeddingConfig,
    job_runner: JobRunner,
) -> Results:
    """Item text (title, brand, description, categories) as 384-d MiniLM vectors: embeddings/txt.npy."""
    params = {
        "items_uri": artifacts.uri("items.parquet"),
        "output_uri": artifacts.uri("embeddings", "txt.npy"),
        "meta_uri": artifacts.uri("embeddings", "txt_meta.json"),
        "model": embedding_config.text_model,
        "backend": embedding_config.text_backend,
    }
    yield from run_job_module(context, job_runner, "text_embeddings", params, "cpu")


@asset(
    group_name=GROUP,
    deps=[ITEMS, INTERACTIONS],
    pool=GPU_POOL,
    kinds={"pytorch", "gpu"},
    check_specs=job_checks(
        "item_image_embeddings",
        aligned="One finite unit-length row per row of img_items.parquet.",
        failure_rate="The share of images that could not be fetched or decoded stays under the limit.",
    ),
)
def item_image_embeddings(
    context: AssetExecutionContext,
    artifacts: ArtifactStore,
    embedding_config: EmbeddingConfig,
    job_runner: JobRunner,
) -> Results:
    """Item images as L2-normalised vectors (CLIP ViT-B/32 or EfficientNet-Lite0): embeddings/img.npy."""
    params = {
        "items_uri": artifacts.uri("items.parquet"),
        "interactions_uri": artifacts.uri("interactions"),
        "output_uri": artifacts.uri("embeddings", "img.npy"),
        "items_output_uri": artifacts.uri("embeddings", "img_items.parquet"),
        "meta_uri": artifacts.uri("embeddings", "img_meta.json"),
        "encoder": embedding_config.image_encoder,
        "weights": embedding_config.image_weights or None,
        "max_items": embedding_config.image_max_items,
        "max_failure_rate": embedding_config.image_max_failure_rate,
        "workers": embedding_config.image_workers,
        "timeout_s": embedding_config.image_timeout_s,
        "retries": embedding_config.image_retries,
    }
    yield from run_job_module(context, job_runner, "image_embeddings", params, "t4-spot")


@asset(
    group_name=GROUP,
    deps=[item_text_embeddings, item_image_embeddings, INTERACTIONS],
    kinds={"pytorch"},
    check_specs=job_checks(
        "item_fused_embeddings",
        aligned="One finite unit-length 128-d row per items row, in items order.",
        beat_text="Fused neighbours agree with held-out co-review at least as often as text neighbours.",
    ),
)
def item_fused_embeddings(
    context: AssetExecutionContext, artifacts: ArtifactStore, job_runner: JobRunner
) -> Results:
    """Text + image fused by an MLP trained on co-review into 128-d vectors: embeddings/fused.npy."""
    params = {
        "items_uri": artifacts.uri("items.parquet"),
        "text_uri": artifacts.uri("embeddings", "txt.npy"),
        "image_uri": artifacts.uri("embeddings", "img.npy"),
        "image_items_uri": artifacts.uri("embeddings", "img_items.parquet"),
        "interactions_uri": artifacts.uri("interactions"),
        "output_uri": artifacts.uri("embeddings", "fused.npy"),
        "config_uri": artifacts.uri("embeddings", "fusion_config.json"),
        "model_uri": artifacts.uri("embeddings", "fusion_mlp.safetensors"),
    }
    yield from run_job_module(context, job_runner, "fused_embeddings", params, "cpu")
