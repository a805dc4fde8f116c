"""Quality of a student against its teacher: PSNR / SSIM on val photos, and a sample grid PNG."""
from __future__ import annotations

from pathlib import Path

import numpy as np
import torch
from torch import nn

import gs_contract
from gs_contract import figures

from .quant import set_quantisation


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


def save_grid(path: Path, columns: dict[str, torch.Tensor], max_rows: int = 6, notes: list[str] | None = None) -> Path:
    """A PNG grid, one row per image, one titled column per entry of `columns` (``gs_contract.figures.save_grid``)."""
    return figures.save_grid(path, {k: _np(v) for k, v in columns.items()}, max_rows=max_rows, notes=notes)
