"""CartoonGAN generator (Chen et al. 2018), laid out like the public PyTorch port.

Keys follow `network/Transformer.py` of CartoonGAN-Test-Pytorch-Torch (`conv01_1`, `in01_1.scale`,
`in01_1.shift`, ..., `deconv03_1`), so the public style checkpoints (Hayao, Hosoda, Paprika,
Shinkai) load with strict keys. Inputs are BGR in [-1, 1].
"""
from __future__ import annotations

import torch
from torch import nn

from .spec import GeneratorSpec, NormAffine, UnitSpec, unsupported_norm


class InstanceNormalization(nn.Module):
    """The port's instance norm: biased variance, eps 1e-9, parameters `scale` and `shift`."""

    def __init__(self, dim: int, eps: float = 1e-9) -> None:
        super().__init__()
        self.scale = nn.Parameter(torch.empty(dim).uniform_())
        self.shift = nn.Parameter(torch.zeros(dim))
        self.eps = eps

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        mean = x.mean(dim=(2, 3), keepdim=True)
        var = x.var(dim=(2, 3), keepdim=True, unbiased=False)
        out = (x - mean) / torch.sqrt(var + self.eps)
        return out * self.scale[None, :, None, None] + self.shift[None, :, None, None]

    @property
    def weight(self) -> torch.Tensor:  # common name used by the student initialiser
        return self.scale

    @property
    def bias(self) -> torch.Tensor:
        return self.shift


class CartoonGANGenerator(nn.Module):
    """7x7 conv -> (s2 conv + conv) x2 -> n residual blocks -> (ConvT + conv) x2 -> 7x7 conv -> tanh."""

    bgr_io = True

    def __init__(self, n_blocks: int = 8, ngf: int = 64) -> None:
        super().__init__()
        self.config = dict(n_blocks=n_blocks, ngf=ngf)
        c1, c2, c4 = ngf, ngf * 2, ngf * 4
        self.refpad01_1 = nn.ReflectionPad2d(3)
        self.conv01_1 = nn.Conv2d(3, c1, 7)
        self.in01_1 = InstanceNormalization(c1)
        self.conv02_1 = nn.Conv2d(c1, c2, 3, 2, 1)
        self.conv02_2 = nn.Conv2d(c2, c2, 3, 1, 1)
        self.in02_1 = InstanceNormalization(c2)
        self.conv03_1 = nn.Conv2d(c2, c4, 3, 2, 1)
        self.conv03_2 = nn.Conv2d(c4, c4, 3, 1, 1)
        self.in03_1 = InstanceNormalization(c4)
        for i in range(n_blocks):
            tag = f"{i + 4:02d}"
            setattr(self, f"refpad{tag}_1", nn.ReflectionPad2d(1))
            setattr(self, f"conv{tag}_1", nn.Conv2d(c4, c4, 3))
            setattr(self, f"in{tag}_1", InstanceNormalization(c4))
            setattr(self, f"refpad{tag}_2", nn.ReflectionPad2d(1))
            setattr(self, f"conv{tag}_2", nn.Conv2d(c4, c4, 3))
            setattr(self, f"in{tag}_2", InstanceNormalization(c4))
        self.deconv01_1 = nn.ConvTranspose2d(c4, c2, 3, 2, 1, 1)
        self.deconv01_2 = nn.Conv2d(c2, c2, 3, 1, 1)
        self.deconv02_1 = nn.ConvTranspose2d(c2, c1, 3, 2, 1, 1)
        self.deconv02_2 = nn.Conv2d(c1, c1, 3, 1, 1)
        self.refpad12_1 = nn.ReflectionPad2d(3)
        self.deconv03_1 = nn.Conv2d(c1, 3, 7)
        # the port names the decoder norms after the block count of the original (8 blocks)
        self.in12_1 = InstanceNormalization(c2)
        self.in13_1 = InstanceNormalization(c1)

    def _block_tags(self) -> list[str]:
        return [f"{i + 4:02d}" for i in range(self.config["n_blocks"])]

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        relu = torch.relu
        y = relu(self.in01_1(self.conv01_1(self.refpad01_1(x))))
        y = relu(self.in02_1(self.conv02_2(self.conv02_1(y))))
        t = relu(self.in03_1(self.conv03_2(self.conv03_1(y))))
        for tag in self._block_tags():
            part = lambda kind, n: getattr(self, f"{kind}{tag}_{n}")  # noqa: E731
            r = relu(part("in", 1)(part("conv", 1)(part("refpad", 1)(t))))
            r = part("in", 2)(part("conv", 2)(part("refpad", 2)(r)))
            t = t + r
        y = relu(self.in12_1(self.deconv01_2(self.deconv01_1(t))))
        y = relu(self.in13_1(self.deconv02_2(self.deconv02_1(y))))
        return torch.tanh(self.deconv03_1(self.refpad12_1(y)))

    def spec(self) -> GeneratorSpec:
        ngf = self.config["ngf"]
        c1, c2, c4 = ngf, ngf * 2, ngf * 4
        stem = (
            UnitSpec("stem", "conv", 3, c1, 7, 1, 3, "reflect", True, "relu"),
            UnitSpec("down1.s2", "conv", c1, c2, 3, 2, 1, "zero", False, "none"),
            UnitSpec("down1", "conv", c2, c2, 3, 1, 1, "zero", True, "relu"),
            UnitSpec("down2.s2", "conv", c2, c4, 3, 2, 1, "zero", False, "none"),
            UnitSpec("down2", "conv", c4, c4, 3, 1, 1, "zero", True, "relu"),
        )
        blocks = tuple(
            (UnitSpec(f"block{i}.a", "conv", c4, c4, 3, 1, 1, "reflect", True, "relu"),
             UnitSpec(f"block{i}.b", "conv", c4, c4, 3, 1, 1, "reflect", True, "none"))
            for i in range(self.config["n_blocks"])
        )
        tail = (
            UnitSpec("up1.t", "up", c4, c2, 3, 2, 1, "zero", False, "none"),
            UnitSpec("up1", "conv", c2, c2, 3, 1, 1, "zero", True, "relu"),
            UnitSpec("up2.t", "up", c2, c1, 3, 2, 1, "zero", False, "none"),
            UnitSpec("up2", "conv", c1, c1, 3, 1, 1, "zero", True, "relu"),
            UnitSpec("head", "conv", c1, 3, 7, 1, 3, "reflect", False, "tanh"),
        )
        return GeneratorSpec("cartoongan", stem, blocks, tail, input_bgr=self.bgr_io)

    def unit_modules(self) -> dict[str, tuple[nn.Module, nn.Module | None]]:
        out: dict[str, tuple[nn.Module, nn.Module | None]] = {
            "stem": (self.conv01_1, self.in01_1),
            "down1.s2": (self.conv02_1, None), "down1": (self.conv02_2, self.in02_1),
            "down2.s2": (self.conv03_1, None), "down2": (self.conv03_2, self.in03_1),
            "up1.t": (self.deconv01_1, None), "up1": (self.deconv01_2, self.in12_1),
            "up2.t": (self.deconv02_1, None), "up2": (self.deconv02_2, self.in13_1),
            "head": (self.deconv03_1, None),
        }
        for i, tag in enumerate(self._block_tags()):
            out[f"block{i}.a"] = (getattr(self, f"conv{tag}_1"), getattr(self, f"in{tag}_1"))
            out[f"block{i}.b"] = (getattr(self, f"conv{tag}_2"), getattr(self, f"in{tag}_2"))
        return out

    def encoder(self) -> nn.Module:
        """Stem + first downsampling stage as a frozen feature net (takes RGB, like the student)."""
        return _CartoonEncoder(self)

    def norm_affine(self, norm: nn.Module) -> NormAffine:
        if isinstance(norm, InstanceNormalization):
            return NormAffine(norm.scale, norm.shift, float(norm.eps))
        raise unsupported_norm(norm)

    @staticmethod
    def canonical_keys(state: dict[str, torch.Tensor]) -> dict[str, torch.Tensor]:
        return dict(state)

    @staticmethod
    def infer_config(state: dict[str, torch.Tensor]) -> dict[str, int]:
        """Width from the first conv, block count from the `convNN_1` keys of the residual blocks (NN >= 04)."""
        w = state.get("conv01_1.weight")
        blocks = {k[4:6] for k in state
                  if k.startswith("conv") and k[6:8] == "_1" and k[4:6].isdigit() and int(k[4:6]) >= 4}
        return {"ngf": int(w.shape[0]), "n_blocks": len(blocks)} if w is not None else {}


class _CartoonEncoder(nn.Module):
    def __init__(self, gen: CartoonGANGenerator) -> None:
        super().__init__()
        self.gen = gen

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        g = self.gen
        y = torch.relu(g.in01_1(g.conv01_1(g.refpad01_1(x.flip(1)))))
        return torch.relu(g.in02_1(g.conv02_2(g.conv02_1(y))))
