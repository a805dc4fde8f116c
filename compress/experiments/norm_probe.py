"""How far the teacher moves when its InstanceNorms are replaced by cheaper statistics (no training).

    python -m compress.experiments.norm_probe [--size 256] [--threads 2]

Every InstanceNorm of the default teacher is swapped for one variant at a time; PSNR vs the unchanged
teacher on the default val photos. Population statistics are measured on the train photos' centre crops
(same size) through the exact teacher. Variants:
  in               the teacher's own per-image mean and variance (sanity check)
  population       fixed mean and variance (what a foldable norm computes)
  mean_popvar      per-image mean, population variance
  popmean_imgvar   population mean, per-image variance
  mad              per-image mean, scale from the mean absolute deviation (computable with int8 MEAN/SUB/RELU:
                   for a mean-free d, mean(relu(d)) is exactly half of mean |d|), times the channel's population
                   std/MAD ratio
  mad_int8         the same with the centred tensor fake-quantised to int8 (per-tensor range from the train photos)
  int8_rangeF      the exact per-image norm of the population-standardised input (what a `--norm image`
                   student's conv outputs) put on a per-tensor int8 grid covering F x its min/max over the
                   train photos: the INT8 cost of the pre-norm grid, and what a clipped grid
                   (`gs-compress --prenorm-range F`) wins back
"""
from __future__ import annotations

import argparse

import numpy as np
import torch
from torch import nn

from ..data import build_default_photos, val_batch
from ..evaluate import psnr, run_batched
from ..teachers import load_teacher

RANGE_FRACTIONS = (1.0, 0.5, 0.35, 0.25)
VARIANTS = ("in", "population", "mean_popvar", "popmean_imgvar", "mad", "mad_int8",
            *(f"int8_range{f:g}" for f in RANGE_FRACTIONS))


class ProbeNorm(nn.Module):
    """An InstanceNorm2d(affine) stand-in whose statistics come from `variant`."""

    def __init__(self, norm: nn.InstanceNorm2d) -> None:
        super().__init__()
        self.weight, self.bias, self.eps = norm.weight, norm.bias, norm.eps
        self.variant = "in"
        self.seen: list[tuple[torch.Tensor, ...]] = []
        self.recording = False

    def forward(self, y: torch.Tensor) -> torch.Tensor:
        mu, var = y.mean((2, 3), keepdim=True), y.var((2, 3), unbiased=False, keepdim=True)
        d = y - mu
        if self.recording:
            self.seen.append((mu, var, d.abs().mean((2, 3), keepdim=True), d.min(), d.max(),
                              y.amin((2, 3), keepdim=True), y.amax((2, 3), keepdim=True)))
        v = self.variant
        if v == "in":
            z = d / torch.sqrt(var + self.eps)
        elif v == "population":
            z = (y - self.pop_mu) / torch.sqrt(self.pop_var + self.eps)
        elif v == "mean_popvar":
            z = d / torch.sqrt(self.pop_var + self.eps)
        elif v == "popmean_imgvar":
            z = (y - self.pop_mu) / torch.sqrt(var + self.eps)
        elif v.startswith("int8_range"):
            fraction = float(v.removeprefix("int8_range"))
            lo, hi = fraction * self.z_lo, fraction * self.z_hi
            scale = (hi - lo) / 255
            zq = torch.fake_quantize_per_tensor_affine((y - self.pop_mu) / self.pop_sd, scale,
                                                       round(-128 - lo / scale), -128, 127)
            dq = zq - zq.mean((2, 3), keepdim=True)
            z = dq / torch.sqrt(dq.square().mean((2, 3), keepdim=True) + self.eps / self.pop_sd.square())
        else:
            if v == "mad_int8":
                scale = (self.d_hi - self.d_lo) / 255
                d = torch.fake_quantize_per_tensor_affine(d, scale, round(-128 - self.d_lo / scale), -128, 127)
            z = d / (self.std_over_mad * 2 * torch.relu(d).mean((2, 3), keepdim=True) + 1e-5)
        return z * self.weight[None, :, None, None] + self.bias[None, :, None, None]

    def settle(self) -> None:
        """Population statistics from what was recorded."""
        mu, var, mad = (torch.cat([s[i] for s in self.seen]) for i in range(3))
        self.pop_mu = mu.mean(0, keepdim=True)
        self.pop_var = (var + (mu - self.pop_mu) ** 2).mean(0, keepdim=True)
        self.std_over_mad = (var.sqrt() / mad.clamp_min(1e-8)).mean(0, keepdim=True)
        self.d_lo = min(0.0, min(float(s[3]) for s in self.seen))
        self.d_hi = max(0.0, max(float(s[4]) for s in self.seen))
        self.pop_sd = torch.sqrt(self.pop_var + self.eps)
        y_lo = torch.cat([s[5] for s in self.seen]).amin(0, keepdim=True)
        y_hi = torch.cat([s[6] for s in self.seen]).amax(0, keepdim=True)
        self.z_lo = min(0.0, float(((y_lo - self.pop_mu) / self.pop_sd).min()))
        self.z_hi = max(0.0, float(((y_hi - self.pop_mu) / self.pop_sd).max()))
        self.seen = []


def swap_norms(model: nn.Module) -> list[ProbeNorm]:
    """Replace every InstanceNorm2d in `model` by a ProbeNorm (in place)."""
    swapped = []
    for name, child in model.named_children():
        if isinstance(child, nn.InstanceNorm2d):
            probe = ProbeNorm(child)
            setattr(model, name, probe)
            swapped.append(probe)
        else:
            swapped += swap_norms(child)
    return swapped


@torch.no_grad()
def probe(size: int = 256) -> dict[str, dict[str, float]]:
    """Mean and worst PSNR (dB) vs the teacher of each variant, plus the identity, on the val photos."""
    teacher = load_teacher("default").model.eval()
    photos = build_default_photos()
    train, val = val_batch(photos.subset("train"), size), val_batch(photos.subset("val"), size)
    target = run_batched(teacher, val)
    norms = swap_norms(teacher)
    for n in norms:
        n.recording = True
    run_batched(teacher, train)
    for n in norms:
        n.recording = False
        n.settle()
    scores = {"identity": psnr(val, target)}
    for variant in VARIANTS:
        for n in norms:
            n.variant = variant
        scores[variant] = psnr(run_batched(teacher, val), target)
    return {k: {"mean": round(float(np.mean(v)), 2), "min": round(float(np.min(v)), 2)} for k, v in scores.items()}


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(prog="python -m compress.experiments.norm_probe", description=__doc__.split("\n\n")[0])
    p.add_argument("--size", type=int, default=256)
    p.add_argument("--threads", type=int, default=2)
    a = p.parse_args(argv)
    torch.set_num_threads(a.threads)
    for name, s in probe(a.size).items():
        print(f"{name:16s} {s['mean']:7.2f} dB  (worst photo {s['min']:.2f})")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
