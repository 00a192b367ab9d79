"""Settings of the serving assets: the item index and its recall floor."""

from __future__ import annotations

from typing import Literal

from dagster import ConfigurableResource
from pydantic import Field

from recsys_assets.core.serving_index import IndexConfig


class ServingConfig(ConfigurableResource):
    index_kind: Literal["auto", "flat", "hnsw", "ivf"] = Field(
        default="auto", description="auto: exact search below `exact_below` items, HNSW above."
    )
    exact_below: int = Field(default=50_000, description="Catalogue size from which `auto` builds HNSW.")
    hnsw_m: int = 32
    hnsw_ef_construction: int = 80
    hnsw_ef_search: int = 128
    ivf_nlist: int = Field(default=0, description="IVF lists; 0: 4 * sqrt(items).")
    ivf_nprobe: int = 32
    min_recall: float = Field(
        default=0.9, description="The index is not published when its recall@20 vs exact search is lower."
    )

    def index(self) -> IndexConfig:
        return IndexConfig(
            kind=self.index_kind,
            exact_below=self.exact_below,
            hnsw_m=self.hnsw_m,
            hnsw_ef_construction=self.hnsw_ef_construction,
            hnsw_ef_search=self.hnsw_ef_search,
            ivf_nlist=self.ivf_nlist,
            ivf_nprobe=self.ivf_nprobe,
        )
