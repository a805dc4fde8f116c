"""A generic description of encoder / residual-trunk / decoder generators.

Both zoo generators (CycleGAN ResnetGenerator, CartoonGAN) describe themselves as a
`GeneratorSpec`: a stem of conv units, a trunk of residual blocks (two units each) and a tail of
units. The student, the channel groups, the MAC counter and the exporter all work on this one
description, so none of them needs to know which original architecture they came from.

`Generator` is the protocol a zoo generator implements; what differs between architectures (key
layout, config inference, norm modules, colour order) is answered by the generator itself, so a new
architecture is one zoo module plus one registry line. This module imports no torch (the CLIs list
the registry without it).
"""
from __future__ import annotations

from dataclasses import asdict, dataclass, field
from typing import TYPE_CHECKING, Literal, Protocol

from ..errors import UnsupportedNormError

if TYPE_CHECKING:
    import torch
    from torch import nn

UnitKind = Literal["conv", "up"]
Activation = Literal["relu", "none", "tanh"]
PadMode = Literal["reflect", "zero"]


@dataclass(frozen=True)
class UnitSpec:
    """One convolution (or 2x upsampling convolution) with optional norm and activation.

    kind "up" is a stride-2 ConvTranspose(k=3, p=1, output_padding=1) in the teacher; the
    student realises it as a sub-pixel convolution (2x2 conv to 4*out channels + depth-to-space).
    """

    name: str
    kind: UnitKind
    in_ch: int
    out_ch: int
    kernel: int
    stride: int = 1
    pad: int = 0
    pad_mode: PadMode = "zero"
    norm: bool = True
    act: Activation = "relu"


@dataclass(frozen=True)
class GeneratorSpec:
    """stem -> n residual blocks (x + b(a(x))) -> tail."""

    arch: str
    stem: tuple[UnitSpec, ...]
    blocks: tuple[tuple[UnitSpec, UnitSpec], ...]
    tail: tuple[UnitSpec, ...]
    input_bgr: bool = False
    extra: dict = field(default_factory=dict)

    def units(self) -> list[UnitSpec]:
        """All units in execution order."""
        out = list(self.stem)
        for a, b in self.blocks:
            out += [a, b]
        return out + list(self.tail)

    def to_dict(self) -> dict:
        return asdict(self)

    @staticmethod
    def from_dict(d: dict) -> "GeneratorSpec":
        def units(items):  # noqa: ANN001 - JSON-ish input
            return tuple(UnitSpec(**u) for u in items)

        return GeneratorSpec(
            arch=d["arch"],
            stem=units(d["stem"]),
            blocks=tuple((UnitSpec(**a), UnitSpec(**b)) for a, b in d["blocks"]),
            tail=units(d["tail"]),
            input_bgr=d.get("input_bgr", False),
            extra=dict(d.get("extra", {})),
        )


@dataclass(frozen=True)
class NormAffine:
    """A per-image (instance) norm: y = (x - mean) / sqrt(var + eps) * gamma + beta, per channel."""

    gamma: "torch.Tensor"
    beta: "torch.Tensor"
    eps: float


class Generator(Protocol):
    """What a zoo generator (an `nn.Module`) provides to the student, the MAC counter and the exporter."""

    config: dict  # the constructor's keyword arguments
    bgr_io: bool  # forward() takes and returns BGR (spec().input_bgr describes the weights instead)

    def __call__(self, x: "torch.Tensor") -> "torch.Tensor":
        """The original network on [-1, 1] images in its own colour order."""

    def spec(self) -> GeneratorSpec:
        """The generic unit description; `input_bgr` when the weights read and write BGR."""

    def unit_modules(self) -> dict[str, tuple["nn.Module", "nn.Module | None"]]:
        """Unit name -> (conv or ConvTranspose, norm or None), for every unit of `spec()`."""

    def encoder(self) -> "nn.Module":
        """A frozen feature net on RGB input (the distillation's feature distance)."""

    def norm_affine(self, norm: "nn.Module") -> NormAffine:
        """The affine of one of its norm modules; UnsupportedNormError when it is not per-image."""

    @staticmethod
    def canonical_keys(state: dict[str, "torch.Tensor"]) -> dict[str, "torch.Tensor"]:
        """A checkpoint's keys mapped onto this module's own key layout."""

    @staticmethod
    def infer_config(state: dict[str, "torch.Tensor"]) -> dict[str, int]:
        """Constructor arguments (width, block count) read from a checkpoint, so any size loads."""


def unsupported_norm(norm: "nn.Module") -> UnsupportedNormError:
    """The error a generator's `norm_affine` raises for a module without a per-image affine."""
    return UnsupportedNormError(f"unsupported teacher normalisation {type(norm).__name__} (instance norm expected)")


def fold_colour_order(spec: GeneratorSpec, unit: UnitSpec, weight: "torch.Tensor", bias: "torch.Tensor"
                      ) -> tuple["torch.Tensor", "torch.Tensor"]:
    """A unit's conv weight [out, in, kh, kw] and bias, rewritten to read and write RGB.

    A BGR generator's first unit reads its input channels reversed and its tanh head writes its
    output channels reversed; reversing those weight axes (and the head's bias) once gives an RGB
    network with the same function, so nothing downstream ever sees BGR. Identity for RGB generators.
    """
    if not spec.input_bgr:
        return weight, bias
    if unit.kind != "conv" and (unit.name == spec.stem[0].name or unit.act == "tanh"):
        raise ValueError(f"cannot fold the colour order into {unit.kind} unit {unit.name} (conv expected)")
    if unit.name == spec.stem[0].name:
        weight = weight.flip(1)
    if unit.act == "tanh":
        weight, bias = weight.flip(0), bias.flip(0)
    return weight, bias
