"""Job: text + image embeddings and co-review -> ``embeddings/fused.npy``, the fusion MLP's
weights (safetensors, to embed new items later) and ``fusion_config.json``."""

from __future__ import annotations

from dagster_pipes import PipesContext
from safetensors.torch import save as safetensors_bytes

from recsys_assets.core.embeddings import fusion
from recsys_assets.core.io.codecs import read_npy, read_parquet, save
from recsys_assets.core.io.storage import list_files, write_bytes
from recsys_assets.core.markdown import markdown_table
from recsys_assets.core.outcomes import unit_rows
from recsys_assets.jobs.contracts import FusionParams
from recsys_assets.jobs.pipes_io import JobResult, run_job


def run(params: FusionParams, pipes: PipesContext) -> JobResult:
    config = params.fusion
    items = read_parquet(params.items_uri, columns=["item_id"])
    text = read_npy(params.text_uri)
    if len(text) != len(items):
        raise ValueError(f"{params.text_uri}: {len(text)} rows but items has {len(items)}; rematerialize it")
    image = read_npy(params.image_uri)
    image_rows = read_parquet(params.image_items_uri, columns=["item_row"])["item_row"].to_numpy()
    files = list_files(params.interactions_uri, ".parquet")
    events = fusion.co_review_events(files, items["item_id"], params.interactions_uri)
    fit = fusion.fit_fusion(text, image, image_rows, events, config, pipes.log.info)
    save(params.output_uri, fit.fused)
    write_bytes(params.weights_uri, safetensors_bytes(fit.result.model.state_dict()))
    save(params.config_uri, {**fit.summary, "run_id": pipes.run_id, "weights_uri": params.weights_uri})
    table = markdown_table(
        ["neighbours from", f"held-out co-review pairs in top-{config.k}"],
        [[name, f"{value:.2%}"] for name, value in fit.agreement.items()],
    )
    metadata = {
        "uri": params.output_uri,
        "weights_uri": params.weights_uri,
        "shape": list(fit.fused.shape),
        "train_pairs": fit.result.pairs,
        "pairs_per_epoch": fit.result.pairs_per_epoch,
        "train_seconds": fit.summary["train_seconds"],
        "final_loss": fit.result.losses[-1],
        "agreement_text": round(fit.agreement["text"], 5),
        "agreement_fused": round(fit.agreement["fused"], 5),
        "neighbour_agreement": table,
    }
    checks = {
        "aligned": unit_rows(fit.fused, len(items), config.out_dim),
        "beat_text": fusion.agreement_outcome(fit, config.k),
    }
    return JobResult(metadata, checks)


if __name__ == "__main__":
    run_job(run, FusionParams)
