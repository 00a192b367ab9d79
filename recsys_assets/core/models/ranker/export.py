"""What a serving version holds for the ranker (``core/ranking/online.py`` reads it): every
retriever as the API scores it (user vectors read from the served history as each model reads
it, or neighbour lists with the history weights of the retriever's use of order), the content
vectors, what is known when (the time features), the feature space and the LightGBM model.

Rebuilt from the ranker's ``meta.json``: the retrievers' and the content's files it read
(``inputs``) and its settings, through ``fit.retrievers``, the function its training used."""

from __future__ import annotations

import json
from typing import Any

import numpy as np

from recsys_assets.core.io.codecs import npz_bytes
from recsys_assets.core.io.sparse import csr_arrays
from recsys_assets.core.io.storage import read_bytes
from recsys_assets.core.models.cold_start import content_user_vectors
from recsys_assets.core.models.ranker.fit import retrievers
from recsys_assets.core.models.ranker.inputs import RankerInputs
from recsys_assets.core.models.ranker.load import load_ranker_inputs
from recsys_assets.core.models.recency import history_weights
from recsys_assets.core.models.training_data import TrainingData
from recsys_assets.settings.models import RankerConfig


def ranker_version_files(
    meta: dict[str, Any], data: TrainingData, splits_uri: str, node_maps_uri: str
) -> dict[str, bytes]:
    """``ranker.json``, ``ranker.npz`` and ``ranker.txt`` for a version serving ``data.train``."""
    read = meta.get("inputs")
    if not read:
        raise ValueError(
            f"ranker model {meta.get('run_id')}: its meta.json does not name the files it read "
            "(trained before rankers could serve); rematerialize ranker_model"
        )
    inputs = load_ranker_inputs(read["models"], read["content_uris"], data, splits_uri, node_maps_uri)
    config = RankerConfig.model_validate(meta["config"])
    return ranker_files(inputs, config, data, read_bytes(meta["checkpoint_uri"]))


def ranker_files(
    inputs: RankerInputs, config: RankerConfig, data: TrainingData, booster: bytes
) -> dict[str, bytes]:
    """The files from the ranker's inputs, settings and LightGBM model (its text)."""
    found, space = retrievers(inputs, config, data)
    history = data.train
    if history.values is None:
        raise ValueError("the train interactions carry no history positions; rematerialize the splits")
    arrays: dict[str, np.ndarray] = {"history_place": history.values.astype(np.float32)}
    sources = []
    for r in found:
        if r.model is not None and r.model.neighbours is not None:
            sources.append({"name": r.name, "kind": "neighbours"})
            arrays |= {f"{r.name}.neighbours.{k}": v for k, v in csr_arrays(r.model.neighbours).items()}
            arrays[f"{r.name}.weights"] = history_weights(history, r.order)
        elif r.model is not None:
            assert r.model.items is not None
            sources.append({"name": r.name, "kind": "vectors"})
            vectors = r.model.user_vectors(history, data.n_items, r.order)
            arrays[f"{r.name}.users"] = np.ascontiguousarray(vectors, dtype=np.float32)
            arrays[f"{r.name}.items"] = np.ascontiguousarray(r.model.items, dtype=np.float32)
        else:
            assert r.content is not None
            # The content sources of one space share their user vectors (the cold items' source
            # is the space's kNN restricted to those items): stored, and scored, once.
            key = f"content.{r.content}.users"  # one use of order for content (content_decay)
            sources.append({"name": r.name, "kind": "vectors", "users": key, "items": f"content.{r.content}"})
            if key not in arrays:
                arrays[key] = content_user_vectors(space.content[r.content], history, r.order)
        if r.only is not None:
            arrays[f"{r.name}.only"] = r.only
    arrays |= {f"content.{c}": np.asarray(unit, dtype=np.float32) for c, unit in space.content.items()}
    settings: dict[str, Any] = {
        "n_items": data.n_items,
        "per_source": config.per_source,
        "sources": sources,
        "space": space.settings(),
    }
    if inputs.timeline is not None:
        # What the validation requests knew (the train interactions), at the last of them.
        known = inputs.timeline.val
        arrays |= {"known.item_indptr": known.item_indptr, "known.item_days": known.item_days,
                   "known.user_last": known.user_last}  # fmt: skip
        settings["now_day"] = float(np.nanmax(known.item_days)) if len(known.item_days) else 0.0
    return {
        "ranker.json": json.dumps(settings).encode(),
        "ranker.npz": npz_bytes(arrays),
        "ranker.txt": booster,
    }
