"""CycleGAN ResnetGenerator (Zhu et al. 2017), laid out exactly like the original code.

The module tree reproduces `pytorch-CycleGAN-and-pix2pix`'s `ResnetGenerator` (`model.N...` keys),
so original checkpoints load with strict keys. Residual blocks are named `conv_block` upstream and
`block` in some re-implementations (e.g. the vintagify package); `load_state_dict` accepts both.
"""
from __future__ import annotations

from typing import Literal

import torch
from torch import nn

from .spec import GeneratorSpec, NormAffine, UnitSpec, unsupported_norm

NormKind = Literal["instance", "batch", "none"]


def _norm(kind: NormKind, ch: int) -> nn.Module:
    if kind == "instance":
        return nn.InstanceNorm2d(ch, affine=True)
    if kind == "batch":
        return nn.BatchNorm2d(ch)
    return nn.Identity()


def instance_norm_affine(norm: nn.Module) -> NormAffine:
    """`nn.InstanceNorm2d(affine=True)` (per-image statistics) as a NormAffine; other norms are refused."""
    if isinstance(norm, nn.InstanceNorm2d) and not norm.track_running_stats and norm.affine:
        return NormAffine(norm.weight, norm.bias, float(norm.eps))
    raise unsupported_norm(norm)


class ResnetBlock(nn.Module):
    """reflect-pad, conv3x3, norm, relu, reflect-pad, conv3x3, norm; plus the input."""

    def __init__(self, dim: int, norm: NormKind = "instance") -> None:
        super().__init__()
        self.conv_block = nn.Sequential(
            nn.ReflectionPad2d(1), nn.Conv2d(dim, dim, 3), _norm(norm, dim), nn.ReLU(True),
            nn.ReflectionPad2d(1), nn.Conv2d(dim, dim, 3), _norm(norm, dim),
        )

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x + self.conv_block(x)


class ResnetGenerator(nn.Module):
    """7x7 conv -> 2 stride-2 convs -> n residual blocks -> 2 ConvTranspose -> 7x7 conv -> tanh."""

    bgr_io = False

    def __init__(self, input_nc: int = 3, output_nc: int = 3, ngf: int = 64, n_blocks: int = 9,
                 norm: NormKind = "instance") -> None:
        super().__init__()
        self.config = dict(input_nc=input_nc, output_nc=output_nc, ngf=ngf, n_blocks=n_blocks, norm=norm)
        layers: list[nn.Module] = [nn.ReflectionPad2d(3), nn.Conv2d(input_nc, ngf, 7), _norm(norm, ngf), nn.ReLU(True)]
        for i in range(2):
            mult = 2 ** i
            layers += [nn.Conv2d(ngf * mult, ngf * mult * 2, 3, stride=2, padding=1),
                       _norm(norm, ngf * mult * 2), nn.ReLU(True)]
        layers += [ResnetBlock(ngf * 4, norm) for _ in range(n_blocks)]
        for i in range(2):
            mult = 2 ** (2 - i)
            layers += [nn.ConvTranspose2d(ngf * mult, ngf * mult // 2, 3, stride=2, padding=1, output_padding=1),
                       _norm(norm, ngf * mult // 2), nn.ReLU(True)]
        layers += [nn.ReflectionPad2d(3), nn.Conv2d(ngf, output_nc, 7), nn.Tanh()]
        self.model = nn.Sequential(*layers)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.model(x)

    # --- generic description used by the student, the MAC counter and the exporter ---
    def spec(self) -> GeneratorSpec:
        c = self.config
        ngf, has_norm = c["ngf"], c["norm"] != "none"
        stem = (
            UnitSpec("stem", "conv", c["input_nc"], ngf, 7, 1, 3, "reflect", has_norm, "relu"),
            UnitSpec("down1", "conv", ngf, ngf * 2, 3, 2, 1, "zero", has_norm, "relu"),
            UnitSpec("down2", "conv", ngf * 2, ngf * 4, 3, 2, 1, "zero", has_norm, "relu"),
        )
        blocks = tuple(
            (UnitSpec(f"block{i}.a", "conv", ngf * 4, ngf * 4, 3, 1, 1, "reflect", has_norm, "relu"),
             UnitSpec(f"block{i}.b", "conv", ngf * 4, ngf * 4, 3, 1, 1, "reflect", has_norm, "none"))
            for i in range(c["n_blocks"])
        )
        tail = (
            UnitSpec("up1", "up", ngf * 4, ngf * 2, 3, 2, 1, "zero", has_norm, "relu"),
            UnitSpec("up2", "up", ngf * 2, ngf, 3, 2, 1, "zero", has_norm, "relu"),
            UnitSpec("head", "conv", ngf, c["output_nc"], 7, 1, 3, "reflect", False, "tanh"),
        )
        return GeneratorSpec("cyclegan", stem, blocks, tail)

    def unit_modules(self) -> dict[str, tuple[nn.Module, nn.Module | None]]:
        """Unit name -> (conv or ConvTranspose, norm or None), matching `spec()`."""
        m = self.model
        norm = lambda mod: None if isinstance(mod, nn.Identity) else mod  # noqa: E731
        out = {"stem": (m[1], norm(m[2])), "down1": (m[4], norm(m[5])), "down2": (m[7], norm(m[8]))}
        n = self.config["n_blocks"]
        for i in range(n):
            blk = m[10 + i].conv_block
            out[f"block{i}.a"] = (blk[1], norm(blk[2]))
            out[f"block{i}.b"] = (blk[5], norm(blk[6]))
        out["up1"] = (m[10 + n], norm(m[11 + n]))
        out["up2"] = (m[13 + n], norm(m[14 + n]))
        out["head"] = (m[17 + n], None)
        return out

    def encoder(self) -> nn.Module:
        """The first two conv stages (stem + first downsampling), used as a frozen feature net."""
        return nn.Sequential(*list(self.model)[:7])

    def norm_affine(self, norm: nn.Module) -> NormAffine:
        return instance_norm_affine(norm)

    @staticmethod
    def canonical_keys(state: dict[str, torch.Tensor]) -> dict[str, torch.Tensor]:
        """Map re-implementations' `.block.` keys onto upstream `.conv_block.` keys."""
        return {k.replace(".block.", ".conv_block."): v for k, v in state.items()}

    @staticmethod
    def infer_config(state: dict[str, torch.Tensor]) -> dict[str, int]:
        """Width from the stem conv, block count from the residual blocks' keys."""
        state = ResnetGenerator.canonical_keys(state)
        w = state.get("model.1.weight")
        blocks = {k.split(".")[1] for k in state if ".conv_block." in k}
        return {"ngf": int(w.shape[0]), "n_blocks": len(blocks)} if w is not None else {}
