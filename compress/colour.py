"""Per-image colour grade: the global image statistics the teacher gets from its InstanceNorms.

The teacher normalises every layer per image, so its colour grade depends on whole-image
statistics; the student's folded fixed norms cannot see them (docs/RESULTS.md: an oracle per-image
colour map on the input scores 28.7 dB against the teacher, a fixed student 21 dB). This head gives
them back with INT8-friendly ops only:

    f     = [mean_hw(trunk), max_hw(trunk)]                 MEAN, REDUCE_MAX, CONCATENATION
    h     = relu(W1 f + b1)                                 1x1 CONV_2D on a 1x1 tensor
    gain  = Wg h + bg,  shift = Wt h + bt                   two 1x1 CONV_2D (3 channels each)
    out   = tanh(pre * gain + shift)                        MUL, ADD (broadcast per channel)

where `trunk` is the residual trunk entering the decoder and `pre` the head conv's (quantised)
pre-activation. Every arrow is fake-quantised exactly where the exported INT8 graphs quantise.
Measured on the quick student (docs/RESULTS.md): mean+max pooling of the trunk is what carries the
signal (mean alone: no gain), and training it needs colour-jittered teacher-labelled views (on the
plain views it overfits).
"""
from __future__ import annotations

import copy

import torch
import torch.nn.functional as F
from torch import nn

from .quant import ActQuant, fake_quant_weight

HIDDEN = 64


class ColourHead(nn.Module):
    """Global pooled trunk statistics -> per-image, per-channel (gain, shift) on the output."""

    def __init__(self, trunk_ch: int, hidden: int = HIDDEN, out_ch: int = 3) -> None:
        super().__init__()
        self.w1 = nn.Parameter(torch.randn(hidden, 2 * trunk_ch, 1, 1) * (2.0 / (2 * trunk_ch)) ** 0.5)
        self.b1 = nn.Parameter(torch.zeros(hidden))
        self.wg = nn.Parameter(torch.zeros(out_ch, hidden, 1, 1))
        self.bg = nn.Parameter(torch.ones(out_ch))  # starts as the identity grade: gain 1, shift 0
        self.wt = nn.Parameter(torch.zeros(out_ch, hidden, 1, 1))
        self.bt = nn.Parameter(torch.zeros(out_ch))
        # feature standardisation (set by `calibrate`), folded into W1 like the units' norms
        self.register_buffer("f_mu", torch.zeros(2 * trunk_ch))
        self.register_buffer("f_sd", torch.ones(2 * trunk_ch))
        self.pool_quant, self.hidden_quant = ActQuant(), ActQuant()
        self.gain_quant, self.shift_quant = ActQuant(), ActQuant()
        self.mul_quant, self.grade_quant = ActQuant(), ActQuant()
        self.quantise = True

    def quantisers(self) -> list[ActQuant]:
        """In a fixed order (the exporters' `ColourGrade` fields)."""
        return [self.pool_quant, self.hidden_quant, self.gain_quant, self.shift_quant, self.mul_quant,
                self.grade_quant]

    @property
    def hidden(self) -> int:
        return self.w1.shape[0]

    @staticmethod
    def merge(heads: list["ColourHead"]) -> "ColourHead":
        """One head computing the mean (gain, shift) of `heads` (same features, same calibration): their
        hidden layers side by side, their output layers divided by the count. It is an ordinary head
        with the summed hidden width, so an ensemble exports as one head. Its activation ranges are the
        first head's until observed again (colour_fit.observe_head_ranges)."""
        merged, k = copy.deepcopy(heads[0]), len(heads)
        with torch.no_grad():
            merged.w1 = nn.Parameter(torch.cat([h.w1 for h in heads]))
            merged.b1 = nn.Parameter(torch.cat([h.b1 for h in heads]))
            merged.wg = nn.Parameter(torch.cat([h.wg for h in heads], 1) / k)
            merged.bg = nn.Parameter(sum(h.bg for h in heads) / k)
            merged.wt = nn.Parameter(torch.cat([h.wt for h in heads], 1) / k)
            merged.bt = nn.Parameter(sum(h.bt for h in heads) / k)
        return merged

    @staticmethod
    def pooled(trunk: torch.Tensor) -> torch.Tensor:
        """[B, 2C, 1, 1]: per-channel spatial mean, then per-channel spatial max."""
        return torch.cat([trunk.mean(dim=(2, 3), keepdim=True), trunk.amax(dim=(2, 3), keepdim=True)], 1)

    @staticmethod
    def feature_columns(trunk_alive: torch.Tensor) -> torch.Tensor:
        """Indices of the pooled features of alive trunk channels (their mean, then their max)."""
        kept = torch.nonzero(trunk_alive > 0).flatten()
        return torch.cat([kept, kept + len(trunk_alive)])

    def folded_w1(self, trunk_alive: torch.Tensor | None = None) -> tuple[torch.Tensor, torch.Tensor]:
        """W1, b1 with the feature standardisation folded in (what the exporter writes), reading only
        the features of alive trunk channels when `trunk_alive` is given (dead ones are always 0).

        The student computes with the sliced layer too, so its sums are the slim model's, term by term.
        """
        w = self.w1 / self.f_sd[None, :, None, None]
        b = self.b1 - (w.flatten(1) * self.f_mu[None, :]).sum(1)
        if trunk_alive is not None:
            w = w[:, self.feature_columns(trunk_alive)]
        return w, b

    def _w(self, w: torch.Tensor) -> torch.Tensor:
        return fake_quant_weight(w) if self.quantise else w

    def modulation(self, trunk: torch.Tensor, trunk_alive: torch.Tensor | None = None
                   ) -> tuple[torch.Tensor, torch.Tensor]:
        """(gain, shift), each [B, 3, 1, 1], from the (quantised) trunk tensor."""
        return self.modulation_of_pooled(self.pooled(trunk), trunk_alive)

    def modulation_of_pooled(self, pooled: torch.Tensor, trunk_alive: torch.Tensor | None = None
                             ) -> tuple[torch.Tensor, torch.Tensor]:
        """`modulation` from already pooled features [B, 2C, 1, 1]."""
        f = self.pool_quant(pooled)
        w1, b1 = self.folded_w1()
        if trunk_alive is not None:  # the slice folded_w1(trunk_alive) takes, with one index computation
            cols = self.feature_columns(trunk_alive)
            w1, f = w1[:, cols], f[:, cols]
        h = self.hidden_quant(torch.relu(F.conv2d(f, self._w(w1), b1)))
        return (self.gain_quant(F.conv2d(h, self._w(self.wg), self.bg)),
                self.shift_quant(F.conv2d(h, self._w(self.wt), self.bt)))

    def grade(self, pre: torch.Tensor, gain: torch.Tensor, shift: torch.Tensor) -> torch.Tensor:
        """The graded pre-activation (the input of tanh)."""
        return self.grade_quant(self.mul_quant(pre * gain) + shift)

    @torch.no_grad()
    def calibrate(self, pooled: torch.Tensor) -> None:
        """Feature standardisation from pooled trunk features [N, 2C, 1, 1] (see `pooled`)."""
        f = pooled.flatten(1)
        self.f_mu.copy_(f.mean(0))
        self.f_sd.copy_(f.std(0).clamp_min(1e-3) if len(f) > 1 else torch.ones_like(self.f_mu))

    def macs(self, trunk_kept: int) -> int:
        """Conv MACs of the slimmed head (1x1 convs on a 1x1 tensor) reading `trunk_kept` channels."""
        hidden, out_ch = self.w1.shape[0], self.wg.shape[0]
        return hidden * 2 * trunk_kept + 2 * out_ch * hidden

    def params(self, trunk_kept: int) -> int:
        """Weights + biases of the slimmed head."""
        hidden, out_ch = self.w1.shape[0], self.wg.shape[0]
        return self.macs(trunk_kept) + hidden + 2 * out_ch
