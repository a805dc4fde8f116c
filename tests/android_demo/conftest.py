"""Fixtures for the Android demo tests: paths, and a tiny real full-int8 export (TF built)."""
from __future__ import annotations

import hashlib
import json
import shutil
from pathlib import Path

import numpy as np
import pytest

REPO = Path(__file__).resolve().parents[2]
APP_DIR = REPO / "android_demo"
KOTLIN_SRC = APP_DIR / "app" / "src" / "main" / "java" / "com" / "gsmobile" / "demo"
TINY_H, TINY_W = 48, 64  # non-square on purpose: exercises the centre crop


def _photo() -> np.ndarray:
    from skimage import data

    return data.astronaut()


@pytest.fixture(scope="session")
def photo() -> np.ndarray:
    """A real photo (scikit-image astronaut, public domain), 512x512 RGB uint8."""
    return _photo()


def _tiny_keras_model():
    import tensorflow as tf

    tf.keras.utils.set_random_seed(0)
    inp = tf.keras.Input((TINY_H, TINY_W, 3), batch_size=1)
    x = tf.keras.layers.Conv2D(8, 3, padding="same", activation="relu")(inp)
    x = tf.keras.layers.Conv2D(3, 3, padding="same")(x)
    out = tf.keras.layers.Activation("tanh")(tf.keras.layers.Add()([x, inp]))
    return tf.keras.Model(inp, out)


def _int8_tflite(model, calibration: np.ndarray) -> bytes:
    import tensorflow as tf

    conv = tf.lite.TFLiteConverter.from_keras_model(model)
    conv.optimizations = [tf.lite.Optimize.DEFAULT]
    conv.representative_dataset = lambda: ([c[None].astype(np.float32)] for c in calibration)
    conv.target_spec.supported_ops = [tf.lite.OpsSet.TFLITE_BUILTINS_INT8]
    conv.inference_input_type = tf.int8
    conv.inference_output_type = tf.int8
    return conv.convert()


def _tensor_entry(detail: dict, name: str) -> dict:
    scale, zp = detail["quantization"]
    return {"name": name, "shape": [int(d) for d in detail["shape"]], "dtype": np.dtype(detail["dtype"]).name,
            "layout": "NHWC", "scale": float(scale), "zero_point": int(zp)}


@pytest.fixture(scope="session")
def tiny_export(tmp_path_factory) -> dict:
    """EXPORT_DIR with a tiny full-int8 student_int8.tflite + manifest.json, and its Keras model."""
    pytest.importorskip("tensorflow")
    pytest.importorskip("ai_edge_litert")
    from ai_edge_litert.interpreter import Interpreter

    from export.android_assets import center_crop_resize
    from gs_contract import pixels_to_real

    rng = np.random.default_rng(0)
    img = _photo()
    crops = [img[y:y + 200, x:x + 200] for y, x in rng.integers(0, 300, size=(16, 2))]
    calibration = np.stack([pixels_to_real(center_crop_resize(c, TINY_H, TINY_W)) for c in crops])
    calibration[0, 0, 0] = [-1.0, 1.0, -1.0]  # the full pixel range is seen
    model = _tiny_keras_model()
    blob = _int8_tflite(model, calibration)
    export_dir = tmp_path_factory.mktemp("tiny_export")
    (export_dir / "student_int8.tflite").write_bytes(blob)
    interp = Interpreter(model_content=blob)
    artifact = {
        "name": "student_int8_tflite", "path": "student_int8.tflite", "format": "tflite", "role": "student",
        "precision": "int8", "bytes": len(blob), "sha256": hashlib.sha256(blob).hexdigest(),
        "inputs": [_tensor_entry(interp.get_input_details()[0], "input")],
        "outputs": [_tensor_entry(interp.get_output_details()[0], "output")],
    }
    manifest = {"format": "gs-mobile/export", "version": 1, "image_size": [TINY_H, TINY_W], "artifacts": [
        {"name": "student_fp32_tflite", "path": "student_fp32.tflite", "format": "tflite", "precision": "fp32",
         "inputs": [], "outputs": []},  # listed first: the app must still pick the int8 one
        artifact]}
    (export_dir / "manifest.json").write_text(json.dumps(manifest, indent=2))
    return {"dir": export_dir, "model": model, "manifest": manifest, "blob": blob}


@pytest.fixture(scope="session")
def kotlin_src() -> Path:
    """Folder of the app's Kotlin sources."""
    return KOTLIN_SRC


def copy_app(parent: Path) -> Path:
    """Copy android_demo/ into parent (without build outputs or installed models); returns the copy."""
    dst = parent / "android_demo"
    shutil.copytree(APP_DIR, dst, ignore=shutil.ignore_patterns("build", ".gradle", "model.tflite", "manifest.json"))
    return dst


@pytest.fixture()
def app_copy(tmp_path) -> Path:
    """A scratch copy of android_demo/ for one test."""
    return copy_app(tmp_path)


@pytest.fixture(scope="session")
def app_copy_factory():
    """copy_app, for fixtures with a wider scope than app_copy."""
    return copy_app
