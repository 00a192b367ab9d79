"""Job: the two-stage ranker refit without one group of retrievers or features at a time ->
``eval/ranker_ablation.json`` and a table: what the GNN, content and the item-item models add."""

from __future__ import annotations

from dagster_pipes import PipesContext

from recsys_assets.core.io.codecs import save
from recsys_assets.core.models.ranker.ablation import FULL, ablate, ablation_table, default_variants
from recsys_assets.core.models.training_data import load_training_data
from recsys_assets.core.models.uncertainty import describe
from recsys_assets.pipes.contracts import RankerAblationParams
from recsys_assets.pipes.pipes_io import JobResult, run_job


def run(params: RankerAblationParams, pipes: PipesContext) -> JobResult:
    data = load_training_data(params.data.splits_uri, params.data.node_maps_uri)
    inputs = params.sources.load(data, params.data.splits_uri, params.data.node_maps_uri)
    given = list(params.base.sources or inputs.models)
    variants = params.variants or default_variants(given)
    rows, comparisons = ablate(data, params.base, inputs, variants, params.evaluation, pipes.log.info)
    report = {
        "data": data.summary(),
        "variants": rows,
        "comparisons_ndcg@20": comparisons,
        "run_id": pipes.run_id,
    }
    save(params.output_uri, report)
    confidence = params.evaluation.confidence
    said = [describe(name, FULL, c, "test NDCG@20", confidence) for name, c in comparisons["test"].items()]
    return JobResult(
        {
            "uri": params.output_uri,
            "ablation": ablation_table(rows, comparisons),
            "comparisons": "; ".join(said) + " (paired over users, Holm-corrected)",
            **{
                f"{name.replace(' ', '_')}_test_ndcg_at_20": round(r["test"]["ndcg@20"], 5)
                for r in rows
                for name in [r["variant"]]
            },
        }
    )


if __name__ == "__main__":
    run_job(run, RankerAblationParams)
