"""The INT8 ONNX gives the INT8 TFLite's output on an x86 CPU without VNNI (AVX2 only).

ONNX Runtime's U8S8 kernels on such CPUs add pairs of u8 * s8 products in int16 (VPMADDUBSW), which
saturates; this host's CPU may have VNNI, so the model is run under `qemu-x86_64 -cpu Haswell`, which
emulates AVX2 + FMA without any VNNI or AVX-512, and ONNX Runtime picks its AVX2 kernels there.
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
from export.tflite_build import convert_tflite
from export.runners import run_tflite
from export.validate import load_images
from gs_contract import psnr_per_image
from tests.export.helpers import SIZE
from tests.tiny import make_tiny_student

QEMU = shutil.which("qemu-x86_64")
HASWELL_MIN_DB = 40.0  # per image, ONNX vs TFLite: both run the same integer arithmetic (measured 47-100 dB)
RUNNER = Path(__file__).with_name("ort_npy.py")


@pytest.mark.slow
@pytest.mark.skipif(platform.machine() != "x86_64", reason="emulating an x86 CPU without VNNI needs an x86-64 host")
@pytest.mark.skipif(QEMU is None, reason="qemu-x86_64 not found (Debian package qemu-user): "
                                         "cannot emulate an AVX2 CPU without VNNI")
def test_int8_onnx_matches_tflite_on_avx2_without_vnni(tmp_path: Path) -> None:
    graph = slim_graph(make_tiny_student(size=SIZE))
    images = load_images(SIZE)
    model, inputs, outputs = tmp_path / "student_int8.onnx", tmp_path / "x.npy", tmp_path / "y.npy"
    onnx.save(build_onnx(graph, SIZE, int8=True), str(model))
    (tmp_path / "student_int8.tflite").write_bytes(convert_tflite(graph, SIZE, True, "int8"))
    reference = run_tflite(tmp_path / "student_int8.tflite", images)
    np.save(inputs, images.numpy())
    proc = subprocess.run([QEMU, "-cpu", "Haswell", sys.executable, str(RUNNER), str(model), str(inputs), str(outputs)],
                          capture_output=True, text=True, timeout=300)
    assert proc.returncode == 0, proc.stderr[-2000:]
    out = np.load(outputs)
    dbs = [round(float(db), 1) for db in psnr_per_image(out, reference)]
    assert min(dbs) >= HASWELL_MIN_DB, f"INT8 ONNX vs INT8 TFLite per image on emulated Haswell: {dbs} dB"
