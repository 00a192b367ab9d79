"""The item-item kNN graphs and the checks on them."""

from __future__ import annotations

from typing import Literal

from recsys_assets.settings.base import Section, section, setting


class KnnConfig(Section):
    """Cosine kNN over item embeddings with FAISS (``core/graphs/knn.py``)."""

    k: int = setting(20, "Neighbours per item in the item-item kNN graphs.", env="RECSYS_KNN_K", ge=1)
    method: Literal["auto", "exact", "ivf"] = setting(
        "auto", "`exact`, `ivf`, or `auto`: exact up to `exact_max_items` items, IVF above."
    )
    exact_max_items: int = setting(50_000, "With `auto`: exact kNN up to this many items.", ge=1)
    target_recall: float = setting(
        0.95, "IVF `nprobe` is doubled until recall@k on the probe sample reaches this.", gt=0, le=1
    )
    sample: int = setting(2_000, "Items whose neighbours are checked against exact search.", ge=1)
    batch: int = setting(16_384, "Items searched per FAISS call.", ge=1)
    seed: int = setting(0, "Random seed (probe sample, IVF training sample).")


class GraphSettings(Section):
    knn: KnnConfig = section(KnnConfig, "How the item-item kNN graphs are built.")
    recall_floor: float = setting(
        0.9, "A kNN graph below this recall@k fails its blocking check.", ge=0, le=1
    )
