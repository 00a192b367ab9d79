"""Job: text + image embeddings and co-review -> ``embeddings/fused.npy`` + ``fusion_config.json``.

Extras: ``items_uri``, ``text_uri``, ``image_uri``, ``image_items_uri``,
``interactions_uri`` (a folder of monthly parquet files), ``output_uri``, ``config_uri``,
``model_uri`` (the MLP's weights, safetensors, so that new items can be embedded later),
and optional ``config`` overrides of ``FusionConfig``.
"""

from __future__ import annotations

from typing import Any

import numpy as np
import pandas as pd
from safetensors.torch import save

from recsys_assets.core import fusion
from recsys_assets.core.artifacts import (
    list_files,
    read_npy,
    read_parquet,
    write_bytes,
    write_json,
    write_npy,
)
from recsys_assets.core.markdown import markdown_table
from recsys_assets.jobs.pipes_io import Check, JobResult, md, run_job, unit_rows_check


def load_events(interactions_uri: str, item_ids: pd.Series) -> pd.DataFrame:
    files = list_files(interactions_uri, ".parquet")
    if not files:
        raise FileNotFoundError(f"{interactions_uri}: no interactions partitions to train the fusion on")
    frame = pd.concat(
        [read_parquet(f, columns=["user_id", "item_id", "ts"]) for f in files], ignore_index=True
    )
    row = pd.Series(np.arange(len(item_ids)), index=item_ids.to_numpy())
    unknown = ~frame["item_id"].isin(row.index)
    if unknown.any():
        raise ValueError(
            f"{interactions_uri}: {int(unknown.sum())} interactions name items missing from items "
            f"(e.g. item_id {frame.loc[unknown, 'item_id'].iloc[0]!r})"
        )
    return pd.DataFrame(
        {"user": frame["user_id"].to_numpy(), "item": row.loc[frame["item_id"]].to_numpy(), "ts": frame["ts"]}
    )


def run(params: dict[str, Any], pipes: Any, run_id: str) -> JobResult:
    config = fusion.FusionConfig(**(params.get("config") or {}))
    items = read_parquet(params["items_uri"], columns=["item_id"])
    text = read_npy(params["text_uri"])
    image = read_npy(params["image_uri"])
    image_rows = read_parquet(params["image_items_uri"], columns=["item_row"])["item_row"].to_numpy()
    if len(text) != len(items):
        raise ValueError(
            f"{params['text_uri']}: {len(text)} rows but items has {len(items)}; rematerialize it"
        )
    events = load_events(params["interactions_uri"], items["item_id"])
    train, held = fusion.split_by_user(events, config.holdout_share)
    pairs = fusion.co_review_pairs(train, config.pair_window)
    eval_pairs = fusion.heldout_pairs(train, held)
    rng = np.random.default_rng(config.seed)
    if len(eval_pairs) > config.eval_pairs:
        eval_pairs = eval_pairs[rng.choice(len(eval_pairs), config.eval_pairs, replace=False)]
    x = fusion.fusion_inputs(text, image, image_rows)
    pipes.log.info(
        f"training fusion MLP {x.shape[1]} -> {config.hidden} -> {config.out_dim} on {len(pairs):,} "
        f"co-review pairs ({len(items):,} items, {len(image_rows):,} with an image)"
    )
    result = fusion.train_fusion(
        x,
        pairs,
        text.shape[1],
        config,
        progress=lambda e, loss: pipes.log.info(f"epoch {e}: loss {loss:.4f}"),
    )
    fused = fusion.embed(result.model, x)
    agreement = {
        "text": fusion.neighbour_agreement(text, eval_pairs, config.k),
        "fused": fusion.neighbour_agreement(fused, eval_pairs, config.k),
    }
    summary = {
        "config": config.to_dict(),
        "input_dim": int(x.shape[1]),
        "text_dim": int(text.shape[1]),
        "image_dim": int(image.shape[1]),
        "items": len(items),
        "items_with_image": len(image_rows),
        "train_pairs": result.pairs,
        "eval_pairs": len(eval_pairs),
        "losses": [round(v, 5) for v in result.losses],
        "train_seconds": round(result.seconds, 3),
        f"neighbour_agreement_at_{config.k}": {k: round(v, 5) for k, v in agreement.items()},
        "run_id": run_id,
    }
    write_npy(params["output_uri"], fused)
    write_bytes(params["model_uri"], save(result.model.state_dict()))
    write_json(params["config_uri"], {**summary, "model_uri": params["model_uri"]})
    table = markdown_table(
        ["neighbours from", f"held-out co-review pairs in top-{config.k}"],
        [[name, f"{value:.2%}"] for name, value in agreement.items()],
    )
    checks = [
        unit_rows_check("item_fused_embeddings_aligned", fused, len(items), config.out_dim),
        Check(
            "item_fused_embeddings_beat_text",
            agreement["fused"] >= agreement["text"],
            f"held-out co-review pairs in the top-{config.k}: fused {agreement['fused']:.2%} vs text "
            f"{agreement['text']:.2%}",
            {"agreement_fused": agreement["fused"], "agreement_text": agreement["text"]},
        ),
    ]
    metadata = {
        "uri": params["output_uri"],
        "model_uri": params["model_uri"],
        "shape": list(fused.shape),
        "train_pairs": result.pairs,
        "train_seconds": summary["train_seconds"],
        "final_loss": result.losses[-1],
        "agreement_text": round(agreement["text"], 5),
        "agreement_fused": round(agreement["fused"], 5),
        "neighbour_agreement": md(table),
    }
    return JobResult(metadata, checks)


if __name__ == "__main__":
    run_job(run)
