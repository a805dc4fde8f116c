"""A tiny CycleGAN teacher, a folder of real photos and the gs-compress arguments that train on them."""
from __future__ import annotations

from pathlib import Path

import torch
from PIL import Image

from tests.tiny import make_tiny_teacher


def make_setup(root: Path) -> Path:
    """teacher.pth / cartoon.pth (tiny generators) and photos/ (scikit-image photos, downsized) in `root`."""
    from skimage import data

    torch.save(make_tiny_teacher("cyclegan").state_dict(), root / "teacher.pth")
    torch.save(make_tiny_teacher("cartoongan").state_dict(), root / "cartoon.pth")
    photos = root / "photos"
    photos.mkdir()
    for name in ("astronaut", "coffee", "chelsea", "rocket"):
        Image.fromarray(getattr(data, name)()).resize((128, 96)).save(photos / f"{name}.png")
    return root


def args(root: Path, out: Path, *extra: str) -> list[str]:
    """gs-compress arguments for a tiny-preset run on the set-up in `root`."""
    return ["--teacher", str(root / "teacher.pth"), "--arch", "cyclegan", "--data", str(root / "photos"),
            "--preset", "tiny", "--out", str(out), "--no-progress", *extra]
