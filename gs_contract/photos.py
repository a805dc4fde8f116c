"""Reading photo files, shared by gs-compress (training photos), gs-export and gs-bench (``--images``).

Any PIL mode becomes 8-bit RGB (alpha composited on white, high bit depths scaled, EXIF orientation
applied); files too small, too large to decode safely or unreadable are skipped with one warning
each. Pillow is needed here; the rest of ``gs_contract`` stays numpy-only.
"""
from __future__ import annotations

import sys
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass
from pathlib import Path

import numpy as np
from PIL import Image, ImageOps

from . import sha256_file

IMAGE_SUFFIXES = (".jpg", ".jpeg", ".png", ".bmp", ".webp", ".tif", ".tiff")
MIN_SHORT_SIDE = 64          # smaller images are skipped
HUGE_SIDE = 8000             # longer sides are downscaled to this, with a warning
MAX_DECODE_PIXELS = 400_000_000  # larger images are never decoded (decompression-bomb guard)
DEFAULT_MAX_SHORT_SIDE = 1024    # kept in memory at most this short side (quietly)


def _open_image(path: Path) -> Image.Image:
    """Open lazily with our own pixel-count guard instead of PIL's DecompressionBomb error."""
    old = Image.MAX_IMAGE_PIXELS
    Image.MAX_IMAGE_PIXELS = None
    try:
        img = Image.open(path)
    finally:
        Image.MAX_IMAGE_PIXELS = old
    w, h = img.size
    if w * h > MAX_DECODE_PIXELS:
        img.close()
        raise ValueError(f"{w}x{h} pixels is too large to decode safely (limit {MAX_DECODE_PIXELS})")
    return img


def _reduce_on_load(img: Image.Image, max_short_side: int | None) -> None:
    """Let JPEG decode at a reduced scale (fast) when we will downscale anyway."""
    w, h = img.size
    limit = min(max_short_side or 10**9, HUGE_SIDE * min(w, h) // max(w, h))
    if img.format == "JPEG" and min(w, h) > 2 * limit:
        scale = limit / min(w, h)
        img.draft("RGB", (max(1, int(w * scale)), max(1, int(h * scale))))


def _high_depth_to_uint8(img: Image.Image) -> np.ndarray:
    """16/32-bit integer or float single-channel image -> uint8 grey."""
    arr = np.asarray(img)
    if arr.dtype.kind == "f":
        lo, hi = (0.0, 1.0) if float(np.nanmax(arr)) <= 1.0 else (0.0, 255.0)
        arr = (np.nan_to_num(arr) - lo) / (hi - lo) * 255.0
    elif arr.dtype == np.uint16 or int(arr.max(initial=0)) > 255:
        arr = arr.astype(np.float64) / 257.0      # 0..65535 -> 0..255
    return np.clip(np.rint(arr), 0, 255).astype(np.uint8)


def _flatten_alpha(img: Image.Image) -> Image.Image:
    """Composite a transparent image onto white."""
    rgba = img.convert("RGBA")
    background = Image.new("RGBA", rgba.size, (255, 255, 255, 255))
    return Image.alpha_composite(background, rgba).convert("RGB")


def to_rgb(img: Image.Image) -> tuple[Image.Image, list[str]]:
    """Convert any PIL mode to 8-bit RGB; returns the image and the conversions applied."""
    mode = img.mode
    if mode == "RGB":
        return img, []
    if mode in ("I", "I;16", "I;16B", "I;16L", "I;16N", "F"):
        grey = _high_depth_to_uint8(img)
        return Image.fromarray(grey, "L").convert("RGB"), [f"{mode} high bit depth scaled to 8-bit grey->RGB"]
    if mode in ("RGBA", "LA", "PA", "RGBa", "La") or (mode == "P" and "transparency" in img.info):
        return _flatten_alpha(img), [f"{mode} with alpha composited on white"]
    if mode in ("L", "1"):
        return img.convert("RGB"), [f"grayscale ({mode}) converted to RGB"]
    return img.convert("RGB"), [f"{mode} converted to RGB"]


def _resize_to(img: Image.Image, scale: float) -> Image.Image:
    w, h = img.size
    size = (max(1, round(w * scale)), max(1, round(h * scale)))
    return img.resize(size, Image.Resampling.LANCZOS, reducing_gap=3.0)


def _limit_size(img: Image.Image, original: tuple[int, int], max_short_side: int | None
                ) -> tuple[Image.Image, list[str]]:
    """Downscale huge images (noted) and to `max_short_side` (a quiet working size)."""
    notes = []
    if max(original) > HUGE_SIDE:
        notes.append(f"huge ({original[0]}x{original[1]}) downscaled to at most {HUGE_SIDE} px")
    scale = min(1.0, HUGE_SIDE / max(img.size), (max_short_side or 10**9) / min(img.size))
    return (_resize_to(img, scale) if scale < 1.0 else img), notes


def decode_photo(path: Path, max_short_side: int | None = DEFAULT_MAX_SHORT_SIDE
                 ) -> tuple[np.ndarray, tuple[int, int], list[str]]:
    """Read one file -> (uint8 HxWx3 RGB, original (width, height), conversions).

    Raises ValueError (or an OSError from PIL) when the image cannot be used.
    """
    with _open_image(path) as img:
        original = img.size
        if min(original) < MIN_SHORT_SIDE:
            raise ValueError(f"too small ({original[0]}x{original[1]}, short side < {MIN_SHORT_SIDE} px)")
        _reduce_on_load(img, max_short_side)
        img.load()
        img = ImageOps.exif_transpose(img) or img
        rgb, notes = to_rgb(img)
        rgb, size_notes = _limit_size(rgb, original, max_short_side)
        arr = np.array(rgb, dtype=np.uint8)
    return arr, original, notes + size_notes


@dataclass(frozen=True)
class DecodedPhoto:
    """One usable file: its position in the input, RGB pixels, original (width, height), conversions."""

    index: int
    image: np.ndarray
    size: tuple[int, int]
    conversions: list[str]
    sha256: str


def decode_files(paths: Iterable[Path], max_short_side: int | None, warn: Callable[[str], None],
                 on_skip: Callable[[Path, str], None] | None = None) -> Iterator[DecodedPhoto]:
    """Decode each file, dropping duplicates (same sha256) and unusable files; every skip and
    conversion is one ``warn`` line, and unusable files are also reported to ``on_skip``."""
    seen: set[str] = set()
    for index, path in enumerate(paths):
        try:
            digest = sha256_file(path)
            if digest in seen:
                warn(f"skipping {path}: same file content as an earlier photo")
                continue
            arr, size, notes = decode_photo(path, max_short_side)
        except Exception as exc:  # noqa: BLE001 - any unreadable file is skipped, never fatal
            reason = f"{type(exc).__name__}: {exc}".splitlines()[0]
            warn(f"skipping {path}: {reason}")
            if on_skip is not None:
                on_skip(path, reason)
            continue
        for note in notes:
            warn(f"{path}: {note}")
        seen.add(digest)
        yield DecodedPhoto(index, arr, size, notes, digest)


def read_image_folder(directory: Path, limit: int, prog: str,
                      min_hw: tuple[int, int] | None = None) -> list[tuple[str, np.ndarray]]:
    """The first `limit` usable images of a folder (sorted names, not recursive) as (name, uint8 HxWx3 RGB).

    Images smaller than `min_hw` (height, width) are skipped too. Each skipped file is one
    ``{prog}: warning:`` line on stderr; ValueError (one line) when the folder holds no usable image.
    """
    directory = Path(directory)
    if not directory.is_dir():
        raise ValueError(f"--images {directory} is not a folder")
    files = sorted(p for p in directory.iterdir() if p.is_file() and p.suffix.lower() in IMAGE_SUFFIXES)
    if not files:
        raise ValueError(f"--images {directory} holds no image files ({', '.join(IMAGE_SUFFIXES)})")

    def warn(message: str) -> None:
        print(f"{prog}: warning: {message}", file=sys.stderr)

    good: list[tuple[str, np.ndarray]] = []
    start = 0
    while len(good) < limit and start < len(files):  # decode only as many files as needed
        batch = files[start:start + limit - len(good)]
        start += len(batch)
        for photo in decode_files(batch, None, warn):
            w, h = photo.size
            if min_hw is not None and (h < min_hw[0] or w < min_hw[1]):
                warn(f"skipping {batch[photo.index]}: {w}x{h} is smaller than the model's "
                     f"{min_hw[1]}x{min_hw[0]} input (use photos at least that large)")
                continue
            good.append((batch[photo.index].name, photo.image))
    if not good:
        raise ValueError(f"--images {directory}: none of its {len(files)} image files is usable "
                         f"(see the warnings above); add readable photos")
    return good
