"""The serving family: the promoted model's vectors exported for the API, and the FAISS index
whose manifest the API watches.

Both sit downstream of ``eval_report``, whose promotion gate is a blocking check: after a
failed gate neither runs, so the API keeps serving the last good version.
"""

from datetime import UTC, datetime

from dagster import AssetExecutionContext, MaterializeResult, MetadataValue, asset

from recsys_assets.core.io import artifacts as catalogue
from recsys_assets.core.markdown import markdown_table
from recsys_assets.core.serving.export import prepare_version, publish_pending
from recsys_assets.defs.assets.graphs import interaction_splits, node_maps
from recsys_assets.defs.assets.models import eval_report
from recsys_assets.defs.environments import SettingsResource

GROUP = "serving"


@asset(group_name=GROUP, deps=[eval_report, node_maps, interaction_splits, "items"], kinds={"numpy"})
def item_embeddings_export(context: AssetExecutionContext, settings: SettingsResource) -> MaterializeResult:
    """The promoted model's vectors or neighbour lists (a ranker's too), ids, titles, histories, popularity.

    A two-stage ranker's version also holds its retrievers as the API scores them, its features and its
    LightGBM model, beside the files of its fallback (the retriever best on validation)."""
    version = f"{datetime.now(UTC):%Y%m%dT%H%M%SZ}-{context.run.run_id[:8]}"
    pending, exported = prepare_version(settings.artifacts, version)
    model = pending["model"]
    context.log.info(
        f"exported {model['name']} ({exported['kind']}) as serving version {version}: {model['reason']}"
    )
    return MaterializeResult(
        metadata={
            "version": version,
            "model": model["name"],
            "why": model["reason"],
            **exported,
            "test_ndcg@20": float(pending["eval"]["test"]["ndcg@20"]),
        }
    )


@asset(group_name=GROUP, deps=[item_embeddings_export], kinds={"faiss"})
def faiss_index(context: AssetExecutionContext, settings: SettingsResource) -> MaterializeResult:
    """FAISS index over the exported item vectors (none for item-item models); publishes the manifest."""
    serving = settings.tree.serving
    manifest, built = publish_pending(settings.artifacts, serving, context.log.info)
    common = {
        "version": manifest["version"],
        "model": manifest["model"]["name"],
        # A two-stage version: the retriever that answers what the ranker does not (the index is its).
        **({"fallback": manifest["model"]["fallback"]["name"]} if "fallback" in manifest["model"] else {}),
        "manifest": settings.artifacts.uri(catalogue.SERVING_MANIFEST),
        "files": MetadataValue.json({k: v["bytes"] for k, v in manifest["files"].items()}),
    }
    if built is None:
        context.log.info(f"published serving version {manifest['version']}: {manifest['index']['reason']}")
        return MaterializeResult(metadata={**common, "kind": "none", "reason": manifest["index"]["reason"]})
    latency = markdown_table(
        ["search", "median ms", "p99 ms"],
        [
            [built.kind, f"{built.latency_ms['median']:.3f}", f"{built.latency_ms['p99']:.3f}"],
            ["exact", f"{built.latency_ms['exact_median']:.3f}", f"{built.latency_ms['exact_p99']:.3f}"],
        ],
    )
    context.log.info(
        f"published serving version {manifest['version']}: {built.kind}, recall {built.recall:.3f}"
    )
    return MaterializeResult(
        metadata={
            **common,
            "kind": built.kind,
            "params": MetadataValue.json(built.params),
            f"recall@{built.recall_k}_vs_exact": round(built.recall, 4),
            "build_seconds": round(built.build_seconds, 3),
            "single_query_latency": MetadataValue.md(latency),
        }
    )
