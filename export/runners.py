"""Validation runners: run an artifact on an NCHW float batch in [-1, 1], return an NCHW float batch.

Each format in `export.formats` names its runner; the runtime is imported inside the runner, so
exporting one format never imports another's runtime.
"""
from __future__ import annotations

from pathlib import Path

import numpy as np
import torch

from gs_contract import dequantize, quantize

from .artifact_info import tflite_interpreter


def _quantize(x: np.ndarray, detail: dict) -> np.ndarray:
    dtype = detail["dtype"]
    if dtype == np.float32:
        return x.astype(np.float32)
    scale, zp = detail["quantization"]
    return quantize(x, scale, zp, dtype)


def _dequantize(y: np.ndarray, detail: dict) -> np.ndarray:
    if detail["dtype"] == np.float32:
        return y
    scale, zp = detail["quantization"]
    return dequantize(y, scale, zp).astype(np.float32)


def run_tflite(path: Path, x: torch.Tensor) -> np.ndarray:
    it = tflite_interpreter(path)
    i, o = it.get_input_details()[0], it.get_output_details()[0]
    outs = []
    for img in x.permute(0, 2, 3, 1).numpy():
        it.set_tensor(i["index"], _quantize(img[None], i))
        it.invoke()
        outs.append(_dequantize(it.get_tensor(o["index"]), o)[0])
    return np.stack(outs).transpose(0, 3, 1, 2)


def run_onnx(path: Path, x: torch.Tensor) -> np.ndarray:
    import onnxruntime as ort

    opts = ort.SessionOptions()
    opts.intra_op_num_threads = 2
    opts.log_severity_level = 3
    sess = ort.InferenceSession(str(path), opts, providers=["CPUExecutionProvider"])
    return np.concatenate([sess.run(None, {"input": img[None]})[0] for img in x.numpy()])


def run_torchscript(path: Path, x: torch.Tensor) -> np.ndarray:
    with torch.no_grad():
        return torch.jit.load(str(path)).eval()(x).numpy()
