"""A tiny CycleGAN teacher, a folder of real photos and the gs-compress arguments that train on them."""
from __future__ import annotations

from pathlib import Path

import pytest
import torch
from PIL import Image

from compress import trainer as trainer_mod

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


def interrupt_at(monkeypatch: pytest.MonkeyPatch, at: int):  # noqa: ANN201 - the original method
    """Make `Trainer.train_step` raise KeyboardInterrupt (a user's Ctrl-C) at step `at`; returns the
    original method, to be put back before resuming."""
    original = trainer_mod.Trainer.train_step

    def interrupted(self, step):  # noqa: ANN001, ANN202 - same signature as the real method
        if step == at:
            raise KeyboardInterrupt
        return original(self, step)

    monkeypatch.setattr(trainer_mod.Trainer, "train_step", interrupted)
    return original
