"""Settings of the model assets: the GAT's main knobs, epoch caps, and the promotion gate."""

from __future__ import annotations

from typing import Any, Literal

from dagster import ConfigurableResource
from pydantic import Field


class ModelConfig(ConfigurableResource):
    gat_features: Literal["fused", "txt"] = Field(
        default="fused", description="Item input of the GAT: fused (text + image) or text embeddings."
    )
    gat_loss: Literal["bpr", "bce", "softmax"] = "softmax"
    gat_heads: int = Field(default=1, description="Attention heads per GATv2 layer (1, 4 or 8).")
    gat_layers: int = Field(default=2, description="GATv2 layers (1, 2 or 3).")
    gat_hidden: int = Field(default=64, description="Width of every node state.")
    gat_dropout: float = Field(default=0.0, description="Dropout on attention coefficients.")
    gat_learning_rate: float = 1e-2
    gat_config: dict[str, Any] = Field(
        default_factory=dict, description="Any other GATConfig fields (e.g. temperature, negatives)."
    )
    max_epochs: int = Field(default=200, description="Cap on training epochs of MF, LightGCN and the GAT.")
    promotion_tolerance: float = Field(
        default=0.02,
        description="Relative drop of test NDCG@20 or Recall@20 below the blessed report that still passes.",
    )

    def gat(self) -> dict[str, Any]:
        return {
            "loss": self.gat_loss,
            "heads": self.gat_heads,
            "layers": self.gat_layers,
            "hidden": self.gat_hidden,
            "dropout": self.gat_dropout,
            "learning_rate": self.gat_learning_rate,
            "epochs": self.max_epochs,
            **self.gat_config,
        }
