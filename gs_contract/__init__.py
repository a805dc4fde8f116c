"""The facts every gs-mobile stage shares, each defined once (docs/CONTRACTS.md).

numpy and the standard library only: gs-bench copies this file next to ``runtime_bench`` onto
ARM boards that have nothing else (``runtime_bench.targets.stage_package``). scikit-image is
imported inside ``ssim_per_image`` alone, which never runs on a board. The submodules hold the
shared facts that need more and never run on a board: ``figures`` (PNG figures, matplotlib) and
``photos`` (reading photo files, Pillow).

Rounding: one tie rule everywhere, round half to even (``numpy.rint``), in float64. It is what
the Android app does (``Preprocessing.kt``: ``Math.rint`` on Double, checked bit for bit against
``export.android_assets`` by tests/android_demo), what torch's ``fake_quantize`` ops do (the
INT8 student every artifact is validated against), and ONNX ``QuantizeLinear``. LiteRT's
*reference* QUANTIZE kernel rounds half away from zero (``std::round``), but with the default
``gs-export --io int8`` no QUANTIZE op runs on the student's input: its INT8 .tflite takes int8
tensors, quantised by the caller with ``quantize`` below (or by the app); only ``--io float``
models quantise inside, with LiteRT's own kernel. On the input grid (scale 2/255, zero point 0) every pixel
value lies within float rounding error of a .5 tie, so the float64 arithmetic is part of the rule:
done in float32, a quarter of the 256 pixel values round differently.
"""
from __future__ import annotations

import hashlib
import json
import os
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import numpy as np

# ----- pixels <-> model values ------------------------------------------------------------------
#: x = pixel / PIXEL_HALF_RANGE - PIXEL_OFFSET maps 0..255 onto [-1, 1] (the generators' tanh range).
PIXEL_HALF_RANGE = 127.5
PIXEL_OFFSET = 1.0


def pixels_to_real(pixels: np.ndarray) -> np.ndarray:
    """uint8 pixels (any layout) -> float64 model values in [-1, 1]: ``pixel / 127.5 - 1``.

    Cast the result to float32 where a model needs it; every stage then feeds the same bits.
    """
    return np.asarray(pixels).astype(np.float64) / PIXEL_HALF_RANGE - PIXEL_OFFSET


def real_to_pixels(real: np.ndarray) -> np.ndarray:
    """Model values (tanh range, any layout) -> uint8: ``rint((y + 1) * 127.5)`` clipped to 0..255."""
    y = np.asarray(real, dtype=np.float64)
    return np.clip(np.rint((y + PIXEL_OFFSET) * PIXEL_HALF_RANGE), 0, 255).astype(np.uint8)


# ----- int8 / uint8 tensors -------------------------------------------------------------------
def quantize(real: np.ndarray, scale: float, zero_point: int, dtype: Any) -> np.ndarray:
    """``q = clamp(rint(real / scale) + zero_point)`` in ``dtype``'s range ("int8", "uint8", np.int8...).

    float64 arithmetic, ties to even (the module docstring says why); same order of operations
    as ``Preprocessing.quantize`` in the Android app.
    """
    dt = np.dtype(dtype)
    info = np.iinfo(dt)
    q = np.rint(np.asarray(real, dtype=np.float64) / float(scale)) + int(zero_point)
    return np.clip(q, info.min, info.max).astype(dt)


def dequantize(q: np.ndarray, scale: float, zero_point: int) -> np.ndarray:
    """``real = (q - zero_point) * scale``, float64."""
    return (np.asarray(q).astype(np.int64) - int(zero_point)).astype(np.float64) * float(scale)


# ----- image quality -----------------------------------------------------------------------------
PSNR_CAP = 100.0
#: The one PSNR variant, as reports name it.
PSNR_CONVENTION = ("mean over images of per-image PSNR on [-1, 1] float images with peak-to-peak 2 "
                   "(= 8-bit pixel units, peak 255, before rounding to pixels), each capped at 100 dB")


def psnr_per_image(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """PSNR (dB) of each image of two [-1, 1] batches (N, ...): ``10 log10(2^2 / MSE)``, capped at 100.

    Torch tensors: pass ``t.detach().cpu().numpy()``.
    """
    d = np.asarray(a, dtype=np.float64) - np.asarray(b, dtype=np.float64)
    mse = (d.reshape(len(d), -1) ** 2).mean(axis=1)
    with np.errstate(divide="ignore"):
        db = 10.0 * np.log10(4.0 / mse)
    return np.minimum(db, PSNR_CAP)


def psnr(a: np.ndarray, b: np.ndarray) -> float:
    """The project's PSNR of two [-1, 1] batches (N, ...): the mean of ``psnr_per_image``."""
    return float(np.mean(psnr_per_image(a, b)))


def ssim_per_image(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """SSIM of each image of two [-1, 1] NCHW batches: scikit-image, data range 2, colour channels
    as ``channel_axis``, 7x7 window (smaller and odd for images under 7 pixels)."""
    from skimage.metrics import structural_similarity

    a, b = np.asarray(a, dtype=np.float64), np.asarray(b, dtype=np.float64)
    win = min(7, a.shape[-2], a.shape[-1])
    win -= 1 - win % 2
    return np.array([structural_similarity(x, y, data_range=2.0, channel_axis=0, win_size=win)
                     for x, y in zip(a, b)], dtype=np.float64)


def ssim(a: np.ndarray, b: np.ndarray) -> float:
    """Mean of ``ssim_per_image``."""
    return float(np.mean(ssim_per_image(a, b)))


# ----- files -------------------------------------------------------------------------------------
def sha256_file(path: str | os.PathLike[str], chunk: int = 1 << 20) -> str:
    """Hex sha256 of a file, read in ``chunk``-byte blocks."""
    h = hashlib.sha256()
    with open(path, "rb") as f:
        while block := f.read(chunk):
            h.update(block)
    return h.hexdigest()


@contextmanager
def atomic_path(path: str | os.PathLike[str]) -> Iterator[Path]:
    """Yield a fresh temporary path in ``path``'s folder; when the block ends without an error it is
    renamed onto ``path`` (``os.replace``), else removed. Readers never see a partial file.

    The folder is created if missing; the file ends up mode 0644 (mkstemp's files start as 0600).
    """
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, name = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    os.close(fd)
    tmp = Path(name)
    try:
        yield tmp
        os.chmod(tmp, 0o644)
        os.replace(tmp, path)
    finally:
        tmp.unlink(missing_ok=True)


def write_bytes_atomic(path: str | os.PathLike[str], data: bytes) -> None:
    """Replace ``path`` with ``data`` atomically."""
    with atomic_path(path) as tmp:
        tmp.write_bytes(data)


def write_text_atomic(path: str | os.PathLike[str], text: str) -> None:
    """Replace ``path`` with UTF-8 ``text`` atomically."""
    write_bytes_atomic(path, text.encode("utf-8"))


def write_json_atomic(path: str | os.PathLike[str], obj: Any, *, allow_nan: bool = True,
                      ensure_ascii: bool = True) -> None:
    """Replace ``path`` with ``obj`` as indented JSON plus a newline; serialised before the file is
    touched, so an unserialisable ``obj`` leaves the old file (or none) in place."""
    text = json.dumps(obj, indent=2, allow_nan=allow_nan, ensure_ascii=ensure_ascii) + "\n"
    write_text_atomic(path, text)


# ----- RUN_DIR/val_views.npz ------------------------------------------------------------------------
#: gs-compress's validation views and the teacher's outputs on them (docs/CONTRACTS.md, RUN_DIR).
VAL_VIEWS_FILE = "val_views.npz"


def write_val_views(path: str | os.PathLike[str], inputs: np.ndarray, teacher: np.ndarray) -> None:
    """Write the val inputs and the teacher's outputs (float32 NCHW in [-1, 1]) as an .npz, atomically."""
    with atomic_path(path) as tmp, open(tmp, "wb") as f:
        np.savez_compressed(f, inputs=np.asarray(inputs, np.float32), teacher=np.asarray(teacher, np.float32))


def read_val_views(path: str | os.PathLike[str]) -> tuple[np.ndarray, np.ndarray]:
    """(inputs, teacher) of a ``val_views.npz``; plain arrays only (no pickles). ValueError when the
    file lacks either array or their shapes differ."""
    with np.load(path, allow_pickle=False) as z:
        if "inputs" not in z or "teacher" not in z:
            raise ValueError(f"{path} lacks the 'inputs' / 'teacher' arrays")
        inputs, teacher = z["inputs"], z["teacher"]
    if inputs.ndim != 4 or inputs.shape != teacher.shape:
        raise ValueError(f"{path}: inputs {inputs.shape} and teacher {teacher.shape} are not matching NCHW batches")
    return inputs.astype(np.float32), teacher.astype(np.float32)
