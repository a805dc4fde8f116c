"""Run an ONNX model with ONNX Runtime on a .npy batch and save the outputs as .npy.

`python tests/export/ort_npy.py MODEL.onnx IN.npy OUT.npy`. Imports only numpy and onnxruntime, so
it starts in seconds under `qemu-x86_64 -cpu Haswell` (an emulated AVX2 CPU without VNNI).
"""
from __future__ import annotations

import sys

import numpy as np
import onnxruntime as ort


def main(model: str, inputs: str, outputs: str) -> None:
    opts = ort.SessionOptions()
    opts.intra_op_num_threads = 1
    opts.log_severity_level = 3
    sess = ort.InferenceSession(model, opts, providers=["CPUExecutionProvider"])
    x = np.load(inputs)
    np.save(outputs, np.concatenate([sess.run(None, {"input": img[None]})[0] for img in x]))


if __name__ == "__main__":
    main(*sys.argv[1:4])
