"""MAC and parameter counting.

Convention (the GS paper's): multiply-accumulates of every convolution counted at the layer's
*output* resolution, ConvTranspose included, for one image; the paper's "G" is 2**30 MACs.
`count_module_macs` measures a torch module with forward hooks; `count_spec_macs` computes the
same number from a GeneratorSpec and per-unit channel counts (used while pruning).
"""
from __future__ import annotations

import torch
from torch import nn

from .zoo.spec import GeneratorSpec



def count_module_macs(model: nn.Module, height: int = 256, width: int = 256, in_ch: int = 3) -> int:
    """MACs of every Conv2d / ConvTranspose2d in `model` for one (in_ch, height, width) image."""
    total = 0

    def hook(mod: nn.Module, _inp: tuple, out: torch.Tensor) -> None:
        nonlocal total
        k = mod.kernel_size[0] * mod.kernel_size[1]
        cin = mod.in_channels // mod.groups
        total += int(out.shape[1] * out.shape[2] * out.shape[3] * cin * k)

    handles = [m.register_forward_hook(hook) for m in model.modules()
               if isinstance(m, (nn.Conv2d, nn.ConvTranspose2d))]
    try:
        with torch.no_grad():
            model(torch.zeros(1, in_ch, height, width))
    finally:
        for h in handles:
            h.remove()
    return total


def count_params(model: nn.Module) -> int:
    return sum(p.numel() for p in model.parameters())


def unit_output_sizes(spec: GeneratorSpec, height: int, width: int) -> dict[str, tuple[int, int]]:
    """Output resolution of every unit for an input of (height, width)."""
    sizes: dict[str, tuple[int, int]] = {}
    h, w = height, width
    for u in spec.units():
        if u.kind == "up":
            h, w = h * 2, w * 2
        elif u.stride > 1:
            h = (h + 2 * u.pad - u.kernel) // u.stride + 1
            w = (w + 2 * u.pad - u.kernel) // u.stride + 1
        sizes[u.name] = (h, w)
    return sizes


def count_spec_macs(spec: GeneratorSpec, channels: dict[str, tuple[int, int]], height: int = 256,
                    width: int = 256, up_kernel: int | None = None) -> dict[str, int]:
    """Per-unit MACs given {unit: (in_ch, out_ch)}.

    up_kernel=None counts an "up" unit as the teacher's 3x3 ConvTranspose at output resolution;
    up_kernel=2 counts the student's sub-pixel form (2x2 conv to 4*out channels at input resolution).
    """
    sizes = unit_output_sizes(spec, height, width)
    macs: dict[str, int] = {}
    for u in spec.units():
        cin, cout = channels[u.name]
        h, w = sizes[u.name]
        if u.kind == "up" and up_kernel is not None:
            macs[u.name] = (4 * cout) * (h // 2) * (w // 2) * cin * up_kernel * up_kernel
        else:
            macs[u.name] = cout * h * w * cin * u.kernel * u.kernel
    return macs
