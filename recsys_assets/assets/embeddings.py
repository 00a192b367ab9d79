"""The embeddings family: item text, item images and their fusion, each computed by a job module.

Each asset hands its work to the ``job_runner`` resource (a local subprocess, or a Vertex
AI CustomJob in ``gcp``) and returns what the job reported through Dagster Pipes. Job
modules read and write artifacts by URI, so the asset passes URIs, not data.
"""

from dagster import AssetExecutionContext, AssetKey, MaterializeResult, asset

from resources.embeddings import ArtifactStore, EmbeddingConfig
from resources.job_runners import JobRunner

GROUP = "embeddings"
#: Steps that occupy an accelerator share this pool (limit in dagster.yaml).
GPU_POOL = "gpu"


@asset(group_name=GROUP, deps=[AssetKey("items")], kinds={"python", "onnx"})
def item_text_embeddings(
    context: AssetExecutionContext,
    artifacts: ArtifactStore,
    embedding_config: EmbeddingConfig,
    job_runner: JobRunner,
) -> MaterializeResult:
    """Item text (title, brand, description, categories) as 384-d MiniLM vectors: embeddings/txt.npy."""
    params = {
        "items_uri": artifacts.uri("items.parquet"),
        "output_uri": artifacts.uri("embeddings", "txt.npy"),
        "meta_uri": artifacts.uri("embeddings", "txt_meta.json"),
        "model": embedding_config.text_model,
        "backend": embedding_config.text_backend,
    }
    return job_runner.run(
        context, "recsys_assets.jobs.text_embeddings", params, "cpu"
    ).get_materialize_result()


@asset(group_name=GROUP, deps=[AssetKey("items")], pool=GPU_POOL, kinds={"pytorch", "gpu"})
def item_image_embeddings(
    context: AssetExecutionContext,
    artifacts: ArtifactStore,
    embedding_config: EmbeddingConfig,
    job_runner: JobRunner,
) -> MaterializeResult:
    """Item images as L2-normalised vectors (CLIP ViT-B/32 or EfficientNet-Lite0): embeddings/img.npy."""
    params = {
        "items_uri": artifacts.uri("items.parquet"),
        "output_uri": artifacts.uri("embeddings", "img.npy"),
        "items_output_uri": artifacts.uri("embeddings", "img_items.parquet"),
        "meta_uri": artifacts.uri("embeddings", "img_meta.json"),
        "encoder": embedding_config.image_encoder,
        "weights": embedding_config.image_weights or None,
        "max_items": embedding_config.image_max_items,
        "workers": embedding_config.image_workers,
        "timeout_s": embedding_config.image_timeout_s,
        "retries": embedding_config.image_retries,
    }
    return job_runner.run(
        context, "recsys_assets.jobs.image_embeddings", params, "t4-spot"
    ).get_materialize_result()


@asset(
    group_name=GROUP,
    deps=[item_text_embeddings, item_image_embeddings, AssetKey("interactions")],
    kinds={"pytorch"},
)
def item_fused_embeddings(
    context: AssetExecutionContext, artifacts: ArtifactStore, job_runner: JobRunner
) -> MaterializeResult:
    """Text + image fused by an MLP trained on co-review into 128-d vectors: embeddings/fused.npy."""
    params = {
        "items_uri": artifacts.uri("items.parquet"),
        "text_uri": artifacts.uri("embeddings", "txt.npy"),
        "image_uri": artifacts.uri("embeddings", "img.npy"),
        "image_items_uri": artifacts.uri("embeddings", "img_items.parquet"),
        "interactions_uri": artifacts.uri("interactions"),
        "output_uri": artifacts.uri("embeddings", "fused.npy"),
        "config_uri": artifacts.uri("embeddings", "fusion_config.json"),
    }
    return job_runner.run(
        context, "recsys_assets.jobs.fused_embeddings", params, "cpu"
    ).get_materialize_result()
