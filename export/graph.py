"""A framework-neutral description of a slim generator, and its torch executor.

`ExportGraph` is what every backend (torch, ONNX, TFLite, Core ML) is built from: the stem /
residual trunk / tail of `compress.zoo.spec.GeneratorSpec`, each unit reduced to one plain
convolution (folded weights, bias), an optional instance norm (teacher only), an activation and,
for a quantised student, the (scale, zero_point) of every activation quantiser. Weights are in
torch layout: conv / up [out, in, kh, kw] (up: 4*C outputs in pixel_shuffle order c*4 + j),
convT [in, out, kh, kw] (the teacher's stride-2 ConvTranspose, k3 p1 output_padding 1).

`GraphModule` runs an ExportGraph in torch with exactly the student's arithmetic
(`compress.quant`): with `quantise=True` it fake-quantises the input, every weight (per channel)
and every activation where the student does.
"""
from __future__ import annotations

from dataclasses import dataclass, field, replace
from typing import Callable, Literal

import torch
import torch.nn.functional as F
from torch import nn

from compress.colour import ColourHead
from compress.image_norm import standardise
from compress.quant import QMAX, QMIN, fake_quant_weight

LayerKind = Literal["conv", "up", "convT"]


@dataclass(frozen=True)
class QParams:
    """Per-tensor affine int8 grid: real = (q - zero_point) * scale."""

    scale: float
    zero_point: int

    @property
    def range(self) -> tuple[float, float]:
        """The real interval the grid covers (what a FakeQuant min/max op takes)."""
        return (QMIN - self.zero_point) * self.scale, (QMAX - self.zero_point) * self.scale


@dataclass(frozen=True)
class InstanceNorm:
    """Per-image instance normalisation with affine (the teacher's; never in a student)."""

    gamma: torch.Tensor
    beta: torch.Tensor
    eps: float


@dataclass
class ImageStandardise:
    """A student's INT8 per-image normalisation (compress/image_norm.py) and its channel scale and shift.

    z (conv output) -> conv_q; mean = MEAN_hw(z) -> mean_q; d = z - mean -> diff_q;
    var = MEAN_hw(d * d -> square_q) -> var_q; r = conv1x1(relu6(conv1x1(var, w1, b1)) -> hidden_q, w2, b2)
    -> inv_q, the piecewise-linear 1/sqrt run over channels laid out as a row; n = d * r -> norm_q;
    y = n * scale + shift (a 1x1 depthwise conv), then the layer's activation.
    """

    w1: torch.Tensor       # [K, 1, 1, 1]
    b1: torch.Tensor       # [K]
    w2: torch.Tensor       # [1, K, 1, 1]
    b2: torch.Tensor       # [1]
    scale: torch.Tensor    # [C]
    shift: torch.Tensor    # [C]
    conv_q: QParams | None = None
    mean_q: QParams | None = None
    diff_q: QParams | None = None
    square_q: QParams | None = None
    var_q: QParams | None = None
    hidden_q: QParams | None = None
    inv_q: QParams | None = None
    norm_q: QParams | None = None

    def quantisers(self) -> list[QParams | None]:
        return [self.conv_q, self.mean_q, self.diff_q, self.square_q, self.var_q, self.hidden_q, self.inv_q,
                self.norm_q]

    def tensors(self) -> list[torch.Tensor]:
        return [self.w1, self.b1, self.w2, self.b2, self.scale, self.shift]

    def depthwise(self) -> torch.Tensor:
        """The channel scale as a 1x1 depthwise conv weight [C, 1, 1, 1]."""
        return self.scale.reshape(-1, 1, 1, 1)


@dataclass
class Layer:
    """One convolution (+ depth-to-space for "up") + optional instance norm + activation."""

    name: str
    kind: LayerKind
    weight: torch.Tensor
    bias: torch.Tensor
    stride: int = 1
    pad: int = 0
    pad_mode: str = "zero"
    act: str = "relu"
    norm: InstanceNorm | None = None
    out_q: QParams | None = None  # activation quantiser after the activation
    pre_q: QParams | None = None  # quantiser before tanh (the head)
    standardise: ImageStandardise | None = None  # a student's per-image normalisation after the conv

    @property
    def out_channels(self) -> int:
        if self.kind == "convT":
            return self.weight.shape[1]
        return self.weight.shape[0] // 4 if self.kind == "up" else self.weight.shape[0]

    @property
    def in_channels(self) -> int:
        return self.weight.shape[0] if self.kind == "convT" else self.weight.shape[1]


@dataclass
class ColourGrade:
    """The student's per-image colour head (compress/colour.py), slimmed and folded.

    f = [mean_hw(trunk), max_hw(trunk)] -> pool_q; h = relu(conv1x1(f, w1, b1)) -> hidden_q;
    gain = conv1x1(h, wg, bg) -> gain_q; shift = conv1x1(h, wt, bt) -> shift_q;
    tanh input = ((pre * gain) -> mul_q) + shift -> grade_q, pre being the head's pre_q output.
    """

    w1: torch.Tensor
    b1: torch.Tensor
    wg: torch.Tensor
    bg: torch.Tensor
    wt: torch.Tensor
    bt: torch.Tensor
    pool_q: QParams | None = None
    hidden_q: QParams | None = None
    gain_q: QParams | None = None
    shift_q: QParams | None = None
    mul_q: QParams | None = None
    grade_q: QParams | None = None

    def quantisers(self) -> list[QParams | None]:
        return [self.pool_q, self.hidden_q, self.gain_q, self.shift_q, self.mul_q, self.grade_q]

    def convs(self) -> list[tuple[torch.Tensor, torch.Tensor]]:
        """(weight, bias) of its three 1x1 convolutions."""
        return [(self.w1, self.b1), (self.wg, self.bg), (self.wt, self.bt)]

    def params(self) -> int:
        return sum(w.numel() + b.numel() for w, b in self.convs())

    def with_weights(self, convert: Callable[[torch.Tensor], torch.Tensor]) -> ColourGrade:
        """A copy with `convert` applied to the three conv weights."""
        return replace(self, w1=convert(self.w1), wg=convert(self.wg), wt=convert(self.wt))


@dataclass
class ExportGraph:
    """stem -> residual blocks (x + b(a(x)), then add quantiser) -> tail; RGB in [-1, 1] -> RGB.

    With a `colour` grade, the tanh head's input is graded per image from the trunk's statistics.
    """

    arch: str
    stem: list[Layer]
    blocks: list[tuple[Layer, Layer]]
    tail: list[Layer]
    input_q: QParams | None = None
    add_q: list[QParams | None] = field(default_factory=list)
    colour: ColourGrade | None = None

    def layers(self) -> list[Layer]:
        out = list(self.stem)
        for a, b in self.blocks:
            out += [a, b]
        return out + list(self.tail)

    def act_quantisers(self) -> list[QParams | None]:
        """Every activation quantiser in execution-independent order (input, adds, outputs, pre-tanh)."""
        acts = [self.input_q, *self.add_q] + [l.out_q for l in self.layers()]
        acts += [l.pre_q for l in self.layers() if l.act == "tanh"]
        acts += [q for l in self.layers() if l.standardise for q in l.standardise.quantisers()]
        return acts + (self.colour.quantisers() if self.colour else [])

    @property
    def quantisable(self) -> bool:
        """True when every activation quantiser has a range (an INT8 export is possible)."""
        return all(q is not None for q in self.act_quantisers()) and not any(
            l.norm or l.kind == "convT" for l in self.layers())

    def params(self) -> int:
        """Conv weights + biases (+ norm affine for a teacher)."""
        total = 0
        for l in self.layers():
            total += l.weight.numel() + l.bias.numel()
            if l.norm is not None:
                total += l.norm.gamma.numel() + l.norm.beta.numel()
            if l.standardise is not None:
                total += sum(t.numel() for t in l.standardise.tensors())
        return total + (self.colour.params() if self.colour else 0)


def with_grid_weights(graph: ExportGraph) -> ExportGraph:
    """A copy whose weights are replaced by their per-channel int8 fake-quantised values."""
    def grid(layer: Layer) -> Layer:
        st = layer.standardise
        if st is not None:
            st = replace(st, w1=fake_quant_weight(st.w1).detach(), w2=fake_quant_weight(st.w2).detach())
        return replace(layer, weight=fake_quant_weight(layer.weight).detach(), standardise=st)

    return replace(graph, stem=[grid(l) for l in graph.stem], blocks=[(grid(a), grid(b)) for a, b in graph.blocks],
                   tail=[grid(l) for l in graph.tail],
                   colour=graph.colour.with_weights(lambda w: fake_quant_weight(w).detach()) if graph.colour else None)


def conv_forward(layer: Layer, x: torch.Tensor, weight: torch.Tensor) -> torch.Tensor:
    """Padding + convolution (+ depth-to-space) of one layer, bias included."""
    if layer.kind == "up":
        return F.pixel_shuffle(F.conv2d(F.pad(x, (0, 1, 0, 1)), weight, layer.bias), 2)
    if layer.kind == "convT":
        return F.conv_transpose2d(x, weight, layer.bias, stride=2, padding=1, output_padding=1)
    if layer.pad and layer.pad_mode == "reflect":
        return F.conv2d(F.pad(x, (layer.pad,) * 4, mode="reflect"), weight, layer.bias, layer.stride)
    return F.conv2d(x, weight, layer.bias, layer.stride, padding=layer.pad)


def instance_norm(x: torch.Tensor, norm: InstanceNorm) -> torch.Tensor:
    mean = x.mean(dim=(2, 3), keepdim=True)
    var = x.var(dim=(2, 3), keepdim=True, unbiased=False)
    return (x - mean) / torch.sqrt(var + norm.eps) * norm.gamma[None, :, None, None] + norm.beta[None, :, None, None]


def fake_quant(x: torch.Tensor, q: QParams | None) -> torch.Tensor:
    return x if q is None else torch.fake_quantize_per_tensor_affine(x, q.scale, q.zero_point, QMIN, QMAX)


class GraphModule(nn.Module):
    """Torch executor of an ExportGraph (fp32, or the student's fake-quant arithmetic)."""

    def __init__(self, graph: ExportGraph, quantise: bool = False, weights_on_grid: bool = False) -> None:
        """`weights_on_grid`: take the weights as already fake-quantised (see `with_grid_weights`)."""
        super().__init__()
        if quantise and not graph.quantisable:
            raise ValueError("this graph has no activation ranges for every quantiser")
        self.graph = graph
        self.quantise = quantise
        self.weights_on_grid = weights_on_grid
        # module state (not loose tensors), so torch.jit.trace refers to them instead of inlining constants
        for i, layer in enumerate(graph.layers()):
            tensors = [layer.weight, layer.bias] + ([layer.norm.gamma, layer.norm.beta] if layer.norm else [])
            tensors += layer.standardise.tensors() if layer.standardise else []
            for j, t in enumerate(tensors):
                self.register_buffer(f"t{i}_{j}", t)
        for j, t in enumerate(t for wb in (graph.colour.convs() if graph.colour else []) for t in wb):
            self.register_buffer(f"colour{j}", t)

    def _fq(self, x: torch.Tensor, q: QParams | None) -> torch.Tensor:
        return fake_quant(x, q) if self.quantise else x

    def _w(self, w: torch.Tensor) -> torch.Tensor:
        return fake_quant_weight(w) if self.quantise and not self.weights_on_grid else w

    def _layer(self, layer: Layer, x: torch.Tensor, grade: tuple[torch.Tensor, torch.Tensor] | None = None
               ) -> torch.Tensor:
        y = conv_forward(layer, x, self._w(layer.weight))
        if layer.norm is not None:
            y = instance_norm(y, layer.norm)
        if layer.standardise is not None:
            y = self._standardise(y, layer.standardise)
        if layer.act == "relu":
            y = torch.relu(y)
        elif layer.act == "tanh":
            y = self._fq(y, layer.pre_q)
            if grade is not None:
                c = self.graph.colour
                y = self._fq(self._fq(y * grade[0], c.mul_q) + grade[1], c.grade_q)
            y = torch.tanh(y)
        return self._fq(y, layer.out_q)

    def _standardise(self, z: torch.Tensor, st: ImageStandardise) -> torch.Tensor:
        """The per-image normalisation (the student's own arithmetic) and the channel affine."""
        c = len(st.scale)
        ramps = (self._w(st.w1), st.b1, self._w(st.w2), st.b2)
        n = standardise(self._fq(z, st.conv_q), lambda name, x: self._fq(x, getattr(st, name)), ramps, c)
        return F.conv2d(n, self._w(st.depthwise()), st.shift, groups=c)

    def _modulation(self, trunk: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """(gain, shift) of the colour grade, [B, 3, 1, 1] each."""
        c = self.graph.colour
        f = self._fq(ColourHead.pooled(trunk), c.pool_q)
        h = self._fq(torch.relu(F.conv2d(f, self._w(c.w1), c.b1)), c.hidden_q)
        return self._fq(F.conv2d(h, self._w(c.wg), c.bg), c.gain_q), self._fq(F.conv2d(h, self._w(c.wt), c.bt), c.shift_q)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        g = self.graph
        y = self._fq(x, g.input_q)
        for layer in g.stem:
            y = self._layer(layer, y)
        for i, (a, b) in enumerate(g.blocks):
            y = y + self._layer(b, self._layer(a, y))
            if self.quantise:
                y = fake_quant(y, g.add_q[i])
        grade = self._modulation(y) if g.colour else None
        for layer in g.tail:
            y = self._layer(layer, y, grade if layer.act == "tanh" else None)
        return y
