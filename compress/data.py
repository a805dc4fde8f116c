"""Photos for distillation: the embedded default set, user folders, training crops and val batches.

Images live in memory as HxWx3 uint8 RGB numpy arrays. Model tensors follow docs/CONTRACTS.md:
float32 CHW RGB in [-1, 1], `x = pixel / 127.5 - 1`.
"""
from __future__ import annotations

import logging
import warnings
from dataclasses import dataclass
from pathlib import Path
from typing import Sequence

import numpy as np
import torch
from PIL import Image

from compress import photos_debian, photos_pip
from compress.cache import cache_dir as _cache_dir
from compress.photo_types import DataError, DataWarning, PhotoEntry, PhotoSet, SourcePhoto
from gs_contract import pixels_to_real, real_to_pixels
from gs_contract.photos import DEFAULT_MAX_SHORT_SIDE, IMAGE_SUFFIXES, decode_files

log = logging.getLogger(__name__)

VAL_FRACTION = 0.25

# ----------------------------------------------------------------------------- decoding


def _warn(message: str) -> None:
    warnings.warn(message, DataWarning, stacklevel=3)


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


def _decode_sources(sources: Sequence[SourcePhoto], max_short_side: int | None) -> PhotoSet:
    """Decode each source photo (``gs_contract.photos.decode_files``: duplicates and unusable files
    dropped with a DataWarning)."""
    skipped: list[dict[str, str]] = []
    decoded = list(decode_files([src.path for src in sources], max_short_side, _warn,
                                lambda path, reason: skipped.append({"path": str(path), "reason": reason})))
    entries = [PhotoEntry(sources[d.index].name, sources[d.index].source, sources[d.index].licence, d.sha256,
                          *d.size, licence_note=sources[d.index].licence_note, conversions=d.conversions)
               for d in decoded]
    return PhotoSet([d.image for d in decoded], entries, skipped)


def _unique_names(paths: Sequence[Path], root: Path) -> list[str]:
    return [p.relative_to(root).with_suffix("").as_posix() for p in paths]


def load_photo_folder(directory: Path, max_short_side: int | None = DEFAULT_MAX_SHORT_SIDE,
                      val_fraction: float = VAL_FRACTION, flag: str = "--data") -> PhotoSet:
    """A user's `--data DIR` (searched recursively; `flag` names the option in errors); bad images are
    converted or skipped with a warning."""
    directory = Path(directory).expanduser()
    if not directory.is_dir():
        raise DataError(f"{flag} {directory}: not a directory")
    paths = sorted(p for p in directory.rglob("*") if p.is_file() and p.suffix.lower() in IMAGE_SUFFIXES)
    if not paths:
        raise DataError(f"{flag} {directory}: no image files ({', '.join(IMAGE_SUFFIXES)})")
    sources = [SourcePhoto(name, path.resolve(), {"package": "user", "path": str(path.resolve())},
                           "user-supplied")
               for name, path in zip(_unique_names(paths, directory), paths)]
    photos = _decode_sources(sources, max_short_side)
    if not photos.images:
        raise DataError(f"{flag} {directory}: none of the {len(paths)} image files is usable (see warnings)")
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

    def photo(self, index: int) -> int:
        """Which of `images` item `index` is cut from."""
        return index % len(self.images)

    def params(self, index: int) -> CropParams:
        image = self.images[self.photo(index)]
        rng = np.random.default_rng([self.seed, 0, index])  # part of the view recipe: changing it moves every crop
        return crop_params(rng, image.shape[1], image.shape[0], self.crop, self.scale_range)

    def __getitem__(self, index: int) -> torch.Tensor:
        if not 0 <= index < self.length:
            raise IndexError(index)
        return to_tensor(apply_crop(self.images[self.photo(index)], self.params(index), self.crop))

    def zoom(self, index: int) -> float:
        """How far item `index` is zoomed in: its photo's short side over its window's (1: all of it)."""
        return min(self.images[self.photo(index)].shape[:2]) / self.params(index).side


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


def jitter_crops(images: Sequence[np.ndarray], n: int, size: int, seed: int, zoom: float) -> CropDataset:
    """The crops of `jittered_views`: `n` random size x size windows of 1/zoom to all of the short side."""
    return CropDataset(images, crop=size, seed=seed + 1, scale_range=(1.0, zoom), length=n)


def jittered_views(images: Sequence[np.ndarray], n: int, size: int, seed: int, zoom: float,
                   fraction: float = 0.7) -> torch.Tensor:
    """`n` random size x size crops (`jitter_crops`), a `fraction` of them colour-jittered."""
    crops = jitter_crops(images, n, size, seed, zoom)
    gen = torch.Generator().manual_seed(seed)
    out = []
    for i in range(n):
        x = crops[i]
        out.append(colour_jitter(x, gen) if torch.rand(1, generator=gen).item() < fraction else x)
    return torch.stack(out) if out else torch.zeros(0, 3, size, size)
