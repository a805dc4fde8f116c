"""Physical channel removal: a masked QAT student -> an `ExportGraph` without its dead channels.

Why slicing alone is exact here (the issue asks to fold "the constant a pruned channel emits" into
the next layer's bias): in this student a channel is dead when its group's `alive` mask is 0, and
`StudentUnit.channel_affine` masks the folded norm's scale *and* shift (and the trunk gate) with it,
so a dead channel's folded weight row and bias are exactly 0. Its pre-activation is 0, relu(0) = 0,
and an int8 activation quantiser with an integer zero point maps 0 to 0. A dead channel therefore
emits exactly zero (no constant), and `StudentUnit.folded(gate, in_alive)` already zeroes the
weights that read dead inputs. Cutting those rows and columns changes no sum, and per-channel weight
scales (max |w| over the kept inputs) are unchanged. Norms are folded by `folded()` itself. A channel
with gamma 0 but alive 1 emits a constant and is *kept* (it is not pruned), so nothing is lost.
The colour head pools the trunk: a dead trunk channel's mean and max are 0, so its two input
columns of the head's first 1x1 conv are cut the same way.

Torch-Pruning's DependencyGraph is not used: the student's explicit group table
(`StudentGenerator.groups()`, residual trunk as one coupled group) already is the dependency graph,
and a direct slicer over it is shorter and exact by construction.
"""
from __future__ import annotations

import torch
from torch import nn

from compress.errors import UnsupportedNormError
from compress.quant import ActQuant
from compress.student import TRUNK, StudentGenerator, StudentUnit
from compress.zoo.spec import Generator, GeneratorSpec, UnitSpec, fold_colour_order

from .errors import ExportError
from .graph import ColourGrade, ExportGraph, ImageStandardise, InstanceNorm, Layer, QParams


def act_qparams(aq: ActQuant | None) -> QParams | None:
    """The grid an ActQuant applies (None when it has no range and so does not quantise)."""
    if aq is None or not (aq.is_fixed or bool(aq.initialised)):
        return None
    scale, zp = aq.qparams()
    return QParams(float(scale), int(zp))


def _keep(mask: torch.Tensor | None, size: int) -> torch.Tensor:
    """Indices of alive channels (all when the channels are not prunable)."""
    if mask is None:
        return torch.arange(size)
    return torch.nonzero(mask > 0).flatten()


def _assemble(spec: GeneratorSpec, layers: dict[str, Layer], **kw: object) -> ExportGraph:
    return ExportGraph(spec.arch, [layers[u.name] for u in spec.stem],
                       [(layers[a.name], layers[b.name]) for a, b in spec.blocks],
                       [layers[u.name] for u in spec.tail], **kw)


@torch.no_grad()
def slim_graph(student: StudentGenerator) -> ExportGraph:
    """The physically slim student: alive channels only, folded weights, the QAT activation grids."""
    spec = student.gen_spec
    groups = student.groups()
    out_group = {p: g.name for g in groups.values() for p in g.producers}
    gate, in_alive = student.gate(), student.input_alive()
    layers: dict[str, Layer] = {}
    for u in spec.units():
        unit = student.unit(u.name)
        weight, bias = unit.folded(gate if unit.in_trunk else None, in_alive.get(u.name))
        out_mask = student.alive_of(out_group[u.name]) if u.name in out_group else None
        rows = _keep(out_mask, u.out_ch)
        if u.kind == "up":  # 4 sub-channels (pixel_shuffle order c*4 + j) per output channel
            rows = (rows[:, None] * 4 + torch.arange(4)).flatten()
        cols = _keep(in_alive.get(u.name), u.in_ch)
        layers[u.name] = Layer(
            u.name, u.kind, weight[rows][:, cols].detach().clone().float(), bias[rows].detach().clone().float(),
            u.stride, u.pad, u.pad_mode, u.act, None, act_qparams(unit.out_quant), act_qparams(unit.pre_quant),
            slim_standardise(unit, gate if unit.in_trunk else None, _keep(out_mask, u.out_ch)))
    return _assemble(spec, layers, input_q=act_qparams(student.input_quant),
                     add_q=[act_qparams(q) for q in student.add_quants], colour=slim_colour(student))


def slim_standardise(unit: StudentUnit, gate: torch.Tensor | None, rows: torch.Tensor) -> ImageStandardise | None:
    """A unit's per-image normalisation with the channel scale and shift of its alive channels."""
    norm = unit.image_norm
    if norm is None:
        return None
    if norm.exact:
        raise ExportError(f"unit {unit.spec.name} uses the float-only exact per-image norm (--norm image-exact), "
                          "which has no INT8 form; train with --norm image to export")
    scale, shift = unit.channel_affine(gate)
    quants = [act_qparams(unit.conv_quant)] + [act_qparams(q) for q in norm.quantisers()]
    tensors = [t.detach().clone().float() for t in (norm.w1, norm.b1, norm.w2, norm.b2)]
    return ImageStandardise(*tensors, scale[rows].detach().clone().float(), shift[rows].detach().clone().float(),
                            *quants)


@torch.no_grad()
def slim_colour(student: StudentGenerator) -> ColourGrade | None:
    """The colour head reading only the alive trunk channels (their mean and max features)."""
    head = student.colour
    if head is None:
        return None
    w1, b1 = head.folded_w1(student.trunk_alive)
    quants = [act_qparams(q) for q in head.quantisers()]
    return ColourGrade(w1.clone().float(), b1.clone().float(), head.wg.clone().float(), head.bg.clone().float(),
                       head.wt.clone().float(), head.bt.clone().float(), *quants)


def _teacher_norm(teacher: Generator, module: nn.Module | None) -> InstanceNorm | None:
    """The teacher's own reading of its norm module (the exported graph runs instance norms only)."""
    if module is None:
        return None
    try:
        affine = teacher.norm_affine(module)
    except UnsupportedNormError as err:
        raise ExportError(str(err)) from err
    return InstanceNorm(affine.gamma.detach().clone(), affine.beta.detach().clone(), affine.eps)


def _teacher_layer(teacher: Generator, u: UnitSpec, conv: nn.Module, norm: nn.Module | None,
                   spec: GeneratorSpec) -> Layer:
    weight, bias = conv.weight.detach().clone().float(), conv.bias.detach().clone().float()
    weight, bias = fold_colour_order(spec, u, weight, bias)  # RGB in and out (docs/CONTRACTS.md)
    kind = "convT" if u.kind == "up" else "conv"
    return Layer(u.name, kind, weight, bias, u.stride, u.pad, u.pad_mode, u.act, _teacher_norm(teacher, norm))


@torch.no_grad()
def teacher_graph(teacher: Generator) -> ExportGraph:
    """The teacher as it is (instance norms, ConvTranspose), RGB in and out, fp32 only."""
    spec = teacher.spec()
    modules = teacher.unit_modules()
    layers = {u.name: _teacher_layer(teacher, u, *modules[u.name], spec) for u in spec.units()}
    return _assemble(spec, layers)


def channel_table(student: StudentGenerator, teacher_spec: GeneratorSpec | None = None) -> dict[str, list[int]]:
    """{group name: [kept, original]} for the manifest; "original" is the teacher's width when given
    (a student compacted during training has a narrower spec than the teacher)."""
    widths = {u.name: u.out_ch for u in teacher_spec.units()} if teacher_spec else {}
    if teacher_spec:
        widths[TRUNK] = teacher_spec.stem[-1].out_ch
    return {name: [int(student.alive_of(name).sum()), widths.get(name, g.size)]
            for name, g in student.groups().items()}
