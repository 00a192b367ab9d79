"""Job: text + image embeddings and the split's train co-review -> ``embeddings/fused.npy``, the
fusion MLP's weights (safetensors, to embed new items later), ``fusion_config.json`` and the
record of the rows it was fitted on (``core/leakage.py``)."""

from __future__ import annotations

from dagster_pipes import PipesContext
from safetensors.torch import save as safetensors_bytes

from recsys_assets.core.embeddings import fusion
from recsys_assets.core.io.codecs import read_npy, read_parquet, save
from recsys_assets.core.io.storage import write_bytes
from recsys_assets.core.markdown import markdown_table
from recsys_assets.core.models.training_data import load_training_data
from recsys_assets.core.outcomes import unit_rows
from recsys_assets.pipes.contracts import FusionParams
from recsys_assets.pipes.pipes_io import JobResult, run_job


def run(params: FusionParams, pipes: PipesContext) -> JobResult:
    config = params.fusion
    # Item nodes follow items.parquet's rows, as the text and image rows do (``node_maps``).
    data = load_training_data(params.data.splits_uri, params.data.node_maps_uri)
    text = read_npy(params.text_uri)
    if len(text) != data.n_items:
        raise ValueError(
            f"{params.text_uri}: {len(text)} rows but node_maps has {data.n_items} items; rematerialize it"
        )
    image = read_npy(params.image_uri)
    image_rows = read_parquet(params.image_items_uri, columns=["item_row"])["item_row"].to_numpy()
    fit = fusion.fit_fusion(text, image, image_rows, data, config, pipes.log.info)
    trained_on = data.trained_on()
    save(params.output_uri, fit.fused)
    write_bytes(params.weights_uri, safetensors_bytes(fit.result.model.state_dict()))
    save(params.trained_on_uri, trained_on.keys)
    save(params.config_uri, {
        **fit.summary, "trained_on": trained_on.summary(params.trained_on_uri), "run_id": pipes.run_id,
        "weights_uri": params.weights_uri,
    })  # fmt: skip
    table = markdown_table(
        ["neighbours from", f"(last train item, validation item) pairs in top-{config.k}"],
        [[name, f"{value:.2%}"] for name, value in fit.agreement.items()],
    )
    metadata = {
        "uri": params.output_uri,
        "weights_uri": params.weights_uri,
        "shape": list(fit.fused.shape),
        "train_interactions": trained_on.interactions,
        "train_pairs": fit.result.pairs,
        "pairs_per_epoch": fit.result.pairs_per_epoch,
        "train_seconds": fit.summary["train_seconds"],
        "final_loss": fit.result.losses[-1],
        "agreement_text": round(fit.agreement["text"], 5),
        "agreement_fused": round(fit.agreement["fused"], 5),
        "neighbour_agreement": table,
    }
    checks = {
        "aligned": unit_rows(fit.fused, data.n_items, config.out_dim),
        "beat_text": fusion.agreement_outcome(fit, config.k),
    }
    return JobResult(metadata, checks)


if __name__ == "__main__":
    run_job(run, FusionParams)
