"""The Android demo's side of an export: its pre/post-processing in Python, and asset install.

The functions below mirror ``android_demo/app/src/main/java/com/gsmobile/demo/Preprocessing.kt``
operation by operation (float64 arithmetic in the same order, round-half-to-even), so the bytes
the app feeds the model are the bytes this module produces (the pixel mapping and the
(de)quantisation are ``gs_contract``'s, which every stage uses); ``tests/android_demo`` compiles
the Kotlin file and checks that. Images here are ``uint8`` arrays ``(H, W, 3)`` RGB; tensors are
NHWC with batch 1 (docs/CONTRACTS.md).

``install_into_app(export_dir, app_dir)`` is what ``gs-export ... --android DIR`` calls.
"""
from __future__ import annotations

import json
import os
import shutil
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from gs_contract import atomic_path, dequantize, pixels_to_real, quantize, real_to_pixels

ARTIFACT_NAME = "student_int8_tflite"
MODEL_ASSET = "model.tflite"
MANIFEST_ASSET = "manifest.json"
ASSETS_SUBDIR = Path("app", "src", "main", "assets")
NUMPY_DTYPES = {"int8": np.int8, "uint8": np.uint8, "float32": np.float32}


@dataclass(frozen=True)
class TensorSpec:
    """One manifest tensor entry: NHWC shape, dtype name, scale/zero point (None when float)."""

    shape: tuple[int, ...]
    dtype: str
    scale: float | None
    zero_point: int | None

    @property
    def height(self) -> int:
        return self.shape[1]

    @property
    def width(self) -> int:
        return self.shape[2]

    @classmethod
    def from_manifest(cls, entry: dict) -> "TensorSpec":
        shape = tuple(int(d) for d in entry["shape"])
        if len(shape) != 4 or shape[0] != 1 or shape[3] != 3:
            raise ValueError(f"expected NHWC [1, H, W, 3], got {list(shape)}")
        if entry["dtype"] not in NUMPY_DTYPES:
            raise ValueError(f"unsupported tensor dtype: {entry['dtype']}")
        return cls(shape, entry["dtype"], entry.get("scale"), entry.get("zero_point"))


def app_artifact(manifest: dict) -> dict:
    """The artifact the app runs: ``student_int8_tflite``, else the first tflite (as ModelSpec.kt)."""
    artifacts = manifest["artifacts"]
    for a in artifacts:
        if a.get("name") == ARTIFACT_NAME:
            return a
    for a in artifacts:
        if a.get("format") == "tflite":
            return a
    raise ValueError("manifest.json has no tflite artifact")


def app_tensor_specs(manifest: dict) -> tuple[TensorSpec, TensorSpec]:
    """(input, output) TensorSpec of the app's artifact."""
    a = app_artifact(manifest)
    return TensorSpec.from_manifest(a["inputs"][0]), TensorSpec.from_manifest(a["outputs"][0])


def center_crop_resize(rgb: np.ndarray, out_h: int, out_w: int) -> np.ndarray:
    """Centre-crop to out_w:out_h aspect, bilinear resize (half-pixel centres, edges clamped).

    Mirrors ``Preprocessing.centerCropResize`` exactly (same integer crop, same float64 ops).
    """
    src_h, src_w = rgb.shape[:2]
    crop_w, crop_h = src_w, src_w * out_h // out_w
    if crop_h > src_h:
        crop_w, crop_h = src_h * out_w // out_h, src_h
    x0, y0 = (src_w - crop_w) // 2, (src_h - crop_h) // 2
    crop = rgb[y0:y0 + crop_h, x0:x0 + crop_w].astype(np.float64)

    def axis(n_out: int, n_crop: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        s = (np.arange(n_out) + 0.5) * n_crop / n_out - 0.5
        lo = np.clip(np.floor(s), 0, n_crop - 1).astype(np.int64)
        hi = np.minimum(lo + 1, n_crop - 1)
        return lo, hi, np.clip(s - lo, 0.0, 1.0)

    ylo, yhi, wy = axis(out_h, crop_h)
    xlo, xhi, wx = axis(out_w, crop_w)
    wx, wy = wx[None, :, None], wy[:, None, None]
    top = crop[ylo][:, xlo] * (1.0 - wx) + crop[ylo][:, xhi] * wx
    bottom = crop[yhi][:, xlo] * (1.0 - wx) + crop[yhi][:, xhi] * wx
    return np.clip(np.rint(top * (1.0 - wy) + bottom * wy), 0, 255).astype(np.uint8)


def encode(rgb: np.ndarray, spec: TensorSpec) -> np.ndarray:
    """uint8 image (H, W, 3) at the model size -> input tensor (1, H, W, 3) of ``spec.dtype``."""
    real = pixels_to_real(rgb)[None]
    if spec.dtype == "float32":
        return real.astype(np.float32)
    return quantize(real, spec.scale, spec.zero_point, spec.dtype)


def decode(tensor: np.ndarray, spec: TensorSpec) -> np.ndarray:
    """Output tensor (1, H, W, 3) -> uint8 image (H, W, 3)."""
    t = np.asarray(tensor)[0]
    real = t.astype(np.float64) if spec.dtype == "float32" else dequantize(t, spec.scale, spec.zero_point)
    return real_to_pixels(real)


def _atomic_copy(src: Path, dst: Path) -> None:
    with atomic_path(dst) as tmp:
        shutil.copyfile(src, tmp)


def install_into_app(export_dir: str | os.PathLike, app_dir: str | os.PathLike) -> Path:
    """Copy the app's .tflite (as assets/model.tflite) and manifest.json into the Android app.

    ``app_dir`` is the Gradle project (``android_demo``); files go to
    ``app_dir/app/src/main/assets``. Each file is replaced atomically. Returns the assets dir.
    Raises FileNotFoundError/ValueError when the export or the app folder is not what is expected.
    """
    export_dir, app_dir = Path(export_dir), Path(app_dir)
    manifest_path = export_dir / MANIFEST_ASSET
    manifest = json.loads(manifest_path.read_text())
    artifact = app_artifact(manifest)
    app_tensor_specs(manifest)  # validate before touching the app
    model_path = export_dir / artifact["path"]
    if not model_path.is_file():
        raise FileNotFoundError(f"{model_path} (artifact {artifact.get('name')!r}) does not exist")
    if not (app_dir / "app" / "src" / "main").is_dir():
        raise FileNotFoundError(f"{app_dir} is not the Android demo project (no app/src/main)")
    assets = app_dir / ASSETS_SUBDIR
    assets.mkdir(parents=True, exist_ok=True)
    _atomic_copy(model_path, assets / MODEL_ASSET)
    _atomic_copy(manifest_path, assets / MANIFEST_ASSET)
    return assets
