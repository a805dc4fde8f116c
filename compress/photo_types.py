"""The photo types shared by the photo sources (photos_pip, photos_debian, user folders) and the
decoder (compress/data.py): a found file, a manifest row, a decoded set, and the errors/warnings.

Kept apart from data.py so that the sources and the decoder both import these without importing
each other.
"""
from __future__ import annotations

from dataclasses import asdict, dataclass, field
from pathlib import Path

import numpy as np

from compress.errors import GsError
from gs_contract import write_json_atomic

MANIFEST_FORMAT = "gs-mobile/photos"


class DataError(GsError, ValueError):
    """No usable photos: shown to the user as one line."""


class DataWarning(UserWarning):
    """An input image was converted or skipped."""


@dataclass(frozen=True)
class SourcePhoto:
    """A photo file found by a source (package, Debian archive, user folder) before decoding."""

    name: str
    path: Path
    source: dict[str, str]   # {"package": "scikit-image==0.26.0", "path": "skimage/data/coffee.png"}
    licence: str
    licence_note: str = ""   # curated context where the package's own text is silent


@dataclass
class PhotoEntry:
    """One manifest row; width/height are those of the original file."""

    name: str
    source: dict[str, str]
    licence: str
    sha256: str
    width: int
    height: int
    split: str = "train"     # "train", "val" or "train+val" (a set of a single photo)
    licence_note: str = ""
    conversions: list[str] = field(default_factory=list)

    def to_dict(self) -> dict:
        return asdict(self)


@dataclass
class PhotoSet:
    """Decoded photos (uint8 HxWx3 RGB) with one manifest entry each."""

    images: list[np.ndarray]
    entries: list[PhotoEntry]
    skipped: list[dict[str, str]] = field(default_factory=list)

    def __len__(self) -> int:
        return len(self.images)

    @property
    def split(self) -> list[str]:
        return [e.split for e in self.entries]

    def indices(self, split: str) -> list[int]:
        """Indices of the photos in `split` ("train" or "val")."""
        return [i for i, e in enumerate(self.entries) if split in e.split.split("+")]

    def subset(self, split: str) -> list[np.ndarray]:
        return [self.images[i] for i in self.indices(split)]

    def manifest(self) -> dict:
        return {
            "format": MANIFEST_FORMAT,
            "version": 1,
            "counts": {s: len(self.indices(s)) for s in ("train", "val")},
            "photos": [e.to_dict() for e in self.entries],
            "skipped": self.skipped,
        }

    def write_manifest(self, path: Path) -> Path:
        path = Path(path)
        write_json_atomic(path, self.manifest(), ensure_ascii=False)
        return path
