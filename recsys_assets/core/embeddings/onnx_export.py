"""Export torch modules to ONNX once (cached by their weights) and run them with onnxruntime.

On CPU, onnxruntime runs these encoders several times faster than eager torch on the same
cores (``make bench-embeddings``). On a GPU the encoders stay in
torch. Exports are cached in the folder the caller names (``embeddings.model_cache``).
"""

from __future__ import annotations

import hashlib
import logging
import os
import warnings
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import torch


def weights_digest(module: torch.nn.Module, tag: str) -> str:
    """A short key that changes when the weights (or ``tag``: shapes, opset...) change."""
    digest = hashlib.sha256(tag.encode())
    for name, tensor in sorted(module.state_dict().items()):
        digest.update(name.encode())
        digest.update(str(tuple(tensor.shape)).encode())
        digest.update(tensor.detach().cpu().contiguous().numpy().tobytes()[:4096])
    return digest.hexdigest()[:16]


def export_cached(
    module: torch.nn.Module,
    example: Sequence[torch.Tensor],
    input_names: Sequence[str],
    dynamic_axes: dict[str, dict[int, str]],
    folder: Path,
) -> Path:
    """``folder/model.onnx`` exported from ``module`` unless it is already there."""
    target = folder / "model.onnx"
    if target.is_file():
        return target
    folder.mkdir(parents=True, exist_ok=True)
    tmp = folder / f".model.{os.getpid()}.onnx"
    with warnings.catch_warnings():
        # The tracer warns about data-dependent Python branches (HF mask helpers, "same"
        # padding) that are constant for these models; outputs are compared after export.
        warnings.simplefilter("ignore")
        torch.onnx.export(
            module.eval(),
            tuple(example),
            str(tmp),
            input_names=list(input_names),
            output_names=["embedding"],
            dynamic_axes={**dynamic_axes, "embedding": {0: "batch"}},
            opset_version=17,
            dynamo=False,
        )
    os.replace(tmp, target)
    return target


class _DropMessage(logging.Filter):
    def __init__(self, fragment: str):
        super().__init__()
        self.fragment = fragment

    def filter(self, record: logging.LogRecord) -> bool:
        return self.fragment not in record.getMessage()


def quantize_int8(fp32: Path) -> Path:
    """Weight-only int8 MatMuls (per channel); attention's activation products stay fp32."""
    from onnxruntime.quantization import QuantType, quantize_dynamic

    target = fp32.with_name("model.int8.onnx")
    if not target.is_file():
        tmp = fp32.with_name(f".model.int8.{os.getpid()}.onnx")
        # quantize_dynamic logs a generic "consider pre-processing" hint on the root logger;
        # the result is checked against fp32 instead (TextEncoder's calibration).
        hint = _DropMessage("pre-processing before quantization")
        logging.getLogger().addFilter(hint)
        try:
            quantize_dynamic(
                str(fp32),
                str(tmp),
                op_types_to_quantize=["MatMul"],
                per_channel=True,
                weight_type=QuantType.QInt8,
                extra_options={"MatMulConstBOnly": True},
            )
        finally:
            logging.getLogger().removeFilter(hint)
        os.replace(tmp, target)
    return target


def session(path: Path, threads: int | None = None) -> Any:
    import onnxruntime as ort

    options = ort.SessionOptions()
    options.intra_op_num_threads = threads or len(os.sched_getaffinity(0))
    options.inter_op_num_threads = 1
    options.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_ALL
    options.log_severity_level = 3
    # Idle worker threads would otherwise spin for a while after each run, taking the cores
    # from the download/decode threads that feed the next batch (and from anything else).
    options.add_session_config_entry("session.intra_op.allow_spinning", "0")
    return ort.InferenceSession(str(path), options, providers=["CPUExecutionProvider"])
