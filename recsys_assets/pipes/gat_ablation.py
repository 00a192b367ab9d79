"""Job: GAT variants trained and evaluated side by side -> ``eval/ablation.json`` + a table."""

from __future__ import annotations

import numpy as np
from dagster_pipes import PipesContext

from recsys_assets.core.io.codecs import save
from recsys_assets.core.models.gat.ablation import ablate, ablation_table, default_variants
from recsys_assets.core.models.gat.graph import Graph
from recsys_assets.core.models.gat.inputs import load_gat_inputs
from recsys_assets.core.models.training_data import load_training_data
from recsys_assets.pipes.contracts import AblationParams
from recsys_assets.pipes.pipes_io import JobResult, run_job


def run(params: AblationParams, pipes: PipesContext) -> JobResult:
    data = load_training_data(params.data.splits_uri, params.data.node_maps_uri)
    variants = params.variants or default_variants(params.base, params.features)

    def inputs(features: str) -> tuple[np.ndarray, Graph]:
        return load_gat_inputs(
            params.features_uris[features], params.ui_edges_uri, params.ii_edges_uris[features], data
        )

    def progress(variant: str, record: dict[str, float]) -> None:
        if int(record["epoch"]) % 10 == 0:
            pipes.log.info(
                f"ablation {variant} epoch {int(record['epoch'])}: val NDCG@20 {record['val_ndcg@20']:.4f}"
            )

    rows = ablate(data, params.base, params.features, variants, inputs, progress)
    save(params.output_uri, {"data": data.summary(), "variants": rows, "run_id": pipes.run_id})
    best = max(rows, key=lambda r: r["val_ndcg@20"])
    return JobResult(
        {"uri": params.output_uri, "variants": len(rows), "best_on_validation": best["variant"],
         "ablation": ablation_table(rows)}
    )  # fmt: skip


if __name__ == "__main__":
    run_job(run, AblationParams)
