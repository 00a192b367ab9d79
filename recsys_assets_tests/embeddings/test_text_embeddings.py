"""Item text and the offline MiniLM encoder: composition, offline loading, int8 vs fp32."""

from __future__ import annotations

import socket
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import pytest

from recsys_assets.core.embeddings.text import TextEncoder, item_text, item_texts, resolve_model_dir
from recsys_assets.settings.embeddings import TextEncoderConfig


@pytest.fixture(scope="module")
def no_network() -> Iterator[list[Any]]:
    """Any attempt to open a non-loopback connection fails the test (and is recorded)."""
    attempts: list[Any] = []
    original = socket.socket.connect

    def guarded(self: socket.socket, address: Any) -> Any:
        host = address[0] if isinstance(address, tuple) else address
        if isinstance(host, str) and host not in ("127.0.0.1", "localhost", "::1"):
            attempts.append(address)
            raise OSError(f"test forbids network access to {address}")
        return original(self, address)

    socket.socket.connect = guarded  # type: ignore[method-assign]
    try:
        yield attempts
    finally:
        socket.socket.connect = original  # type: ignore[method-assign]


@pytest.fixture(scope="module")
def encoders(no_network: list[Any], tmp_path_factory: pytest.TempPathFactory) -> dict[str, TextEncoder]:
    cache = str(tmp_path_factory.mktemp("onnx"))
    return {
        "onnx-int8": TextEncoder(TextEncoderConfig(backend="onnx-int8"), cache),
        "torch": TextEncoder(TextEncoderConfig(backend="torch"), cache),
    }


def test_item_text_puts_title_first_and_drops_the_root_category() -> None:
    text = item_text(
        "Sony WH-1000", "Great noise-cancelling.", "Sony", ["Electronics", "Audio", "Headphones"]
    )
    assert text == "Sony WH-1000. Sony. Great noise-cancelling.. Audio / Headphones"
    assert item_text(None, None, None, None) == ""
    assert item_text("  ", float("nan"), "Acme", []) == "Acme"
    frame = pd.DataFrame({"item_id": ["a", "b"], "title": ["T", None], "description": [None, "D"]})
    assert item_texts(frame) == ["T", "D"]


def test_unknown_model_folder_is_a_clear_error(tmp_path: Path) -> None:
    with pytest.raises(
        FileNotFoundError, match=r"expected a sentence-transformers folder \(with modules.json\)"
    ):
        resolve_model_dir(str(tmp_path))


def test_encoders_load_offline_and_agree(encoders: dict[str, TextEncoder], no_network: list[Any]) -> None:
    texts = [
        "Canon mirrorless camera with 24 megapixel image sensor and zoom lens",
        "Nikon DSLR camera body, optical viewfinder, tripod mount",
        "Wireless over-ear headphones with deep bass and noise cancelling",
        "",
    ]
    int8, _ = encoders["onnx-int8"].encode(texts)
    fp32, stats = encoders["torch"].encode(texts)
    assert int8.shape == fp32.shape == (4, 384)
    assert int8.dtype == np.float32
    np.testing.assert_allclose(np.linalg.norm(int8, axis=1), 1.0, atol=1e-4)
    # The empty text (only [CLS][SEP]) is the least stable case of int8; it is still close.
    cosine = np.sum(int8 * fp32, axis=1)
    assert cosine[:3].min() >= 0.99 and cosine[3] >= 0.95
    assert encoders["onnx-int8"].calibration_cosine is not None
    assert encoders["onnx-int8"].calibration_cosine >= 0.99
    # Real pretrained semantics: two cameras are closer than a camera and headphones.
    assert fp32[0] @ fp32[1] > fp32[0] @ fp32[2] + 0.1
    assert int8[0] @ int8[1] > int8[0] @ int8[2] + 0.1
    assert stats.count == 4 and stats.seconds > 0
    assert no_network == []


def test_int8_encoding_is_order_independent(encoders: dict[str, TextEncoder]) -> None:
    texts = [f"usb cable number {i} " + "long " * i for i in range(70)]
    forward, _ = encoders["onnx-int8"].encode(texts)
    backward, _ = encoders["onnx-int8"].encode(texts[::-1])
    np.testing.assert_allclose(forward, backward[::-1], atol=1e-5)


def test_bad_backend_is_rejected() -> None:
    with pytest.raises(ValueError, match="backend\n  Input should be 'onnx-int8', 'onnx-fp32' or 'torch'"):
        TextEncoderConfig(backend="gpu")  # type: ignore[arg-type]
