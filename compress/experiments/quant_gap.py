"""Where a trained student's INT8 loss comes from: val PSNR with one kind of fake quantiser off at a time.

    python -m compress.experiments.quant_gap RUN_DIR [--no-head]

Reads RUN_DIR/student.pt and RUN_DIR/val_views.npz (written by gs-compress) and prints the PSNR vs the
teacher with every quantiser on, all off (fp32), and with each kind off alone: the pre-norm conv
outputs of a per-image-normalised student, the per-image norm's intermediates, the unit outputs, the
residual adds, the conv weights. `--no-head` evaluates the student without its colour head.
"""
from __future__ import annotations

import argparse
import sys
from pathlib import Path
from typing import Callable

import numpy as np
import torch
from torch import nn

from gs_contract import VAL_VIEWS_FILE, psnr, read_val_views

from ..checkpoint import load_student
from ..image_norm import ImageNorm
from ..quant import ActQuant, set_quantisation
from ..student import StudentGenerator, StudentUnit

KINDS: dict[str, Callable[[str, nn.Module], bool]] = {
    "pre-norm conv outputs": lambda name, m: name.endswith("conv_quant"),
    "per-image norm intermediates": lambda name, m: isinstance(m, ImageNorm) or (".image_norm." in name
                                                                                 and isinstance(m, ActQuant)),
    "unit outputs": lambda name, m: name.endswith(("out_quant", "pre_quant")),
    "residual adds": lambda name, m: "add_quants" in name,
    "conv weights": lambda name, m: isinstance(m, StudentUnit),
}


def val_psnr(student: StudentGenerator, inputs: torch.Tensor, teacher: np.ndarray) -> float:
    with torch.no_grad():
        out = torch.cat([student(inputs[i:i + 2]) for i in range(0, len(inputs), 2)])
    return psnr(out.numpy(), teacher)


def switch_off(student: StudentGenerator, chosen: Callable[[str, nn.Module], bool]) -> None:
    """Turn off the quantisers `chosen` selects (activation quantisers, or a module's weight quantisation)."""
    for name, m in student.named_modules():
        if chosen(name, m):
            if isinstance(m, ActQuant):
                m.enabled = False
            elif hasattr(m, "quantise"):
                m.quantise = False


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(prog="python -m compress.experiments.quant_gap", description=__doc__.split("\n\n")[0])
    p.add_argument("run_dir", type=Path)
    p.add_argument("--no-head", action="store_true", help="evaluate without the colour head")
    a = p.parse_args(argv)
    student, _ = load_student(a.run_dir / "student.pt")
    if a.no_head:
        student.colour = None
    inputs, teacher = read_val_views(a.run_dir / VAL_VIEWS_FILE)
    x = torch.from_numpy(inputs).float()
    rows = [("every quantiser on", val_psnr(student, x, teacher))]
    set_quantisation(student, False)
    rows.append(("every quantiser off (fp32)", val_psnr(student, x, teacher)))
    for kind, chosen in KINDS.items():
        set_quantisation(student, True)
        switch_off(student, chosen)
        rows.append((f"{kind} off", val_psnr(student, x, teacher)))
    for what, db in rows:
        print(f"{what:40s} {db:6.2f} dB")
    return 0


if __name__ == "__main__":
    sys.exit(main())
