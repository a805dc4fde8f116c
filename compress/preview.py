"""The teacher's effect on real photos: a before/after grid PNG (the first thing a user sees)."""
from __future__ import annotations

from pathlib import Path

import torch

from .data import build_default_photos, load_photo_folder, val_batch
from .evaluate import psnr, run_batched, save_grid
from .teachers import load_teacher


def preview(out: Path, teacher: str = "default", arch: str | None = None, data: str = "default",
            size: int = 256, max_photos: int = 6) -> Path:
    """Run the teacher on val photos at `size` and save input | teacher output rows."""
    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    t = load_teacher(teacher, arch)
    photos = build_default_photos() if data == "default" else load_photo_folder(Path(data))
    images = val_batch(photos.subset("val")[:max_photos], size)
    with torch.no_grad():
        styled = run_batched(t.model, images)
    notes = [f"input vs teacher: {p:.1f} dB" for p in psnr(images, styled)]
    return save_grid(out / "teacher_preview.png", {"input": images, f"teacher ({t.source})": styled}, notes=notes)
