"""Per-image normalisation that INT8 mobile runtimes execute whole (every op delegated to XNNPACK).

The teacher standardises every conv output by its own per-image statistics (InstanceNorm); a fixed,
folded norm cannot. InstanceNorm itself needs RSQRT, which XNNPACK does not run in int8 (the graph
splits at every norm). This module computes the same standardisation with delegated int8 ops only,
NHWC names in brackets:

    mean = MEAN(z)                 per image and channel
    d    = SUB(z, mean)
    var  = MEAN(MUL(d, d))         on a fixed int8 grid over [0, VAR_MAX]: larger variances saturate
    r    = 1/sqrt(var), piecewise linear: RESHAPE to [1, 1, C, 1], a 1x1 CONV_2D 1 -> K with fused
           RELU6 (ramp k rises from 0 to 6 across knot interval k), a 1x1 CONV_2D K -> 1 (the drop of
           1/sqrt over each interval), RESHAPE back
    n    = MUL(d, r)
    y    = n * s + t               a 1x1 DEPTHWISE_CONV_2D: the GS channel scale s and shift t

Why bounded ramps: 1/sqrt's slope spans three decades over the variances that occur, and a sum of
unbounded ReLU hinges represents it with large terms that cancel, which int8 weights and a
per-tensor hidden grid cannot hold (measured: a trained hinge MLP lost the small slopes to rounding
and diverged). Each ramp is in [0, 6] (one fixed hidden grid for all), and every output weight is
a drop of 1/sqrt between neighbouring knots (all of one sign, within a factor of ~10).
The map is fixed (not trained): the student trains around the function the runtimes compute.

The unit's conv carries the fixed norm's 1/sigma, so var is about 1 for every channel (measured on
the default teacher: 99% of per-image channel variances within 0.2-2.8) and one int8 grid serves all
channels. Every intermediate has a per-tensor int8 fake quantiser, so the exported graph computes
what the student trained with.
"""
from __future__ import annotations

from typing import Callable, Sequence

import torch
import torch.nn.functional as F
from torch import nn

from .quant import QMIN, ActQuant, fake_quant_weight

VAR_MAX = 4.0                       # the variance grid's top; 1/sqrt is flat (0.5) above it
RAMP_TOP = 6.0                      # RELU6
# knots sqrt(2) apart from 1/8 to 4: 1/sqrt is flat (2.83) below 1/8; chords within 2.1% between knots
RSQRT_KNOTS = tuple(2.0 ** (k / 2) for k in range(-6, 5))


def ramp_weights(knots: tuple[float, ...] = RSQRT_KNOTS) -> tuple[torch.Tensor, ...]:
    """(w1 [K,1,1,1], b1 [K], w2 [1,K,1,1], b2 [1]) of the piecewise-linear 1/sqrt through `knots`."""
    t = torch.tensor(knots, dtype=torch.float64)
    width = t[1:] - t[:-1]
    w1 = RAMP_TOP / width
    drops = t[1:].rsqrt() - t[:-1].rsqrt()
    k = len(width)
    return (w1.reshape(k, 1, 1, 1).float(), (-w1 * t[:-1]).float(), (drops / RAMP_TOP).reshape(1, k, 1, 1).float(),
            t[:1].rsqrt().float())


def standardise(z: torch.Tensor, quant: Callable[[str, torch.Tensor], torch.Tensor], ramps: Sequence[torch.Tensor],
                channels: int) -> torch.Tensor:
    """d * r(var) of a conv output z [N, C, H, W], each intermediate passed through `quant(name, x)` (name
    one of `ImageNorm.QUANTISERS`). `ramps`: (w1, b1, w2, b2) with the weights already on their grid;
    `channels` = C as a constant, so a traced graph holds no shape arithmetic (Core ML converts none).
    The one definition of this arithmetic: the student (ImageNorm) and the export graph's torch executor
    (export.graph.GraphModule) both call it."""
    d = quant("diff_q", z - quant("mean_q", z.mean(dim=(2, 3), keepdim=True)))
    var = quant("var_q", quant("square_q", d * d).mean(dim=(2, 3), keepdim=True))
    return quant("norm_q", d * inverse_std(var, quant, ramps, channels))


def inverse_std(var: torch.Tensor, quant: Callable[[str, torch.Tensor], torch.Tensor],
                ramps: Sequence[torch.Tensor], channels: int) -> torch.Tensor:
    """var [N, C, 1, 1] -> r [N, C, 1, 1]: the ramps run over the channels laid out as a row of pixels."""
    w1, b1, w2, b2 = ramps
    h = quant("hidden_q", F.hardtanh(F.conv2d(var.reshape(-1, 1, 1, channels), w1, b1), 0.0, RAMP_TOP))
    return quant("inv_q", F.conv2d(h, w2, b2)).reshape(-1, channels, 1, 1)


def fixed_grid(top: float) -> ActQuant:
    """An int8 quantiser on the fixed grid [0, top] (zero point -128)."""
    return ActQuant(fixed=(top / 255.0, QMIN))


class ImageNorm(nn.Module):
    """d * r(var) with r the piecewise-linear 1/sqrt above; the caller applies the channel scale and shift."""

    QUANTISERS = ("mean_q", "diff_q", "square_q", "var_q", "hidden_q", "inv_q", "norm_q")

    def __init__(self, exact: bool = False) -> None:
        """`exact`: float InstanceNorm arithmetic (rsqrt(var + eps), no quantisers), the upper bound
        this design is measured against; not exportable."""
        super().__init__()
        self.exact = exact
        self.quantise = not exact
        if exact:
            return
        for name, value in zip(("w1", "b1", "w2", "b2"), ramp_weights()):
            self.register_buffer(name, value)
        for name in self.QUANTISERS:
            grid = {"var_q": VAR_MAX, "hidden_q": RAMP_TOP}.get(name)
            setattr(self, name, fixed_grid(grid) if grid else ActQuant())

    def quant(self, name: str, x: torch.Tensor) -> torch.Tensor:
        """Apply this module's quantiser `name`."""
        return getattr(self, name)(x)

    def inverse_std(self, var: torch.Tensor) -> torch.Tensor:
        """var [N, C, 1, 1] -> r [N, C, 1, 1], the piecewise-linear 1/sqrt on this module's grids."""
        return inverse_std(var, self.quant, self.ramps(), var.shape[1])

    def ramps(self) -> tuple[torch.Tensor, ...]:
        """(w1, b1, w2, b2), the weights fake-quantised when quantising."""
        w1, w2 = (fake_quant_weight(self.w1), fake_quant_weight(self.w2)) if self.quantise else (self.w1, self.w2)
        return w1, self.b1, w2, self.b2

    def forward(self, z: torch.Tensor, eps: torch.Tensor | None = None) -> torch.Tensor:
        """z [N, C, H, W] -> standardised d * r; `eps` [C]: the exact form's per-channel epsilon."""
        if self.exact:
            d = z - z.mean(dim=(2, 3), keepdim=True)
            return d * torch.rsqrt(d.square().mean(dim=(2, 3), keepdim=True) + eps[None, :, None, None])
        return standardise(z, self.quant, self.ramps(), z.shape[1])

    @staticmethod
    def macs(channels: int, height: int, width: int) -> int:
        """The 1x1 depthwise channel affine at the unit's resolution and the ramps' two 1x1 convs over C."""
        return channels * (height * width + 2 * (len(RSQRT_KNOTS) - 1))

    def params(self) -> int:
        """Its constants (the ramps' weights and biases), as the exported graph stores them."""
        return sum(b.numel() for b in (self.w1, self.b1, self.w2, self.b2))

    def quantisers(self) -> list[ActQuant]:
        return [] if self.exact else [getattr(self, name) for name in self.QUANTISERS]
