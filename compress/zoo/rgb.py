"""RGB presentation of a BGR zoo generator (the project's pixel convention is RGB in, RGB out)."""
from __future__ import annotations

import torch
from torch import nn

from .spec import Generator, GeneratorSpec, NormAffine


class RGBAdapter(nn.Module):
    """A BGR generator as RGB in, RGB out; its description (spec, units, norms) is the wrapped one's.

    `spec().input_bgr` stays true: it describes the weights `unit_modules()` hands out, which the
    student and the exporter rewrite to RGB with `fold_colour_order`.
    """

    bgr_io = False

    def __init__(self, gen: Generator) -> None:
        super().__init__()
        self.gen = gen

    @property
    def config(self) -> dict:
        return self.gen.config

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.gen(x.flip(1)).flip(1)

    def spec(self) -> GeneratorSpec:
        return self.gen.spec()

    def unit_modules(self) -> dict[str, tuple[nn.Module, nn.Module | None]]:
        return self.gen.unit_modules()

    def encoder(self) -> nn.Module:
        return self.gen.encoder()

    def norm_affine(self, norm: nn.Module) -> NormAffine:
        return self.gen.norm_affine(norm)
