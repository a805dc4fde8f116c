"""gs_contract: the tie rule, the pixel mapping, PSNR/SSIM, sha256, atomic writes, staging onto boards."""
from __future__ import annotations

import hashlib
import json
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

import gs_contract as gc

TIES = np.array([0.5, 1.5, 2.5, -0.5, -1.5, -2.5, 126.5, -127.5])
TIES_TO_EVEN = [0, 2, 2, 0, -2, -2, 126, -128]


def test_quantize_rounds_exact_ties_to_even_then_adds_the_zero_point() -> None:
    assert gc.quantize(TIES, 1.0, 0, "int8").tolist() == TIES_TO_EVEN
    assert gc.quantize(TIES, 1.0, 0, np.int8).dtype == np.int8
    # the tie is decided on real / scale, before the zero point: 2.5 -> 2, + 3
    assert gc.quantize(np.array([1.25, -1.25]), 0.5, 3, "int8").tolist() == [5, 1]
    assert gc.quantize(np.array([300.0, -300.0, 127.5]), 1.0, 0, "int8").tolist() == [127, -128, 127]
    assert gc.quantize(np.array([0.5, 1.5, -200.0]), 1.0, 128, "uint8").tolist() == [128, 130, 0]


def test_every_stage_quantises_with_the_contract() -> None:
    """The bench runner, the export validator and the app twin give the same bytes on ties."""
    from export import android_assets
    from export.runners import _quantize
    from runtime_bench.runners import TensorSpec, quantize

    scale = 0.5
    x = TIES * scale
    want = gc.quantize(x, scale, 0, "int8")
    assert want.tolist() == TIES_TO_EVEN
    spec = TensorSpec("input", (len(x),), "int8", "NHWC", scale=scale, zero_point=0)
    np.testing.assert_array_equal(quantize(x, spec), want)
    np.testing.assert_array_equal(_quantize(x, {"dtype": np.int8, "quantization": (scale, 0)}), want)
    app = android_assets.TensorSpec((1, 1, 1, 3), "int8", gc.PIXEL_HALF_RANGE ** -1, 0)
    pixels = np.array([[[0, 128, 255]]], dtype=np.uint8)
    np.testing.assert_array_equal(android_assets.encode(pixels, app)[0],
                                  gc.quantize(gc.pixels_to_real(pixels), app.scale, 0, "int8"))


def test_dequantize() -> None:
    q = np.array([-128, 0, 127], dtype=np.int8)
    np.testing.assert_array_equal(gc.dequantize(q, 1 / 128, 0), [-1.0, 0.0, 127 / 128])
    assert gc.dequantize(np.array([255], np.uint8), 0.5, 128).tolist() == [63.5]


def test_pixel_mapping_round_trips_every_value() -> None:
    px = np.arange(256, dtype=np.uint8)
    real = gc.pixels_to_real(px)
    assert real.dtype == np.float64 and real[0] == -1.0 and real[-1] == 1.0
    np.testing.assert_array_equal(gc.real_to_pixels(real), px)
    np.testing.assert_array_equal(gc.real_to_pixels(real.astype(np.float32)), px)  # what models are fed
    assert gc.real_to_pixels(np.array([-3.0, 3.0, np.float32(0.0)])).tolist() == [0, 255, 128]  # 127.5 -> 128
    assert gc.real_to_pixels(np.zeros((2, 3, 4, 4))).shape == (2, 3, 4, 4)


def test_psnr_of_known_arrays() -> None:
    a = np.zeros((2, 3, 4, 4))
    b = a.copy()
    b[0] += 0.1  # MSE 0.01 -> 10 log10(4 / 0.01)
    b[1] -= 0.2  # MSE 0.04 -> 20 dB
    per = gc.psnr_per_image(a, b)
    np.testing.assert_allclose(per, [10 * np.log10(400), 20.0])
    assert gc.psnr(a, b) == pytest.approx((10 * np.log10(400) + 20.0) / 2)
    assert gc.psnr(a, a) == gc.PSNR_CAP  # identical images: capped, never inf
    # a float difference of 4 pixel steps is 10 log10(255^2 / 4^2): the same number in 8-bit units
    assert gc.psnr(a, a + 4 / 127.5) == pytest.approx(10 * np.log10(255 ** 2 / 16))


def test_ssim_identical_and_small_images() -> None:
    rng = np.random.default_rng(0)
    a = rng.uniform(-1, 1, (2, 3, 5, 6))
    np.testing.assert_allclose(gc.ssim_per_image(a, a), [1.0, 1.0])
    assert gc.ssim(a, np.clip(a + rng.normal(0, 0.3, a.shape), -1, 1)) < 0.9


def test_sha256_file(tmp_path: Path) -> None:
    p = tmp_path / "f.bin"
    p.write_bytes(b"abc" * 1000)
    assert gc.sha256_file(p, chunk=7) == hashlib.sha256(b"abc" * 1000).hexdigest()


def test_atomic_writes_replace_whole_files(tmp_path: Path) -> None:
    p = tmp_path / "sub" / "doc.json"
    gc.write_json_atomic(p, {"a": [1, 2]})
    assert json.loads(p.read_text()) == {"a": [1, 2]} and p.read_text().endswith("\n")
    assert p.stat().st_mode & 0o777 == 0o644
    gc.write_text_atomic(p, "é")
    assert p.read_text(encoding="utf-8") == "é"
    gc.write_bytes_atomic(p, b"\x00\x01")
    assert p.read_bytes() == b"\x00\x01" and os.listdir(p.parent) == ["doc.json"]


def test_atomic_write_leaves_no_partial_file_when_serialisation_fails(tmp_path: Path) -> None:
    p = tmp_path / "metrics.json"
    with pytest.raises(TypeError):
        gc.write_json_atomic(p, {"x": object()})
    assert os.listdir(tmp_path) == []
    p.write_text("old")
    with pytest.raises(ValueError):
        gc.write_json_atomic(p, {"x": float("nan")}, allow_nan=False)
    with pytest.raises(RuntimeError), gc.atomic_path(p) as tmp:
        tmp.write_text("half of a fi")
        raise RuntimeError("the writer failed midway")
    assert p.read_text() == "old" and os.listdir(tmp_path) == ["metrics.json"]


def test_boards_get_the_contract_with_runtime_bench(tmp_path: Path) -> None:
    """What gs-bench stages for ssh/qemu boards imports gs_contract from the staged copy."""
    from runtime_bench.targets import stage_package

    stage_package(tmp_path)
    code = "import gs_contract, runtime_bench.runners as r; print(gs_contract.__file__, r.__file__)"
    env = {k: v for k, v in os.environ.items() if k != "PYTHONPATH"}
    proc = subprocess.run([sys.executable, "-c", code], cwd=tmp_path, capture_output=True, text=True,
                          env={**env, "PYTHONPATH": str(tmp_path)}, timeout=120)
    assert proc.returncode == 0, proc.stderr
    assert all(Path(f).is_relative_to(tmp_path) for f in proc.stdout.split())
