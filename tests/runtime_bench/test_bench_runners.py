"""Runners on the tiny export: every runtime returns float NCHW [-1, 1] that agrees across runtimes."""
from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from runtime_bench.errors import BenchError
from runtime_bench.manifest import load_manifest, select_artifacts
from runtime_bench.runners import (TensorSpec, artifact_runtime, dequantize, from_layout, quantize, runner_for,
                                    to_layout)

from bench_helpers import SIZE


def test_quantize_follows_contract() -> None:
    spec = TensorSpec("input", (1, 2, 2, 3), "int8", "NHWC", scale=2 / 255, zero_point=0)
    x = np.array([-1.0, 0.0, 2 / 255, 0.5, 1.0, 3.0], dtype=np.float32)
    q = quantize(x, spec)
    assert q.dtype == np.int8
    assert q.tolist()[1:] == [0, 1, 64, 127, 127] and q[0] in (-127, -128)  # 127.5 and 382.5 clamp
    half = TensorSpec("h", (1,), "int8", "NHWC", scale=0.5, zero_point=-3)
    # gs_contract's tie rule: half to even (2.5 -> 2, -2.5 -> -2, 1.5 -> 2); clamped to [-128, 127]
    assert quantize(np.array([1.25, -1.25, 0.75, 100.0, -100.0]), half).tolist() == [-1, -5, -1, 127, -128]
    np.testing.assert_allclose(dequantize(q, spec), (q.astype(np.float32)) * 2 / 255, rtol=1e-6)
    u = TensorSpec("o", (1,), "uint8", "NHWC", scale=1 / 128, zero_point=128)
    np.testing.assert_allclose(dequantize(quantize(np.array([-1.0, 0.0, 0.5]), u), u), [-1.0, 0.0, 0.5])
    f = TensorSpec("f", (1,), "float32", "NCHW")
    assert quantize(np.array([0.25]), f).dtype == np.float32


def test_layout_roundtrip() -> None:
    x = np.arange(2 * 3 * 4 * 5, dtype=np.float32).reshape(2, 3, 4, 5)
    y = to_layout(x, "NHWC")
    assert y.shape == (2, 4, 5, 3) and y[1, 2, 3, 0] == x[1, 0, 2, 3]
    np.testing.assert_array_equal(from_layout(y, "NHWC"), x)
    assert to_layout(x, "NCHW") is x


def test_spec_without_quant_params_rejected() -> None:
    with pytest.raises(BenchError):
        TensorSpec.from_manifest({"name": "i", "shape": [1, 3], "dtype": "int8", "layout": "NHWC"})
    with pytest.raises(BenchError):
        TensorSpec.from_manifest({"name": "i", "shape": [1, 3], "dtype": "float16"})


@pytest.fixture(scope="module")
def outputs(tiny_export: Path) -> dict[str, np.ndarray]:
    """Every artifact run in this process on the same two random images."""
    arts, _ = select_artifacts(tiny_export, load_manifest(tiny_export), "all")
    x = np.random.default_rng(0).uniform(-1, 1, (1, 3, SIZE, SIZE)).astype(np.float32)
    out = {}
    for a in arts:
        r = runner_for(a.entry, a.path, threads=1)
        assert r.load() > 0
        y = r.run(x)
        assert y.dtype == np.float32 and y.shape == (1, 3, SIZE, SIZE)
        assert np.abs(y).max() <= 1.0 + 1e-6
        ms, native = r.timed_invoke(r.prepare(x))
        assert ms > 0
        np.testing.assert_allclose(r.finish(native), y, atol=1e-6)
        out[a.name] = y
    return out


def test_teacher_agrees_across_runtimes(outputs: dict[str, np.ndarray]) -> None:
    ref = outputs["teacher_fp32_torch"]
    np.testing.assert_allclose(outputs["teacher_fp32_onnx"], ref, atol=1e-5)
    np.testing.assert_allclose(outputs["teacher_fp32_tflite"], ref, atol=1e-4)


def test_int8_student_close_to_fp32_student(outputs: dict[str, np.ndarray]) -> None:
    fp32, int8 = outputs["student_fp32_tflite"], outputs["student_int8_tflite"]
    np.testing.assert_allclose(outputs["student_fp32_onnx"], fp32, atol=1e-4)
    err = np.abs(int8 - fp32)
    assert err.mean() < 0.02 and err.max() < 0.1, (err.mean(), err.max())
    assert np.abs(int8 - outputs["teacher_fp32_torch"]).mean() > 5 * err.mean()  # not trivially equal


def test_unknown_format_rejected(tiny_export: Path) -> None:
    with pytest.raises(BenchError, match="cannot run"):
        runner_for({"name": "m", "format": "mlpackage"}, tiny_export / "x", 1)


def test_tflite_resize(tiny_export: Path) -> None:
    arts, _ = select_artifacts(tiny_export, load_manifest(tiny_export), "tflite")
    a = next(a for a in arts if a.name == "student_int8_tflite")
    r = runner_for(a.entry, a.path, threads=1, size=(48, 40))
    r.load()
    assert r.run(np.zeros((1, 3, 48, 40), np.float32)).shape == (1, 3, 48, 40)


def test_runtime_from_the_manifest_entry() -> None:
    """gs-export writes each artifact's runtime; entries of older manifests fall back to their format."""
    assert artifact_runtime({"format": "onnx", "runtime": "onnxruntime"}) == "onnxruntime"
    assert artifact_runtime({"format": "newformat", "runtime": "torch"}) == "torch"
    assert artifact_runtime({"format": "coreml", "runtime": None}) is None
    assert artifact_runtime({"format": "onnx"}) == "onnxruntime"
    assert artifact_runtime({"format": "coreml"}) is None
