"""The oracle colour map used by `python -m compress.diagnostics`."""
from __future__ import annotations

import torch

from compress.diagnostics import oracle_colour_map
from compress.evaluate import psnr


def test_oracle_colour_map_recovers_a_per_image_affine_grade() -> None:
    g = torch.Generator().manual_seed(0)
    x = torch.rand(2, 3, 16, 16, generator=g) * 1.6 - 0.8
    mats = [torch.tensor([[0.9, 0.1, 0.0], [0.0, 0.7, 0.2], [0.1, 0.0, 0.5]]), torch.eye(3) * 0.5]
    y = torch.stack([(m @ xi.reshape(3, -1)).reshape(3, 16, 16) + 0.1 for m, xi in zip(mats, x)])
    assert min(psnr(oracle_colour_map(x, y), y)) > 80
    # a non-affine target is not reproduced
    assert max(psnr(oracle_colour_map(x, y ** 3), y ** 3)) < 60
