"""Job (GPU): item images -> ``embeddings/img.npy`` + ``img_items.parquet`` + ``img_meta.json``.

Under the ``max_items`` cap, items that have reviews come first (they are what the models
train on), then the rest in ``items`` order. Every chosen item ends up either as a row of
``img.npy`` or as a failure counted by reason.
"""

from __future__ import annotations

import pandas as pd
from dagster_pipes import PipesContext

from recsys_assets.core.embeddings.images import (
    choose_items,
    embed_images,
    failure_outcome,
    image_meta,
    load_image_encoder,
)
from recsys_assets.core.io.codecs import read_parquet, save
from recsys_assets.core.io.storage import list_files
from recsys_assets.core.outcomes import unit_rows
from recsys_assets.pipes.contracts import ImageEmbeddingParams
from recsys_assets.pipes.pipes_io import JobResult, progress_logger, run_job


def run(params: ImageEmbeddingParams, pipes: PipesContext) -> JobResult:
    config = params.image
    items = read_parquet(params.items_uri, columns=["item_id", "image_url"])
    has_url = (items["image_url"].notna() & (items["image_url"].astype(str) != "")).to_numpy()
    reviewed: set[str] = set()
    for path in list_files(params.interactions_uri, ".parquet"):
        reviewed.update(read_parquet(path, ["item_id"])["item_id"])
    rows, reviewed_chosen = choose_items(items["item_id"], has_url, reviewed, config.max_items)
    encoder = load_image_encoder(
        config.encoder, config.weights or None, config.device, cache_dir=params.model_cache
    )
    pipes.log.info(
        f"{encoder.name} ({encoder.dim}-d) on {encoder.device} ({encoder.runtime}): {len(rows):,} of "
        f"{int(has_url.sum()):,} items with an image URL (cap {config.max_items:,}; "
        f"{reviewed_chosen:,} with reviews)"
    )
    urls = items["image_url"].to_numpy()[rows].tolist()
    done = embed_images(urls, rows, encoder, config, progress_logger(pipes, "images"))
    img_items = pd.DataFrame(
        {"item_id": items["item_id"].to_numpy()[done.item_rows], "item_row": done.item_rows}
    )
    meta = image_meta(done, encoder, int(has_url.sum()), config.max_items, reviewed_chosen)
    save(params.output_uri, done.vectors)
    save(params.items_output_uri, img_items)
    meta["run_id"] = pipes.run_id
    save(params.meta_uri, meta)
    rate = failure_outcome(done.report, config.max_failure_rate)
    metadata = {
        **{k: v for k, v in meta.items() if k not in ("failed_by_reason", "failure_examples")},
        "failed_by_reason": rate.metadata["failed_by_reason"],
        "uri": params.output_uri,
        "shape": list(done.vectors.shape),
    }
    aligned = unit_rows(done.vectors, len(img_items), encoder.dim)
    return JobResult(metadata, {"aligned": aligned, "failure_rate": rate})


if __name__ == "__main__":
    run_job(run, ImageEmbeddingParams)
