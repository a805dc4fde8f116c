"""Quality of a student against its teacher: PSNR / SSIM on val photos, and a sample grid PNG."""
from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np
import torch
from torch import nn

import gs_contract

from .quant import set_quantisation

if TYPE_CHECKING:
    from matplotlib.figure import Figure


def _np(t: torch.Tensor) -> np.ndarray:
    return t.detach().float().cpu().numpy()


def psnr(a: torch.Tensor, b: torch.Tensor) -> list[float]:
    """Per-image PSNR (dB) of [-1, 1] NCHW batches: ``gs_contract.psnr_per_image``."""
    return gs_contract.psnr_per_image(_np(a), _np(b)).tolist()


def ssim(a: torch.Tensor, b: torch.Tensor) -> list[float]:
    """Per-image SSIM of [-1, 1] NCHW batches: ``gs_contract.ssim_per_image``."""
    return gs_contract.ssim_per_image(_np(a), _np(b)).tolist()


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
    """[-1, 1] CHW tensor -> HWC uint8 (``gs_contract.real_to_pixels``)."""
    return gs_contract.real_to_pixels(_np(img)).transpose(1, 2, 0)


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
    """Write a matplotlib figure as a PNG atomically (``gs_contract.atomic_path``); the figure is
    closed either way."""
    import matplotlib.pyplot as plt

    path = Path(path)
    try:
        with gs_contract.atomic_path(path) as tmp:
            fig.savefig(tmp, dpi=dpi, format="png")
    finally:
        plt.close(fig)
    return path
