"""Fake quantisation with the arithmetic mobile runtimes execute (TFLite / ONNX QDQ int8).

- Weights: per-output-channel symmetric int8, q in [-127, 127], scale = max|w| / 127
  (TFLite's per-channel conv weights; ONNX QuantizeLinear with axis=0 and zero point 0).
- Activations: per-tensor affine int8, q in [-128, 127], range tracked by an exponential moving
  average during training and frozen for evaluation/export; the range always contains 0 and the
  zero point is an integer (TFLite's "nudged" min/max), so export reproduces it exactly.
- Fixed grids: the network input (scale 2/255, zero point 0) and the tanh output (scale 1/128,
  zero point 0, TFLite's required int8 tanh output grid).
Both use torch's fake_quantize ops, whose backward is the straight-through estimator.
"""
from __future__ import annotations

import torch
from torch import nn

QMIN, QMAX = -128, 127
WQMAX = 127
INPUT_SCALE = 2.0 / 255.0
TANH_SCALE = 1.0 / 128.0


def weight_scales(w: torch.Tensor) -> torch.Tensor:
    """Per-output-channel symmetric scale (axis 0); a tiny floor keeps all-zero channels valid."""
    return (w.detach().abs().flatten(1).amax(dim=1) / WQMAX).clamp_min(1e-12)


def fake_quant_weight(w: torch.Tensor) -> torch.Tensor:
    """Per-channel symmetric int8 fake quantisation of a conv weight [out, in, kh, kw] (STE)."""
    scale = weight_scales(w).float()
    zero = torch.zeros(w.shape[0], dtype=torch.int32, device=w.device)
    return torch.fake_quantize_per_channel_affine(w, scale, zero, 0, -WQMAX, WQMAX)


def affine_qparams(lo: float, hi: float) -> tuple[float, int]:
    """(scale, zero_point) of the int8 grid covering [lo, hi] (widened to include 0)."""
    lo, hi = min(lo, 0.0), max(hi, 0.0)
    scale = max((hi - lo) / (QMAX - QMIN), 1e-8)
    zero_point = int(round(QMIN - lo / scale))
    return scale, max(QMIN, min(QMAX, zero_point))


class ActQuant(nn.Module):
    """Per-tensor affine int8 fake quantiser with an EMA range (or a fixed grid)."""

    def __init__(self, momentum: float = 0.01, fixed: tuple[float, int] | None = None) -> None:
        super().__init__()
        self.momentum = momentum
        self.register_buffer("lo", torch.tensor(0.0))
        self.register_buffer("hi", torch.tensor(0.0))
        self.register_buffer("initialised", torch.tensor(False))
        self.register_buffer("fixed_scale", torch.tensor(fixed[0] if fixed else 0.0))
        self.register_buffer("fixed_zero_point", torch.tensor(fixed[1] if fixed else 0))
        self.enabled = True  # quantise in forward (False: fp32 student, ranges still observed)
        self.observing = True  # update the EMA range in training mode
        # < 1: the grid covers this fraction of the observed min/max (finer steps for the bulk of a
        # heavy-tailed tensor; the outliers saturate)
        self.range_fraction = 1.0

    @property
    def is_fixed(self) -> bool:
        return float(self.fixed_scale) > 0

    def qparams(self) -> tuple[float, int]:
        """The (scale, zero_point) this quantiser applies now; what the exporter writes."""
        if self.is_fixed:
            return float(self.fixed_scale), int(self.fixed_zero_point)
        return affine_qparams(float(self.lo), float(self.hi))

    @torch.no_grad()
    def observe(self, x: torch.Tensor) -> None:
        lo, hi = x.min().float() * self.range_fraction, x.max().float() * self.range_fraction
        if not bool(self.initialised):
            self.lo.copy_(lo)
            self.hi.copy_(hi)
            self.initialised.fill_(True)
        else:
            self.lo.lerp_(lo, self.momentum)
            self.hi.lerp_(hi, self.momentum)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if not self.is_fixed and self.training and self.observing:
            self.observe(x)
        if not self.enabled or not (self.is_fixed or bool(self.initialised)):
            return x
        scale, zp = self.qparams()
        return torch.fake_quantize_per_tensor_affine(x, scale, zp, QMIN, QMAX)

    def extra_repr(self) -> str:
        scale, zp = self.qparams() if (self.is_fixed or bool(self.initialised)) else (0.0, 0)
        return f"scale={scale:.5g}, zero_point={zp}, fixed={self.is_fixed}"


def set_quantisation(model: nn.Module, enabled: bool) -> None:
    """Switch every fake quantiser (weights and activations) of `model` on or off."""
    for m in model.modules():
        if hasattr(m, "quantise"):
            m.quantise = enabled
        if isinstance(m, ActQuant):
            m.enabled = enabled


def freeze_ranges(model: nn.Module, frozen: bool = True) -> None:
    """Stop (or restart) EMA range updates, e.g. for the last steps of training."""
    for m in model.modules():
        if isinstance(m, ActQuant):
            m.observing = not frozen
