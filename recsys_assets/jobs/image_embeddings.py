"""Job (GPU): item images -> ``embeddings/img.npy`` + ``img_items.parquet`` + ``img_meta.json``.

Extras: ``items_uri``, ``interactions_uri`` (optional), ``output_uri``,
``items_output_uri``, ``meta_uri``, ``encoder``, ``weights`` (optional), ``max_items``,
``max_failure_rate``, ``workers``, ``timeout_s``, ``retries``, ``batch_size``, ``device``.

Under the ``max_items`` cap, items that have reviews come first (they are what the
models train on), then the rest in ``items`` order. Every chosen item ends up either as
a row of ``img.npy`` or as a failure counted by reason.
"""

from __future__ import annotations

import time
from typing import Any

import numpy as np
import pandas as pd

from recsys_assets.core.artifacts import list_files, read_parquet, write_json, write_npy, write_parquet
from recsys_assets.core.image_encoders import load_image_encoder
from recsys_assets.core.image_fetch import FetchReport, fetch_images
from recsys_assets.core.markdown import markdown_table
from recsys_assets.jobs.pipes_io import (
    Check,
    JobResult,
    md,
    progress_logger,
    run_job,
    unit_rows_check,
)


def choose_items(
    items: pd.DataFrame, has_url: np.ndarray, interactions_uri: str | None, cap: int
) -> tuple[np.ndarray, int]:
    """Rows of ``items`` to embed (sorted) and how many of them have reviews.

    Reviewed items with an image come first, then the others in ``items`` order, up to ``cap``.
    """
    reviewed = np.zeros(len(items), dtype=bool)
    if interactions_uri:
        ids: set[str] = set()
        for path in list_files(interactions_uri, ".parquet"):
            ids.update(read_parquet(path, ["item_id"])["item_id"])
        reviewed = items["item_id"].isin(ids).to_numpy()
    chosen = np.concatenate([np.flatnonzero(has_url & reviewed), np.flatnonzero(has_url & ~reviewed)])[:cap]
    return np.sort(chosen), int(reviewed[chosen].sum())


def run(params: dict[str, Any], pipes: Any, run_id: str) -> JobResult:
    items = read_parquet(params["items_uri"], columns=["item_id", "image_url"])
    has_url = (items["image_url"].notna() & (items["image_url"].astype(str) != "")).to_numpy()
    cap = int(params["max_items"])
    candidates, reviewed_chosen = choose_items(items, has_url, params.get("interactions_uri"), cap)
    encoder = load_image_encoder(params["encoder"], params.get("weights"), params.get("device", "auto"))
    pipes.log.info(
        f"{encoder.name} ({encoder.dim}-d) on {encoder.device} ({encoder.runtime}): {len(candidates):,} of "
        f"{int(has_url.sum()):,} items with an image URL (cap {cap:,}; {reviewed_chosen:,} with reviews)"
    )
    urls = items["image_url"].to_numpy()[candidates].tolist()
    report = FetchReport()
    progress = progress_logger(pipes, "images")
    vectors, rows = [], []
    start = time.perf_counter()
    for positions, pixels in fetch_images(
        urls,
        encoder.image_size,
        workers=int(params.get("workers", 16)),
        timeout=float(params.get("timeout_s", 10.0)),
        retries=int(params.get("retries", 2)),
        chunk=int(params.get("batch_size", 256)),
        report=report,
        on_chunk=lambda r: progress(r.fetched + sum(r.failed.values()), r.requested),
    ):
        vectors.append(encoder.encode(pixels))
        rows.append(candidates[positions])
    seconds = time.perf_counter() - start
    embeddings = np.concatenate(vectors) if vectors else np.zeros((0, encoder.dim), dtype=np.float32)
    item_rows = np.concatenate(rows) if rows else np.zeros(0, dtype=np.int64)
    img_items = pd.DataFrame({"item_id": items["item_id"].to_numpy()[item_rows], "item_row": item_rows})
    failed = dict(sorted(report.failed.items()))
    n_failed = sum(failed.values())
    meta: dict[str, Any] = {
        "encoder": encoder.name,
        "weights": encoder.weights,
        "dim": encoder.dim,
        "count": len(embeddings),
        "requested": report.requested,
        "failed": n_failed,
        "failed_by_reason": failed,
        "failure_examples": report.examples,
        "items_with_image_url": int(has_url.sum()),
        "max_items": cap,
        "reviewed_items_chosen": reviewed_chosen,
        "seconds": round(seconds, 3),
        "images_per_second": round(len(embeddings) / seconds, 1) if seconds > 0 else None,
        "device": str(encoder.device),
        "runtime": encoder.runtime,
        "run_id": run_id,
    }
    write_npy(params["output_uri"], embeddings)
    write_parquet(params["items_output_uri"], img_items)
    write_json(params["meta_uri"], meta)
    table = markdown_table(["reason", "items"], [[k, v] for k, v in failed.items()] or [["(none)", 0]])
    rate = n_failed / max(report.requested, 1)
    limit = float(params.get("max_failure_rate", 0.5))
    checks = [
        unit_rows_check("item_image_embeddings_aligned", embeddings, len(img_items), encoder.dim),
        Check(
            "item_image_embeddings_failure_rate",
            rate <= limit,
            f"{n_failed:,} of {report.requested:,} images failed ({rate:.2%}; limit {limit:.0%})",
            {"failure_rate": rate, "failed_by_reason": md(table)},
        ),
    ]
    metadata = {
        **{k: v for k, v in meta.items() if k not in ("failed_by_reason", "failure_examples")},
        "failed_by_reason": md(table),
        "uri": params["output_uri"],
        "shape": list(embeddings.shape),
    }
    return JobResult(metadata, checks)


if __name__ == "__main__":
    run_job(run)
