"""The INT8 ONNX gives the same output on an x86 CPU without VNNI (AVX2 only) as on this host.

ONNX Runtime's U8S8 kernels on such CPUs add pairs of u8 * s8 products in int16 (VPMADDUBSW), which
saturates; this host's CPU may have VNNI, so the model is run under `qemu-x86_64 -cpu Haswell`, which
emulates AVX2 + FMA without any VNNI or AVX-512, and ONNX Runtime picks its AVX2 kernels there.
The reference is the same graph run natively: the uint8 graph's integer arithmetic is exact on both,
so the outputs must be bit-identical (the former int8-weight graph scored 17-40 dB there). The INT8
TFLite is not the reference: ORT quantises the float input inside the graph in float32, while the
TFLite model takes int8 quantised by the caller in float64 (gs_contract), and on the 2/255 input grid
every pixel is a rounding tie, so the two inputs differ by one step on a quarter of the values.
"""
from __future__ import annotations

import platform
import shutil
import subprocess
import sys
from pathlib import Path

import numpy as np
import onnx
import pytest

from export.onnx_build import build_onnx
from export.slim import slim_graph
from export.validate import load_images
from gs_contract import psnr_per_image
from tests.export.helpers import SIZE
from tests.tiny import make_tiny_student

QEMU = shutil.which("qemu-x86_64")
RUNNER = Path(__file__).with_name("ort_npy.py")


@pytest.mark.slow
@pytest.mark.skipif(platform.machine() != "x86_64", reason="emulating an x86 CPU without VNNI needs an x86-64 host")
@pytest.mark.skipif(QEMU is None, reason="qemu-x86_64 not found (Debian package qemu-user): "
                                         "cannot emulate an AVX2 CPU without VNNI")
def test_int8_onnx_matches_tflite_on_avx2_without_vnni(tmp_path: Path) -> None:
    graph = slim_graph(make_tiny_student(size=SIZE))
    images = load_images(SIZE)
    model, inputs = tmp_path / "student_int8.onnx", tmp_path / "x.npy"
    onnx.save(build_onnx(graph, SIZE, int8=True), str(model))
    np.save(inputs, images.numpy())

    def run(prefix: list[str], name: str) -> np.ndarray:
        proc = subprocess.run([*prefix, sys.executable, str(RUNNER), str(model), str(inputs), str(tmp_path / name)],
                              capture_output=True, text=True, timeout=300)
        assert proc.returncode == 0, proc.stderr[-2000:]
        return np.load(tmp_path / name)

    native, haswell = run([], "native.npy"), run([QEMU, "-cpu", "Haswell"], "haswell.npy")
    dbs = [round(float(db), 1) for db in psnr_per_image(haswell, native)]
    assert np.array_equal(haswell, native), f"INT8 ONNX on emulated Haswell vs this host, per image: {dbs} dB"
