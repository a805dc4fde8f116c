"""Photos for distillation: the embedded default set, user folders, training crops and val batches.

Images live in memory as HxWx3 uint8 RGB numpy arrays. Model tensors follow docs/CONTRACTS.md:
float32 CHW RGB in [-1, 1], `x = pixel / 127.5 - 1`.
"""
from __future__ import annotations

import logging
import warnings
from dataclasses import dataclass
from pathlib import Path
from typing import Iterable, Sequence

import numpy as np
import torch
from PIL import Image, ImageOps

from compress import photos_debian, photos_pip
from compress.cache import cache_dir as _cache_dir
from compress.photo_types import DataError, DataWarning, PhotoEntry, PhotoSet, SourcePhoto
from gs_contract import pixels_to_real, real_to_pixels, sha256_file

log = logging.getLogger(__name__)

IMAGE_SUFFIXES = (".jpg", ".jpeg", ".png", ".bmp", ".webp", ".tif", ".tiff")
MIN_SHORT_SIDE = 64          # smaller images are skipped
HUGE_SIDE = 8000             # longer sides are downscaled to this, with a warning
MAX_DECODE_PIXELS = 400_000_000  # larger images are never decoded (decompression-bomb guard)
DEFAULT_MAX_SHORT_SIDE = 1024    # kept in memory at most this short side (quietly)
VAL_FRACTION = 0.25

# ----------------------------------------------------------------------------- decoding


def _warn(message: str) -> None:
    warnings.warn(message, DataWarning, stacklevel=3)


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


# ----------------------------------------------------------------------------- building sets


def assign_split(entries: Sequence[PhotoEntry], val_fraction: float = VAL_FRACTION) -> None:
    """Fixed split: sort by sha256, the first round(n * val_fraction) (at least 1) are val."""
    if len(entries) == 1:
        entries[0].split = "train+val"
        return
    order = sorted(range(len(entries)), key=lambda i: (entries[i].sha256, entries[i].name))
    n_val = min(len(entries) - 1, max(1, round(len(entries) * val_fraction)))
    for rank, i in enumerate(order):
        entries[i].split = "val" if rank < n_val else "train"


def _decode_sources(sources: Iterable[SourcePhoto], max_short_side: int | None) -> PhotoSet:
    """Decode each source photo, dropping duplicates (same sha256) and unusable files with a warning."""
    images, entries, skipped, seen = [], [], [], set()
    for src in sources:
        try:
            digest = sha256_file(src.path)
            if digest in seen:
                _warn(f"skipping {src.path}: same file content as an earlier photo")
                continue
            arr, (w, h), notes = decode_photo(src.path, max_short_side)
        except Exception as exc:  # noqa: BLE001 - any unreadable file is skipped, never fatal
            reason = f"{type(exc).__name__}: {exc}".splitlines()[0]
            _warn(f"skipping {src.path}: {reason}")
            skipped.append({"path": str(src.path), "reason": reason})
            continue
        for note in notes:
            _warn(f"{src.path}: {note}")
        seen.add(digest)
        images.append(arr)
        entries.append(PhotoEntry(src.name, src.source, src.licence, digest, w, h,
                                  licence_note=src.licence_note, conversions=notes))
    return PhotoSet(images, entries, skipped)


def _unique_names(paths: Sequence[Path], root: Path) -> list[str]:
    return [p.relative_to(root).with_suffix("").as_posix() for p in paths]


def load_photo_folder(directory: Path, max_short_side: int | None = DEFAULT_MAX_SHORT_SIDE,
                      val_fraction: float = VAL_FRACTION) -> PhotoSet:
    """A user's `--data DIR` (searched recursively); bad images are converted or skipped with a warning."""
    directory = Path(directory).expanduser()
    if not directory.is_dir():
        raise DataError(f"--data {directory}: not a directory")
    paths = sorted(p for p in directory.rglob("*") if p.is_file() and p.suffix.lower() in IMAGE_SUFFIXES)
    if not paths:
        raise DataError(f"--data {directory}: no image files ({', '.join(IMAGE_SUFFIXES)})")
    sources = [SourcePhoto(name, path.resolve(), {"package": "user", "path": str(path.resolve())},
                           "user-supplied")
               for name, path in zip(_unique_names(paths, directory), paths)]
    photos = _decode_sources(sources, max_short_side)
    if not photos.images:
        raise DataError(f"--data {directory}: none of the {len(paths)} image files is usable (see warnings)")
    assign_split(photos.entries, val_fraction)
    return photos


def default_cache_dir() -> Path:
    """The `photos` folder of the gs-mobile cache (compress/cache.py)."""
    return _cache_dir("photos")


def build_default_photos(cache_dir: Path | None = None, *, include_debian: bool = True,
                         max_short_side: int | None = DEFAULT_MAX_SHORT_SIDE,
                         val_fraction: float = VAL_FRACTION) -> PhotoSet:
    """The embedded default set: photos from scikit-image, scikit-learn, matplotlib and (if apt works)
    the Debian packages mate-backgrounds and plasma-workspace-wallpapers, with a fixed split."""
    sources = list(photos_pip.pip_photos())
    if include_debian:
        sources += photos_debian.debian_photos(Path(cache_dir) if cache_dir else default_cache_dir())
    photos = _decode_sources(sources, max_short_side)
    if not photos.images:
        raise DataError("no default photos found: is scikit-image installed?")
    assign_split(photos.entries, val_fraction)
    log.info("default photos: %d train, %d val", len(photos.indices("train")), len(photos.indices("val")))
    return photos


# ----------------------------------------------------------------------------- tensors


def to_tensor(image: np.ndarray) -> torch.Tensor:
    """uint8 HxWx3 -> float32 3xHxW in [-1, 1] (the contract's pixel mapping)."""
    real = pixels_to_real(np.asarray(image, dtype=np.uint8)).astype(np.float32)
    return torch.from_numpy(real).permute(2, 0, 1).contiguous()


@dataclass(frozen=True)
class CropParams:
    """A square window (in source pixels) resized to the crop size, optionally mirrored."""

    left: float
    top: float
    side: float
    flip: bool


def crop_params(rng: np.random.Generator, width: int, height: int, crop: int,
                scale_range: tuple[float, float]) -> CropParams:
    """Resize the short side to crop * U(scale_range), take a random crop x crop window, flip half."""
    target_short = crop * rng.uniform(*scale_range)
    side = crop * min(width, height) / target_short          # window side in source pixels
    left = rng.uniform(0.0, max(0.0, width - side))
    top = rng.uniform(0.0, max(0.0, height - side))
    return CropParams(left, top, side, bool(rng.random() < 0.5))


def apply_crop(image: np.ndarray, p: CropParams, crop: int) -> np.ndarray:
    """Cut `p`'s window and resize it to crop x crop (antialiased), uint8 HxWx3."""
    box = (p.left, p.top, p.left + p.side, p.top + p.side)
    out = Image.fromarray(image).resize((crop, crop), Image.Resampling.BILINEAR, box=box, reducing_gap=2.0)
    arr = np.asarray(out)
    return arr[:, ::-1] if p.flip else arr


class CropDataset(torch.utils.data.Dataset):
    """Random training crops, reproducible from (seed, index) alone.

    Item `index` is image `index % n_images`; its crop, scale jitter and flip come from
    `np.random.default_rng([seed, 0, index])`, so a resumed run sees exactly the same samples.
    """

    def __init__(self, images: Sequence[np.ndarray], crop: int = 256, seed: int = 0,
                 scale_range: tuple[float, float] = (1.0, 1.5), length: int | None = None):
        if not images:
            raise DataError("no training photos")
        if not 1.0 <= scale_range[0] <= scale_range[1]:
            raise ValueError(f"scale_range must satisfy 1 <= low <= high, got {scale_range}")
        self.images = list(images)
        self.crop, self.seed, self.scale_range = crop, seed, scale_range
        self.length = length or len(self.images)

    def __len__(self) -> int:
        return self.length

    def params(self, index: int) -> CropParams:
        image = self.images[index % len(self.images)]
        rng = np.random.default_rng([self.seed, 0, index])  # part of the view recipe: changing it moves every crop
        return crop_params(rng, image.shape[1], image.shape[0], self.crop, self.scale_range)

    def __getitem__(self, index: int) -> torch.Tensor:
        if not 0 <= index < self.length:
            raise IndexError(index)
        image = self.images[index % len(self.images)]
        return to_tensor(apply_crop(image, self.params(index), self.crop))


def center_crop(image: np.ndarray, size: int) -> np.ndarray:
    """Largest centred square, resized to size x size (uint8 HxWx3)."""
    h, w = image.shape[:2]
    side = min(h, w)
    p = CropParams((w - side) / 2, (h - side) / 2, side, False)
    return apply_crop(image, p, size)


def val_batch(images: Sequence[np.ndarray], size: int = 256) -> torch.Tensor:
    """Fixed centre crops of every image as one [N, 3, size, size] tensor in [-1, 1]."""
    if not images:
        raise DataError("no validation photos")
    return torch.stack([to_tensor(center_crop(img, size)) for img in images])


def colour_jitter(x: torch.Tensor, gen: torch.Generator) -> torch.Tensor:
    """A random photographic colour change of a [3, H, W] image in [-1, 1] (kept on the uint8 grid).

    Channel gains 0.75-1.25, saturation 0.5-1.5, contrast 0.7-1.3, brightness +-0.15, gamma 0.75-1.33:
    the teacher labels these too, so the colour head learns from many more colour statistics than the
    photos have.
    """
    def uniform(lo: float, hi: float, shape: tuple[int, ...] = (1,)) -> torch.Tensor:
        return lo + (hi - lo) * torch.rand(shape, generator=gen)

    p = (x + 1) / 2 * uniform(0.75, 1.25, (3, 1, 1))
    grey = p.mean(0, keepdim=True)
    p = grey + uniform(0.5, 1.5) * (p - grey)
    mean = p.mean()
    p = mean + uniform(0.7, 1.3) * (p - mean) + uniform(-0.15, 0.15)
    p = p.clamp(0, 1) ** uniform(0.75, 1.33)
    pixels = real_to_pixels((p * 2 - 1).numpy())  # back on the 8-bit grid, as a photo would be
    return torch.from_numpy(pixels_to_real(pixels).astype(np.float32))


def jittered_views(images: Sequence[np.ndarray], n: int, size: int, seed: int, fraction: float = 0.7) -> torch.Tensor:
    """`n` random size x size crops (0.33-1x of the short side), a `fraction` of them colour-jittered."""
    crops = CropDataset(images, crop=size, seed=seed + 1, scale_range=(1.0, 3.0), length=n)
    gen = torch.Generator().manual_seed(seed)
    out = []
    for i in range(n):
        x = crops[i]
        out.append(colour_jitter(x, gen) if torch.rand(1, generator=gen).item() < fraction else x)
    return torch.stack(out) if out else torch.zeros(0, 3, size, size)
