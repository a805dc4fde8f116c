"""Where the student's quality ceiling comes from: reference scores on the val photos.

    python -m compress.diagnostics [--size 256] [--json out.json]

Prints PSNR vs the teacher (val photos, eval size) of
  * identity: the input itself;
  * oracle per-image colour map: the least-squares 3x4 affine colour transform from each input to its
    teacher output, fitted per image (needs the teacher output, so not a model; it shows how much of
    the effect is an image-dependent colour grade);
  * fixed-norm student at init: the teacher's weights with every InstanceNorm replaced by the
    student's fixed normalisation calibrated on the train photos (unpruned, untrained, fp32).
A student with a fixed (foldable) normalisation starts at the third number; the teacher's per-image
InstanceNorm is what makes the second one reachable.
"""
from __future__ import annotations

import argparse
import json
from pathlib import Path

import numpy as np
import torch

from .data import build_default_photos, val_batch
from .evaluate import psnr, run_batched
from .quant import set_quantisation
from .student import student_from_teacher
from .teachers import load_teacher


def oracle_colour_map(inputs: torch.Tensor, targets: torch.Tensor) -> torch.Tensor:
    """Per image, the least-squares affine RGB map input -> target applied to the input."""
    out = []
    for x, y in zip(inputs, targets):
        design = torch.cat([x.reshape(3, -1), torch.ones(1, x[0].numel())]).T.double()
        coef = torch.linalg.lstsq(design, y.reshape(3, -1).T.double()).solution
        out.append((design @ coef).T.reshape(x.shape).clamp(-1, 1).float())
    return torch.stack(out)


def reference_scores(size: int = 256) -> dict[str, float]:
    """Mean PSNR (dB) vs the teacher of the three references on the default val photos."""
    teacher = load_teacher("default").model.eval()
    photos = build_default_photos()
    train, val = val_batch(photos.subset("train"), size), val_batch(photos.subset("val"), size)
    target = run_batched(teacher, val)
    with torch.no_grad():
        student = student_from_teacher(teacher, train).eval()
    set_quantisation(student, False)
    scores = {"identity": psnr(val, target), "oracle_per_image_colour_map": psnr(oracle_colour_map(val, target), target),
              "fixed_norm_student_at_init": psnr(run_batched(student, val), target)}
    return {name: round(float(np.mean(v)), 2) for name, v in scores.items()}


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(prog="python -m compress.diagnostics", description=__doc__.split("\n\n")[0])
    p.add_argument("--size", type=int, default=256, help="val photos are centre-cropped to SIZE x SIZE")
    p.add_argument("--json", type=Path, help="also write the scores here")
    a = p.parse_args(argv)
    torch.set_num_threads(2)
    scores = reference_scores(a.size)
    for name, value in scores.items():
        print(f"{name:32s} {value:6.2f} dB")
    if a.json:
        a.json.write_text(json.dumps(scores, indent=2))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
