"""A generic description of encoder / residual-trunk / decoder generators.

Both zoo generators (CycleGAN ResnetGenerator, CartoonGAN) describe themselves as a
`GeneratorSpec`: a stem of conv units, a trunk of residual blocks (two units each) and a tail of
units. The student, the channel groups, the MAC counter and the exporter all work on this one
description, so none of them needs to know which original architecture they came from.
"""
from __future__ import annotations

from dataclasses import asdict, dataclass, field
from typing import Literal

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
