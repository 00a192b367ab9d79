"""Settings of the graph assets: kNN size and search quality."""

from __future__ import annotations

from dagster import ConfigurableResource
from pydantic import Field


class GraphConfig(ConfigurableResource):
    k: int = Field(default=20, description="Neighbours per item in the item-item kNN graphs.")
    exact_max_items: int = Field(default=50_000, description="Exact kNN up to this many items, IVF above.")
    target_recall: float = Field(
        default=0.95, description="IVF nprobe is raised until recall@k reaches this."
    )
    recall_floor: float = Field(default=0.9, description="A kNN graph below this recall@k fails its check.")
