"""Quality of a student against its teacher: PSNR / SSIM on val photos, and a sample grid PNG."""
from __future__ import annotations

import os
import tempfile
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np
import torch
from torch import nn

from .quant import set_quantisation

if TYPE_CHECKING:
    from matplotlib.figure import Figure


def psnr(a: torch.Tensor, b: torch.Tensor) -> list[float]:
    """Per-image PSNR (dB) of [-1, 1] images (peak-to-peak range 2)."""
    mse = ((a.float() - b.float()) ** 2).flatten(1).mean(1).clamp_min(1e-12)
    return (10 * torch.log10(4.0 / mse)).tolist()


def ssim(a: torch.Tensor, b: torch.Tensor) -> list[float]:
    """Per-image SSIM (scikit-image, RGB, data range 2)."""
    from skimage.metrics import structural_similarity

    return [float(structural_similarity(x.permute(1, 2, 0).numpy(), y.permute(1, 2, 0).numpy(),
                                        channel_axis=2, data_range=2.0))
            for x, y in zip(a.float().cpu(), b.float().cpu())]


@torch.no_grad()
def run_batched(model: nn.Module, images: torch.Tensor, batch: int = 4) -> torch.Tensor:
    return torch.cat([model(images[i:i + batch]) for i in range(0, len(images), batch)])


def summary(pred: torch.Tensor, target: torch.Tensor) -> dict:
    p, s = psnr(pred, target), ssim(pred, target)
    return {"psnr": float(np.mean(p)), "psnr_min": float(np.min(p)), "ssim": float(np.mean(s)),
            "psnr_per_image": [round(v, 3) for v in p]}


@torch.no_grad()
def evaluate_student(student: nn.Module, images: torch.Tensor, teacher_out: torch.Tensor) -> dict:
    """PSNR/SSIM vs teacher for the fp32 student, the fake-quant student and the input (identity)."""
    was_training = student.training
    student.eval()
    try:
        set_quantisation(student, False)
        fp32 = run_batched(student, images)
        set_quantisation(student, True)
        fq = run_batched(student, images)
    finally:
        student.train(was_training)
    return {"fp32": summary(fp32, teacher_out), "fakequant": summary(fq, teacher_out),
            "identity_baseline": summary(images, teacher_out), "_fakequant_images": fq}


def to_uint8(img: torch.Tensor) -> np.ndarray:
    """[-1, 1] CHW tensor -> HWC uint8 (the project's pixel convention)."""
    return ((img.float().clamp(-1, 1) + 1) * 127.5).round().byte().permute(1, 2, 0).numpy()


def save_grid(path: Path, columns: dict[str, torch.Tensor], max_rows: int = 6, notes: list[str] | None = None) -> Path:
    """A PNG grid, one row per image, one titled column per entry of `columns` (e.g. input|teacher|student)."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    names = list(columns)
    rows = min(max_rows, len(next(iter(columns.values()))))
    fig, axes = plt.subplots(rows, len(names), figsize=(2.6 * len(names), 2.6 * rows), squeeze=False)
    for r in range(rows):
        for c, name in enumerate(names):
            ax = axes[r][c]
            ax.imshow(to_uint8(columns[name][r]))
            ax.set_xticks([])
            ax.set_yticks([])
            if r == 0:
                ax.set_title(name, fontsize=10)
            if c == len(names) - 1 and notes:
                ax.set_xlabel(notes[r], fontsize=8)
    fig.tight_layout()
    return save_figure(fig, path)


def save_figure(fig: Figure, path: Path, dpi: int = 90) -> Path:
    """Write a matplotlib figure as a PNG through a unique temporary name in the same folder, then
    rename it into place (world-readable like any other output); the figure is closed either way."""
    import matplotlib.pyplot as plt

    path = Path(path)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.stem}.", suffix=".png", dir=path.parent)
    os.close(fd)
    try:
        fig.savefig(tmp, dpi=dpi)
        os.chmod(tmp, 0o644)  # mkstemp files start as 0600
        os.replace(tmp, path)
    finally:
        plt.close(fig)
        Path(tmp).unlink(missing_ok=True)
    return path
