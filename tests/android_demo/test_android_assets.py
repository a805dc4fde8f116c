"""Fast checks of export/android_assets.py: the Python twin of the app's pre/post-processing."""
from __future__ import annotations

import json
import re

import numpy as np
import pytest

import gs_contract
from export import android_assets as aa

INPUT_SCALE = float(np.float32(2 / 255))  # the student's input quantiser, as a manifest stores it
OUTPUT_SCALE = 1 / 128


def test_constants_match_the_kotlin_sources(kotlin_src):
    text = "".join(p.read_text() for p in kotlin_src.glob("*.kt"))
    k = dict(re.findall(r"const val (\w+) = (\S+)", text))
    assert float(k["PIXEL_HALF_RANGE"]) == gs_contract.PIXEL_HALF_RANGE
    assert float(k["PIXEL_OFFSET"]) == gs_contract.PIXEL_OFFSET
    assert json.loads(k["ARTIFACT_NAME"]) == aa.ARTIFACT_NAME
    assert json.loads(k["MODEL_ASSET"]) == aa.MODEL_ASSET
    assert json.loads(k["MANIFEST_ASSET"]) == aa.MANIFEST_ASSET


def test_quantize_follows_the_contract():
    pixels = np.arange(256, dtype=np.uint8)
    q = gs_contract.quantize(gs_contract.pixels_to_real(pixels), INPUT_SCALE, 0, "int8")
    assert q.dtype == np.int8 and q[0] == -127 and q[-1] == 127
    assert np.all(np.diff(q.astype(int)) >= 0)
    err = np.abs(gs_contract.dequantize(q, INPUT_SCALE, 0) - gs_contract.pixels_to_real(pixels))
    assert err.max() <= INPUT_SCALE / 2 + 1e-6
    assert gs_contract.quantize(np.array([5.0, -5.0]), 0.01, 3, "uint8").tolist() == [255, 0]


def test_dequantize_to_pixels_covers_the_range():
    q = np.arange(-128, 128).astype(np.int8)
    px = gs_contract.real_to_pixels(gs_contract.dequantize(q, OUTPUT_SCALE, 0))
    assert px[0] == 0 and px[-1] == 254 and np.all(np.diff(px.astype(int)) >= 0)


def test_center_crop_resize_identity_and_crop():
    img = np.random.default_rng(0).integers(0, 256, (20, 30, 3), dtype=np.uint8)
    assert np.array_equal(aa.center_crop_resize(img, 20, 30), img)
    wide = np.zeros((50, 100, 3), np.uint8)
    wide[:, :, 0] = np.arange(100)[None, :]  # red = column index
    out = aa.center_crop_resize(wide, 10, 10)  # keeps columns 25..74
    assert out.shape == (10, 10, 3)
    assert 25 <= out[..., 0].min() and out[..., 0].max() <= 74
    assert np.array_equal(out[0, :, 0], out[-1, :, 0])
    flat = np.full((64, 64, 3), 77, np.uint8)
    assert np.all(aa.center_crop_resize(flat, 16, 16) == 77)


def test_encode_decode_shapes():
    spec = aa.TensorSpec((1, 4, 5, 3), "int8", INPUT_SCALE, 0)
    img = np.random.default_rng(1).integers(0, 256, (4, 5, 3), dtype=np.uint8)
    t = aa.encode(img, spec)
    assert t.shape == (1, 4, 5, 3) and t.dtype == np.int8
    back = aa.decode(t, spec)
    assert np.abs(back.astype(int) - img).max() <= 1
    fspec = aa.TensorSpec((1, 4, 5, 3), "float32", None, None)
    assert np.array_equal(aa.decode(aa.encode(img, fspec), fspec), img)


def _fake_export(tmp_path, model_bytes: bytes = b"TFL3-model"):
    d = tmp_path / "export"
    d.mkdir(parents=True)
    (d / "student_int8.tflite").write_bytes(model_bytes)
    tensor = {"shape": [1, 8, 8, 3], "dtype": "int8", "scale": INPUT_SCALE, "zero_point": 0}
    manifest = {"artifacts": [{"name": "student_int8_tflite", "path": "student_int8.tflite", "format": "tflite",
                               "inputs": [tensor], "outputs": [tensor]}]}
    (d / "manifest.json").write_text(json.dumps(manifest))
    return d


def test_install_into_app_copies_model_and_manifest(tmp_path, app_copy):
    export_dir = _fake_export(tmp_path)
    assets = aa.install_into_app(export_dir, app_copy)
    assert assets == app_copy / "app" / "src" / "main" / "assets"
    assert (assets / "model.tflite").read_bytes() == b"TFL3-model"
    assert json.loads((assets / "manifest.json").read_text())["artifacts"][0]["name"] == "student_int8_tflite"
    assert not list(assets.glob("*.tmp"))
    aa.install_into_app(_fake_export(tmp_path / "second", b"new"), app_copy)  # replaces
    assert (assets / "model.tflite").read_bytes() == b"new"


def test_install_into_app_refuses_bad_inputs(tmp_path, app_copy):
    export_dir = _fake_export(tmp_path)
    with pytest.raises(FileNotFoundError):
        aa.install_into_app(export_dir, tmp_path / "not_an_app")
    (export_dir / "student_int8.tflite").unlink()
    with pytest.raises(FileNotFoundError):
        aa.install_into_app(export_dir, app_copy)
    assert not (app_copy / "app" / "src" / "main" / "assets" / "model.tflite").exists()
