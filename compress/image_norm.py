"""Per-image normalisation that INT8 mobile runtimes execute whole (every op delegated to XNNPACK).

The teacher standardises every conv output by its own per-image statistics (InstanceNorm); a fixed,
folded norm cannot, and that is where most of the students' quality went. InstanceNorm itself needs
RSQRT, which XNNPACK does not run in int8 (the graph splits at every norm). This module computes the
same standardisation with delegated int8 ops only, NHWC names in brackets:

    mean = MEAN(z)                 per image and channel
    d    = SUB(z, mean)
    var  = MEAN(MUL(d, d))
    r    = a scalar MLP applied to every element of var (RESHAPE [1,1,C,1], 1x1 CONV_2D 1->K + RELU,
           1x1 CONV_2D K->1, RESHAPE back): a piecewise-linear 1/sqrt(var), fitted by least squares
           over knots from 0 to 8 and trained with the student
    n    = MUL(d, r)
    y    = n * s + t               a 1x1 DEPTHWISE_CONV_2D: the GS channel scale s and shift t

The unit's conv carries the fixed norm's 1/sigma, so var is about 1 for every channel (measured on
the default teacher: 99% of per-image channel variances within 0.2-2.8) and one int8 grid serves
them all. The fitted MLP is within 3.3% of 1/sqrt(var) on 0.1-5 (4.5% on 0.03-10).
Every intermediate has its own per-tensor int8 fake quantiser, so the exported graph computes what
the student trained with.
"""
from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

from .quant import ActQuant, fake_quant_weight

RSQRT_KNOTS = (0.0, 0.03, 0.06, 0.12, 0.25, 0.5, 1.0, 2.0, 4.0, 8.0)


def rsqrt_fit(knots: tuple[float, ...] = RSQRT_KNOTS) -> tuple[torch.Tensor, torch.Tensor]:
    """Output weights w [K] and bias c of sum_k w_k relu(v - knot_k) + c ~ 1/sqrt(v), relative least squares."""
    v = torch.logspace(-2, 1, 2000, dtype=torch.float64)
    target = v.rsqrt()
    t = torch.tensor(knots, dtype=torch.float64)
    basis = torch.cat([torch.relu(v[:, None] - t[None]), torch.ones_like(v)[:, None]], 1)
    sol = torch.linalg.lstsq(basis / target[:, None], torch.ones_like(v)).solution
    return sol[:-1].float(), sol[-1:].float()


class ImageNorm(nn.Module):
    """d * r(var) with r the scalar MLP above; the caller applies the channel scale and shift."""

    QUANTISERS = ("mean_q", "diff_q", "square_q", "var_q", "hidden_q", "inv_q", "norm_q")

    def __init__(self, exact: bool = False) -> None:
        """`exact`: float InstanceNorm arithmetic (rsqrt(var + eps), no intermediate quantisers), the
        upper bound this design is measured against; not exportable."""
        super().__init__()
        self.exact = exact
        k = len(RSQRT_KNOTS)
        w, c = rsqrt_fit()
        self.w1 = nn.Parameter(torch.ones(k, 1, 1, 1))                     # 1x1 conv 1 -> K
        self.b1 = nn.Parameter(-torch.tensor(RSQRT_KNOTS))
        self.w2 = nn.Parameter(w.reshape(1, k, 1, 1))                      # 1x1 conv K -> 1
        self.b2 = nn.Parameter(c)
        for name in self.QUANTISERS:
            setattr(self, name, ActQuant())
        self.quantise = True

    def inverse_std(self, var: torch.Tensor) -> torch.Tensor:
        """var [N, C, 1, 1] -> r [N, C, 1, 1], the MLP run over channels laid out as a row of pixels."""
        n, c = var.shape[:2]
        w1, w2 = (fake_quant_weight(self.w1), fake_quant_weight(self.w2)) if self.quantise else (self.w1, self.w2)
        h = self.hidden_q(F.relu(F.conv2d(var.reshape(n, 1, 1, c), w1, self.b1)))
        return self.inv_q(F.conv2d(h, w2, self.b2)).reshape(n, c, 1, 1)

    def forward(self, z: torch.Tensor, eps: torch.Tensor | None = None) -> torch.Tensor:
        """z [N, C, H, W] -> standardised d * r; `eps` [C]: the exact form's per-channel epsilon."""
        if self.exact:
            d = z - z.mean(dim=(2, 3), keepdim=True)
            return d * torch.rsqrt(d.square().mean(dim=(2, 3), keepdim=True) + eps[None, :, None, None])
        d = self.diff_q(z - self.mean_q(z.mean(dim=(2, 3), keepdim=True)))
        var = self.var_q(self.square_q(d * d).mean(dim=(2, 3), keepdim=True))
        return self.norm_q(d * self.inverse_std(var))

    @staticmethod
    def macs(channels: int, height: int, width: int) -> int:
        """The 1x1 depthwise channel affine at the unit's resolution and the MLP's two 1x1 convs over C."""
        return channels * (height * width + 2 * len(RSQRT_KNOTS))

    def params(self) -> int:
        return sum(p.numel() for p in (self.w1, self.b1, self.w2, self.b2))

    def quantisers(self) -> list[ActQuant]:
        return [getattr(self, name) for name in self.QUANTISERS]
