"""The GS student: the teacher's topology with foldable norms, channel gates and fake quantisation.

Every convolution of the teacher becomes a `StudentUnit` whose forward pass is exactly what the
exported INT8 model executes:

    W' = W * s,  b' = b * s + t        (norm folded: s = gamma * alive / sigma, t = (beta - mu * s) * alive)
    y  = act(conv(x, fakequant_per_channel(W'), b'))  ->  per-tensor int8 activation fake-quant

The per-image InstanceNorm of the teacher (slow and lossy in TFLite INT8) is replaced by a fixed
per-channel normalisation (population statistics mu/sigma, calibrated layer by layer) whose affine
`gamma` is the GS channel scale, or (`norm="image"`) by the INT8 per-image normalisation of
`compress/image_norm.py` followed by the same gamma and beta. The residual trunk is one coupled channel group with a shared,
non-negative `trunk gate` that multiplies the output of every unit that writes into the trunk.
A channel whose gamma (or gate) is zero emits exactly zero (its shift is masked too), so the slim
model that physically drops it computes the same function. The teacher's stride-2 ConvTranspose
(k3, p1, output_padding 1) becomes an exactly equivalent sub-pixel convolution (zero-pad right and
bottom, 2x2 conv to 4*C channels, depth-to-space): plain int8 CONV_2D + DEPTH_TO_SPACE on mobile.
"""
from __future__ import annotations

from dataclasses import dataclass, replace
from typing import Callable

import torch
import torch.nn.functional as F
from torch import nn

from .colour import HIDDEN, ColourHead
from .config import EXACT_IMAGE_NORM, FIXED_NORM
from .image_norm import ImageNorm
from .macs import count_spec_macs, unit_output_sizes
from .quant import INPUT_SCALE, TANH_SCALE, ActQuant, fake_quant_weight
from .subpixel import convtranspose_to_subpixel
from .zoo.spec import GeneratorSpec, UnitSpec, fold_colour_order

TRUNK = "trunk"
NORM_KEY = "student_norm"          # GeneratorSpec.extra key: how the student normalises
NORM_EPS = 1e-5
Grade = Callable[[torch.Tensor], torch.Tensor]


@dataclass(frozen=True)
class ChannelGroup:
    """A set of channels pruned together: one scale vector, one alive mask."""

    name: str
    size: int
    producers: tuple[str, ...]   # units whose output channels are this group
    consumers: tuple[str, ...]   # units whose input channels are this group


class StudentUnit(nn.Module):
    """One foldable conv (+norm +act) with per-channel weight and per-tensor activation fake-quant."""

    def __init__(self, spec: UnitSpec, prunable: bool, in_trunk: bool, norm: str = FIXED_NORM) -> None:
        super().__init__()
        self.spec = spec
        # a per-image normalisation of the conv output instead of the folded fixed norm
        self.image_norm = ImageNorm(exact=norm == EXACT_IMAGE_NORM) if spec.norm and norm != FIXED_NORM else None
        self.prunable = prunable  # its gamma is a GS channel scale with its own group
        self.in_trunk = in_trunk  # its output is multiplied by the shared trunk gate
        conv_out = spec.out_ch * 4 if spec.kind == "up" else spec.out_ch
        k = 2 if spec.kind == "up" else spec.kernel
        self.weight = nn.Parameter(torch.empty(conv_out, spec.in_ch, k, k))
        nn.init.kaiming_normal_(self.weight, nonlinearity="relu")
        self.bias = nn.Parameter(torch.zeros(conv_out))
        if spec.norm:
            self.gamma = nn.Parameter(torch.ones(spec.out_ch))
            self.beta = nn.Parameter(torch.zeros(spec.out_ch))
            self.register_buffer("mu", torch.zeros(spec.out_ch))
            self.register_buffer("sigma", torch.ones(spec.out_ch))
        self.register_buffer("alive", torch.ones(spec.out_ch))
        self.conv_quant = ActQuant() if self.image_norm is not None else None  # int8 conv output before the norm
        self.register_buffer("source", torch.arange(spec.out_ch))  # the teacher channel of each output channel
        self.taps: dict[str, torch.Tensor] | None = None  # when set, forward records its pre-activation
        self.pre_quant = ActQuant() if spec.act == "tanh" else None
        self.out_quant = ActQuant(fixed=(TANH_SCALE, 0)) if spec.act == "tanh" else ActQuant()
        self.quantise = True
        self.calibrating = False

    def channel_affine(self, gate: torch.Tensor | None) -> tuple[torch.Tensor, torch.Tensor]:
        """Per output channel (scale s, shift t) after the norm, masks and trunk gate applied.

        Fixed norm: the folded gamma / sigma and beta - mu * gamma / sigma. Per-image norm: gamma and
        beta, applied to the standardised conv output (`image_normalised`).
        """
        if self.spec.norm and self.image_norm is None:
            s = self.gamma / self.sigma
            t = self.beta - self.mu * s
        elif self.spec.norm:
            s, t = self.gamma, self.beta
        else:
            s = torch.ones_like(self.alive)
            t = torch.zeros_like(self.alive)
        m = self.alive if gate is None else self.alive * gate
        return s * m, t * m

    def folded(self, gate: torch.Tensor | None = None,
               in_alive: torch.Tensor | None = None) -> tuple[torch.Tensor, torch.Tensor]:
        """Folded float weight and bias of the conv (before weight quantisation): what the exporter slices.

        Fixed norm: the whole channel affine is folded in. Per-image norm: only the population
        standardisation 1/sigma, -mu/sigma, so every channel enters the int8 grid at about unit variance
        (the channel affine comes after the per-image statistics). Weights reading dead input channels
        are zeroed (those inputs are always zero), so each output channel's quantisation scale equals
        the one of the physically slimmed conv.
        """
        if self.image_norm is not None:
            s = 1.0 / self.sigma
            t = -self.mu * s
        else:
            s, t = self.channel_affine(gate)
        if self.spec.kind == "up":
            s, t = s.repeat_interleave(4), t.repeat_interleave(4)
        weight = self.weight * s[:, None, None, None]
        if in_alive is not None:
            weight = weight * in_alive[None, :, None, None]
        return weight, self.bias * s + t

    def conv(self, x: torch.Tensor, weight: torch.Tensor, bias: torch.Tensor) -> torch.Tensor:
        """The unit's padding + convolution (+ depth-to-space for "up" units)."""
        u = self.spec
        if u.kind == "up":
            return F.pixel_shuffle(F.conv2d(F.pad(x, (0, 1, 0, 1)), weight, bias), 2)
        if u.pad and u.pad_mode == "reflect":
            return F.conv2d(F.pad(x, (u.pad,) * 4, mode="reflect"), weight, bias, u.stride)
        return F.conv2d(x, weight, bias, u.stride, padding=u.pad)

    @torch.no_grad()
    def calibrate_norm(self, x: torch.Tensor) -> None:
        """Set mu/sigma to the population statistics of this unit's conv output on batch `x`."""
        raw = self.conv(x, self.weight, self.bias)
        self.mu.copy_(raw.mean(dim=(0, 2, 3)))
        self.sigma.copy_(torch.sqrt(raw.var(dim=(2, 3), unbiased=False).mean(0) + NORM_EPS))

    def image_normalised(self, x: torch.Tensor, gate: torch.Tensor | None,
                         in_alive: torch.Tensor | None) -> torch.Tensor:
        """conv -> per-image, per-channel standardisation -> channel scale and shift (masked, gated).

        The exact form rescales eps by 1/sigma**2 (the conv carries 1/sigma): at init it is the
        teacher's InstanceNorm. The scale and shift are a 1x1 depthwise conv when exported: one int8
        weight per channel is exact on its per-channel grid, so it needs no fake quantiser.
        """
        weight, bias = self.folded(None, in_alive)
        if self.quantise:
            weight = fake_quant_weight(weight)
        z = self.conv_quant(self.conv(x, weight, bias))
        n = self.image_norm(z, NORM_EPS / self.sigma.square())
        s, t = self.channel_affine(gate)
        return n * s[None, :, None, None] + t[None, :, None, None]

    def forward(self, x: torch.Tensor, gate: torch.Tensor | None = None,
                in_alive: torch.Tensor | None = None, grade: Grade | None = None) -> torch.Tensor:
        """`grade`: applied to the quantised pre-activation of the tanh head (the colour head)."""
        if self.calibrating and self.spec.norm:
            self.calibrate_norm(x)
        if self.image_norm is not None:
            y = self.image_normalised(x, gate, in_alive)
        else:
            weight, bias = self.folded(gate, in_alive)
            if self.quantise:
                weight = fake_quant_weight(weight)
            y = self.conv(x, weight, bias)
        if self.taps is not None:
            self.taps[self.spec.name] = y
        if self.spec.act == "relu":
            y = torch.relu(y)
        elif self.spec.act == "tanh":
            y = self.pre_quant(y)
            y = torch.tanh(grade(y) if grade is not None else y)
        return self.out_quant(y)


class StudentGenerator(nn.Module):
    """Masked, quantisation-aware student over a GeneratorSpec (RGB in, RGB out, [-1, 1])."""

    def __init__(self, spec: GeneratorSpec) -> None:
        super().__init__()
        self.gen_spec = spec
        self.norm = spec.extra.get(NORM_KEY, FIXED_NORM)
        trunk_units = {spec.stem[-1].name} | {b.name for _, b in spec.blocks}
        self.units = nn.ModuleDict({
            u.name.replace(".", "_"): StudentUnit(u, prunable=u.norm and u.name not in trunk_units,
                                                  in_trunk=u.name in trunk_units, norm=self.norm)
            for u in spec.units()
        })
        trunk_ch = spec.stem[-1].out_ch
        self.trunk_gate = nn.Parameter(torch.ones(trunk_ch))
        self.register_buffer("trunk_alive", torch.ones(trunk_ch))
        self.input_quant = ActQuant(fixed=(INPUT_SCALE, 0))
        self.add_quants = nn.ModuleList([ActQuant() for _ in spec.blocks])
        self.colour: ColourHead | None = None  # attached after GS training (compress.colour_fit)

    def canonical_keys(self, state: dict[str, torch.Tensor]) -> dict[str, torch.Tensor]:
        """`state` with each unit's `source` (teacher channel indices) filled in where a checkpoint
        written before it was recorded lacks it. Only layer-wise distillation reads it, which such a
        checkpoint never trained with; the identity is exact for a student that was not compacted."""
        state = dict(state)
        for key, unit in self.units.items():
            state.setdefault(f"units.{key}.source", torch.arange(unit.spec.out_ch))
        return state

    def attach_colour_head(self, hidden: int = HIDDEN) -> ColourHead:
        """A fresh identity-grade colour head reading the residual trunk."""
        self.colour = ColourHead(self.gen_spec.stem[-1].out_ch, hidden).to(self.trunk_gate.device)
        return self.colour

    # ----- structure -----
    def unit(self, name: str) -> StudentUnit:
        return self.units[name.replace(".", "_")]

    def groups(self) -> dict[str, ChannelGroup]:
        """Prunable channel groups: one per prunable unit, plus the coupled residual trunk."""
        spec = self.gen_spec
        order = spec.units()
        groups: dict[str, ChannelGroup] = {}
        trunk_consumers = tuple(a.name for a, _ in spec.blocks) + (spec.tail[0].name,)
        trunk_producers = (spec.stem[-1].name,) + tuple(b.name for _, b in spec.blocks)
        groups[TRUNK] = ChannelGroup(TRUNK, spec.stem[-1].out_ch, trunk_producers, trunk_consumers)
        for i, u in enumerate(order):
            if self.unit(u.name).prunable:
                groups[u.name] = ChannelGroup(u.name, u.out_ch, (u.name,), (order[i + 1].name,))
        return groups

    def units_in_trunk(self) -> list[UnitSpec]:
        """Units whose output is a trunk tensor (multiplied by the trunk gate)."""
        return [u for u in self.gen_spec.units() if self.unit(u.name).in_trunk]

    def scale_of(self, group: str) -> torch.Tensor:
        """The GS scale vector (gamma, or the trunk gate) of a group."""
        return self.trunk_gate if group == TRUNK else self.unit(group).gamma

    def alive_of(self, group: str) -> torch.Tensor:
        return self.trunk_alive if group == TRUNK else self.unit(group).alive

    def gate(self) -> torch.Tensor:
        return self.trunk_gate * self.trunk_alive

    def channel_counts(self) -> dict[str, tuple[int, int]]:
        """Per unit (kept input channels, kept output channels)."""
        groups = self.groups()
        out_of = {p: g for g in groups.values() for p in g.producers}
        in_of = {c: g for g in groups.values() for c in g.consumers}
        # one device->host copy for all groups (a sync per group made GPU pruning CPU-bound)
        kept = dict(zip(groups, torch.stack([self.alive_of(g).sum() for g in groups]).tolist()))
        counts = {}
        for u in self.gen_spec.units():
            cin = int(kept[in_of[u.name].name]) if u.name in in_of else u.in_ch
            cout = int(kept[out_of[u.name].name]) if u.name in out_of else u.out_ch
            counts[u.name] = (cin, cout)
        return counts

    def macs(self, height: int = 256, width: int = 256) -> int:
        counts = self.channel_counts()
        convs = sum(count_spec_macs(self.gen_spec, counts, height, width, up_kernel=2).values())
        if self.norm != FIXED_NORM:
            sizes = unit_output_sizes(self.gen_spec, height, width)
            convs += sum(unit.image_norm.macs(counts[u.name][1], *sizes[u.name]) for u in self.gen_spec.units()
                         if (unit := self.unit(u.name)).image_norm is not None)
        return convs + (self.colour.macs(self.trunk_kept()) if self.colour is not None else 0)

    def trunk_kept(self) -> int:
        return int(self.trunk_alive.sum())

    def slim_params(self) -> int:
        """Parameters of the physically slimmed model (folded conv weights + biases)."""
        total = self.colour.params(self.trunk_kept()) if self.colour is not None else 0
        counts = self.channel_counts()
        for u in self.gen_spec.units():
            cin, cout = counts[u.name]
            k = 2 if u.kind == "up" else u.kernel
            mult = 4 if u.kind == "up" else 1
            total += cout * mult * (cin * k * k + 1)
            norm = self.unit(u.name).image_norm
            if norm is not None:  # its 1/sqrt ramps and the channel scale and shift
                total += norm.params() + 2 * cout
        return total

    def clip_prenorm_ranges(self, fraction: float) -> None:
        """Per-image norm: the int8 grid of each conv output before its norm covers `fraction` of the observed range.

        The norm divides each channel by its per-image deviation, so the rounding noise of a channel
        that is quiet in this image is amplified; the range is set by rare outliers, and a clipped
        grid gives the bulk finer steps.
        """
        for m in self.units.values():
            if m.conv_quant is not None:
                m.conv_quant.range_fraction = fraction

    def record_taps(self, on: bool) -> dict[str, torch.Tensor] | None:
        """Start (a fresh dict filled by the next forward: unit name -> pre-activation) or stop."""
        taps: dict[str, torch.Tensor] | None = {} if on else None
        for m in self.units.values():
            m.taps = taps
        return taps

    # ----- forward -----
    def input_alive(self) -> dict[str, torch.Tensor | None]:
        """Per unit, the alive mask of its input channels (None: input not prunable)."""
        return {c: self.alive_of(g.name) for g in self.groups().values() for c in g.consumers}

    def _runner(self) -> Callable[..., torch.Tensor]:
        """run(unit spec, input[, grade]) with this forward pass's trunk gate and input masks."""
        gate, in_alive = self.gate(), self.input_alive()

        def run(u: UnitSpec, h: torch.Tensor, grade: Grade | None = None) -> torch.Tensor:
            unit = self.unit(u.name)
            return unit(h, gate if unit.in_trunk else None, in_alive.get(u.name), grade)

        return run

    def encode(self, x: torch.Tensor) -> torch.Tensor:
        """Input -> the quantised residual trunk tensor entering the decoder."""
        run = self._runner()
        y = self.input_quant(x)
        for u in self.gen_spec.stem:
            y = run(u, y)
        for (a, b), add_quant in zip(self.gen_spec.blocks, self.add_quants):
            y = add_quant(y + run(b, run(a, y)))
        return y

    def decode(self, trunk: torch.Tensor, grade: Grade | None = None) -> torch.Tensor:
        """Trunk -> output; `grade` acts on the head's pre-activation (identity when None)."""
        run = self._runner()
        y = trunk
        for u in self.gen_spec.tail:
            y = run(u, y, grade if u.act == "tanh" else None)
        return y

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        trunk = self.encode(x)
        if self.colour is None:
            return self.decode(trunk)
        gain, shift = self.colour.modulation(trunk, self.trunk_alive)
        return self.decode(trunk, lambda pre: self.colour.grade(pre, gain, shift))

    @torch.no_grad()
    def calibrate(self, images: torch.Tensor) -> None:
        """Layer-by-layer population statistics and initial activation ranges from `images`."""
        was_training = self.training
        self.train()
        for m in self.units.values():
            m.calibrating = True
        try:
            self(images)
        finally:
            for m in self.units.values():
                m.calibrating = False
            self.train(was_training)


def student_from_teacher(teacher: nn.Module, calibration_images: torch.Tensor | None = None,
                         norm: str = FIXED_NORM) -> StudentGenerator:
    """Build a student with the teacher's weights (ConvTranspose turned sub-pixel, norms frozen or per image)."""
    spec = teacher.spec()
    if norm != FIXED_NORM:
        spec = replace(spec, extra={**spec.extra, NORM_KEY: norm})
    student = StudentGenerator(spec)
    modules = teacher.unit_modules()
    with torch.no_grad():
        for u in spec.units():
            conv, norm_module = modules[u.name]
            unit = student.unit(u.name)
            w, b = conv.weight.detach().clone(), conv.bias.detach().clone()
            if u.kind == "up":
                w, b = convtranspose_to_subpixel(w), b.repeat_interleave(4)
            w, b = fold_colour_order(spec, u, w, b)  # the student takes and returns RGB
            unit.weight.copy_(w)
            unit.bias.copy_(b)
            if norm_module is not None:
                unit.gamma.copy_(norm_module.weight.detach())
                unit.beta.copy_(norm_module.bias.detach())
    if calibration_images is not None:
        student.calibrate(calibration_images)
        balance_trunk_gate(student, calibration_images)
    return student


@torch.no_grad()
def balance_trunk_gate(student: StudentGenerator, images: torch.Tensor) -> None:
    """Move each trunk channel's magnitude into the shared gate, keeping the function unchanged.

    The gate starts at rms(channel) / mean rms of the trunk tensor entering the decoder, and every
    trunk producer's (gamma, beta) is divided by it. |gate| then ranks trunk channels by how much
    signal they carry, on the same relative scale as the other groups' |gamma|.
    """
    seen: list[torch.Tensor] = []
    first_tail = student.unit(student.gen_spec.tail[0].name)
    handle = first_tail.register_forward_pre_hook(lambda _m, args: seen.append(args[0]))
    try:
        was_training = student.training
        student.eval()
        student(images)
        student.train(was_training)
    finally:
        handle.remove()
    rms = seen[0].pow(2).mean(dim=(0, 2, 3)).sqrt()
    gate = (rms / rms.mean().clamp_min(1e-12)).clamp_min(1e-3)
    for name in (u.name for u in student.units_in_trunk()):
        unit = student.unit(name)
        unit.gamma.div_(gate)
        unit.beta.div_(gate)
    student.trunk_gate.copy_(gate * student.trunk_gate)
