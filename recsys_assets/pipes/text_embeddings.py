"""Job: ``items.parquet`` -> ``embeddings/txt.npy`` + ``txt_meta.json`` (all-MiniLM-L6-v2)."""

from __future__ import annotations

from dagster_pipes import PipesContext

from recsys_assets.core.embeddings.text import TEXT_MAX_TOKENS, TextEncoder, item_texts
from recsys_assets.core.io.codecs import read_parquet, save
from recsys_assets.core.outcomes import unit_rows
from recsys_assets.pipes.contracts import TextEmbeddingParams
from recsys_assets.pipes.pipes_io import JobResult, progress_logger, run_job

TEXT_COLUMNS = ["item_id", "title", "description", "brand", "categories"]


def run(params: TextEmbeddingParams, pipes: PipesContext) -> JobResult:
    items = read_parquet(params.items_uri, columns=TEXT_COLUMNS)
    texts = item_texts(items)
    empty = sum(1 for t in texts if not t)
    pipes.log.info(f"encoding {len(texts):,} item texts ({empty:,} empty) with {params.encoder.backend}")
    encoder = TextEncoder(params.encoder, params.model_cache)
    vectors, stats = encoder.encode(texts, progress=progress_logger(pipes, "text embeddings"))
    # An empty text still gets the model's vector for "" (the CLS/SEP pair): a constant
    # that downstream code can recognise by ``items_with_empty_text``.
    meta = {
        "encoder": encoder.model_name,
        "backend": encoder.backend,
        "dim": encoder.dim,
        "count": len(vectors),
        "max_tokens": TEXT_MAX_TOKENS,
        "items_with_empty_text": empty,
        "encode_seconds": round(stats.seconds, 3),
        "items_per_second": round(stats.items_per_second, 1),
        "int8_calibration_cosine": encoder.calibration_cosine,
        "threads": encoder.threads,
        "run_id": pipes.run_id,
    }
    save(params.output_uri, vectors)
    save(params.meta_uri, meta)
    return JobResult(
        {**meta, "uri": params.output_uri, "shape": list(vectors.shape)},
        {"aligned": unit_rows(vectors, len(items), encoder.dim)},
    )


if __name__ == "__main__":
    run_job(run, TextEmbeddingParams)
