"""The ranker's inputs read from their artifacts: every trained retriever (as ``eval_report``
loads it, with the use of order it chose), the content vectors, and the timeline."""

from __future__ import annotations

from collections.abc import Mapping

import numpy as np

from recsys_assets.core.graphs.node_maps import NodeMaps
from recsys_assets.core.io.codecs import read_json, read_npy, read_parquet
from recsys_assets.core.models.ranker.inputs import RankerInputs
from recsys_assets.core.models.ranker.timeline import Timeline, timeline
from recsys_assets.core.models.recency import Order
from recsys_assets.core.models.scoring import Scorable, load_scorable
from recsys_assets.core.models.training_data import TrainingData


def load_timeline(splits_uri: str, node_maps_uri: str, data: TrainingData) -> Timeline | None:
    """The split's timeline; None when its rows carry no times."""
    splits = read_parquet(splits_uri)
    if "ts" not in splits.columns:
        return None
    maps = NodeMaps.from_json(read_json(node_maps_uri))
    return timeline(
        maps.user_index(splits["user_id"].astype(str)),
        maps.item_index(splits["item_id"].astype(str)),
        splits["split"].astype(str).to_numpy(),
        splits["ts"],
        data.n_users,
        data.n_items,
    )


def load_ranker_inputs(
    models: Mapping[str, Mapping[str, str]], content_uris: Mapping[str, str], data: TrainingData,
    splits_uri: str, node_maps_uri: str,
) -> RankerInputs:  # fmt: skip
    """``models``: name -> its files (``ModelFiles`` as a dict); a model that was skipped is
    left out."""
    loaded: dict[str, tuple[Scorable, Order]] = {}
    for name, files in models.items():
        meta = read_json(files["meta_uri"])
        if meta.get("skipped"):
            continue
        model = load_scorable(files["users_uri"], files["items_uri"], files["neighbours_uri"], meta)
        model.check(data.n_users, data.n_items, files["meta_uri"].rsplit("/", 1)[0])
        loaded[name] = (model, Order(**meta["order"]))
    content = {}
    for space, uri in content_uris.items():
        vectors = read_npy(uri)
        if vectors.shape[0] != data.n_items:
            raise ValueError(
                f"{uri}: {vectors.shape[0]} rows but node_maps has {data.n_items} items; rematerialize it"
            )
        content[space] = np.asarray(vectors, dtype=np.float32)
    return RankerInputs(loaded, content, load_timeline(splits_uri, node_maps_uri, data))
