"""Image downloads (failures counted by reason) and the image encoders (weights or a clear error)."""

from __future__ import annotations

import io
import socket
import tempfile
import threading
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from PIL import Image

from recsys_assets.core.embeddings.image_fetch import FetchReport, decode, fetch_images
from recsys_assets.core.embeddings.images import WeightsError, load_image_encoder
from recsys_assets.devdata.synthetic import write_image

#: ONNX exports of the encoders, shared by this module's tests (made once per weights).
ONNX_CACHE = Path(tempfile.gettempdir()) / "recsys-onnx-tests"


def _jpeg(colour: tuple[int, int, int], size: tuple[int, int] = (80, 40)) -> bytes:
    buffer = io.BytesIO()
    Image.new("RGB", size, colour).save(buffer, format="JPEG")
    return buffer.getvalue()


@pytest.fixture
def silent_server() -> Iterator[str]:
    """Accepts connections and never answers: every request times out."""
    server = socket.socket()
    server.bind(("127.0.0.1", 0))
    server.listen(16)
    held: list[socket.socket] = []
    stop = threading.Event()

    def accept() -> None:
        server.settimeout(0.2)
        while not stop.is_set():
            try:
                held.append(server.accept()[0])
            except TimeoutError:
                continue

    thread = threading.Thread(target=accept, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.getsockname()[1]}"
    finally:
        stop.set()
        thread.join()
        for conn in held:
            conn.close()
        server.close()


def test_decode_resizes_the_short_side_and_centre_crops() -> None:
    pixels = decode(_jpeg((200, 10, 10), (80, 40)), 32)
    assert pixels.shape == (32, 32, 3) and pixels.dtype == np.uint8
    assert abs(int(pixels[16, 16, 0]) - 200) < 10


def test_failures_are_counted_by_reason_and_nothing_is_lost(
    http_root: tuple[Path, str], silent_server: str, tmp_path: Path
) -> None:
    root, base = http_root
    (root / "good.jpg").write_bytes(_jpeg((0, 200, 0)))
    (root / "corrupt.jpg").write_bytes(b"\xff\xd8 this is not a jpeg")
    local = tmp_path / "local.jpg"
    local.write_bytes(_jpeg((0, 0, 200)))
    urls = [
        f"{base}/good.jpg",
        f"{base}/missing.jpg",
        f"{base}/corrupt.jpg",
        f"{silent_server}/slow.jpg",
        None,
        str(local),
        local.as_uri(),
    ]
    report = FetchReport()
    chunks = list(
        fetch_images(urls, 16, workers=4, timeout=0.5, retries=1, backoff=0.01, chunk=3, report=report)
    )
    positions = np.concatenate([p for p, _ in chunks])
    pixels = np.concatenate([x for _, x in chunks])
    assert positions.tolist() == [0, 5, 6]
    assert pixels.shape == (3, 16, 16, 3)
    assert int(pixels[0, 8, 8, 1]) > 150 and int(pixels[1, 8, 8, 2]) > 150
    assert dict(report.failed) == {"not_found": 1, "corrupt": 1, "timeout": 1, "no_url": 1}
    assert report.requested == 7 and report.fetched == 3
    assert report.fetched + sum(report.failed.values()) == len(urls)
    assert report.examples["timeout"] == [f"{silent_server}/slow.jpg: no answer in 0.5s"]
    assert report.examples["not_found"] == [f"{base}/missing.jpg: HTTP 404"]


def test_images_come_from_gcs(gcs_emulator: str) -> None:
    from google.auth.credentials import AnonymousCredentials
    from google.cloud import storage

    from recsys_assets_tests.conftest import GCS_BUCKET

    client = storage.Client(project="test", credentials=AnonymousCredentials())
    client.bucket(GCS_BUCKET).blob("images/red.jpg").upload_from_string(_jpeg((220, 0, 0)))
    report = FetchReport()
    [(positions, pixels)] = list(
        fetch_images(
            [f"gs://{GCS_BUCKET}/images/red.jpg", f"gs://{GCS_BUCKET}/images/none.jpg"], 8, report=report
        )
    )
    assert positions.tolist() == [0]
    assert int(pixels[0, 4, 4, 0]) > 180
    assert dict(report.failed) == {"not_found": 1}


def test_efficientnet_uses_the_packaged_pretrained_weights(tmp_path: Path) -> None:
    encoder = load_image_encoder("efficientnet-lite0", device="cpu", cache_dir=ONNX_CACHE)
    assert (encoder.dim, encoder.image_size) == (1280, 224)
    for name, category, brand in [("a", 0, 0), ("b", 0, 1), ("c", 6, 3)]:
        write_image(tmp_path / f"{name}.jpg", category, seed=1, brand=brand)
    pixels = np.stack([decode((tmp_path / f"{n}.jpg").read_bytes(), 224) for n in "abc"])
    vectors = encoder.encode(pixels)
    assert vectors.shape == (3, 1280) and vectors.dtype == np.float32
    np.testing.assert_allclose(np.linalg.norm(vectors, axis=1), 1.0, atol=1e-5)
    # Same category, different brand mark: closer than a different category.
    assert vectors[0] @ vectors[1] > vectors[0] @ vectors[2]
    np.testing.assert_allclose(encoder.encode(pixels[:1]), vectors[:1], atol=1e-5)
    # On CPU the encoder runs through onnxruntime; eager torch gives the same vectors.
    assert encoder.runtime == "onnxruntime"
    eager = load_image_encoder("efficientnet-lite0", device="cpu", runtime="torch", cache_dir=ONNX_CACHE)
    assert eager.runtime == "torch"
    np.testing.assert_allclose(eager.encode(pixels), vectors, atol=1e-4)


def test_bad_efficientnet_weights_fail_clearly(tmp_path: Path) -> None:
    bad = tmp_path / "weights.pth"
    bad.write_bytes(b"not a checkpoint")
    with pytest.raises(WeightsError, match=r"efficientnet-lite0 weights '.*weights.pth' .* do not load"):
        load_image_encoder("efficientnet-lite0", str(bad), device="cpu", cache_dir=ONNX_CACHE)


def _tiny_clip(folder: Path) -> Path:
    """A random, tiny CLIP vision tower saved like a real one (tests only)."""
    import torch
    from transformers import CLIPVisionConfig, CLIPVisionModelWithProjection

    torch.manual_seed(0)
    config = CLIPVisionConfig(
        hidden_size=32, intermediate_size=64, num_hidden_layers=2, num_attention_heads=2,
        image_size=32, patch_size=8, projection_dim=16,
    )  # fmt: skip
    CLIPVisionModelWithProjection(config).save_pretrained(folder)
    return folder


def _clip_config(folder: Path) -> Any:
    from transformers import CLIPVisionConfig

    return CLIPVisionConfig.from_pretrained(folder)


def test_clip_loads_from_a_saved_folder(tmp_path: Path) -> None:
    encoder = load_image_encoder(
        "clip", str(_tiny_clip(tmp_path / "clip")), device="cpu", cache_dir=ONNX_CACHE
    )
    assert (encoder.dim, encoder.image_size) == (16, 32)
    pixels = np.random.default_rng(0).integers(0, 255, size=(2, 32, 32, 3), dtype=np.uint8)
    vectors = encoder.encode(pixels)
    assert vectors.shape == (2, 16)
    np.testing.assert_allclose(np.linalg.norm(vectors, axis=1), 1.0, atol=1e-5)
    eager = load_image_encoder(
        "clip", str(tmp_path / "clip"), device="cpu", runtime="torch", cache_dir=ONNX_CACHE
    )
    np.testing.assert_allclose(eager.encode(pixels), vectors, atol=1e-4)


def test_clip_without_weights_never_runs_random(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    folder = _tiny_clip(tmp_path / "clip")
    (folder / "model.safetensors").unlink()
    with pytest.raises(WeightsError, match="cannot be loaded"):
        load_image_encoder("clip", str(folder), device="cpu", cache_dir=ONNX_CACHE)
    # A tower saved without the projection layer: loading would leave it random.
    from transformers import CLIPVisionModel

    CLIPVisionModel(_clip_config(folder)).save_pretrained(tmp_path / "no_projection")
    with pytest.raises(WeightsError, match=r"lack 1 tensor\(s\), e.g. \['visual_projection.weight'"):
        load_image_encoder("clip", str(tmp_path / "no_projection"), device="cpu", cache_dir=ONNX_CACHE)
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    with pytest.raises(WeightsError, match="'openai/clip-vit-base-patch32' cannot be loaded"):
        load_image_encoder("clip", device="cpu", cache_dir=ONNX_CACHE)
