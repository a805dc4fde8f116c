"""ExportGraph -> TFLite flatbuffer, through a direct TensorFlow rebuild (NHWC) and TFLiteConverter.

INT8: the graph carries `tf.quantization.fake_quant_with_min_max_args` at exactly the places the
student fake-quantises (input, each unit's output, before tanh, after each residual add), with
min/max = (qmin - zp) * scale, (qmax - zp) * scale, and per-channel symmetric narrow-range weight
FakeQuant (scale max|w| / 127, the student's). The converter then takes the QAT grids as they
are (no calibration data; `tests/export` checks the tensor quantisation parameters of the file).

Layout notes: torch pixel_shuffle is CRD (channel c*4 + j), TF depth_to_space is DCR (j*C + c), so
an "up" conv's output channels are permuted. The teacher's ConvTranspose(k3, s2, p1, op1) is a
VALID conv2d_transpose (output 2H+1) cropped to rows/cols 1..2H. TensorFlow is imported lazily.

Reflection padding is written as slices + one concatenation per axis, not `tf.pad(mode="REFLECT")`:
TFLite's MIRROR_PAD is not delegated to XNNPACK, so each one splits the graph into separate delegate
partitions with a CPU-kernel hop in between. Measured on the quick student (256 px, INT8, 2 threads,
this 2-core x86 CPU): MIRROR_PAD 100-115 ms, slices + concat 35-41 ms, bit-identical int8 output.

Wide-kernel, full-resolution convolutions (the 7x7 stem with 3 input channels and the 7x7 head with 3
output channels) run as space-to-depth: pad, SPACE_TO_DEPTH(2), a 4x4 VALID conv with 4x the input and
output channels (each output phase holds all 49 taps of its channel, zeros elsewhere), DEPTH_TO_SPACE(2)
after the activation. Same products, same per-channel weight scales, same requantisation: the int8
output is unchanged, but XNNPACK gets channel counts it vectorises well.

A student's colour head (`ColourGrade`) is MEAN + REDUCE_MAX + CONCATENATION + three 1x1 CONV_2D on a
1x1 tensor, then a broadcast MUL and ADD on the head's pre-activation: all int8 ops.
"""
from __future__ import annotations

from typing import Any

import numpy as np
import torch

from compress.quant import WQMAX

from .graph import ExportGraph, ImageStandardise, Layer, QParams

IO_TYPES = ("int8", "uint8", "float")


def _tf() -> Any:
    import os

    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")
    os.environ.setdefault("TF_ENABLE_ONEDNN_OPTS", "0")
    import tensorflow as tf

    return tf


def _dcr_order(out_ch: int) -> torch.Tensor:
    """Permutation taking pixel_shuffle (CRD) channel order to depth_to_space (DCR) order."""
    return torch.tensor([c * 4 + j for j in range(4) for c in range(out_ch)])


def reflect_pad(tf: Any, x: Any, pad: int) -> Any:
    """NHWC reflection padding from STRIDED_SLICE + CONCATENATION (both XNNPACK-delegated, int8)."""
    for axis in (1, 2):
        n = int(x.shape[axis])

        def rows(i: int, axis: int = axis) -> Any:
            return x[:, i:i + 1] if axis == 1 else x[:, :, i:i + 1]

        before = [rows(i) for i in range(pad, 0, -1)]
        after = [rows(n - 1 - i) for i in range(1, pad + 1)]
        x = tf.concat(before + [x] + after, axis=axis)
    return x


def space_to_depth_kernel(w: torch.Tensor) -> torch.Tensor:
    """Stride-1 k x k kernel [out, in, k, k] -> the [4*out, 4*in, K, K] kernel (K = k // 2 + 1) of the
    same conv on a SPACE_TO_DEPTH(2) input, output channels in DEPTH_TO_SPACE order (TF: phase-major)."""
    out_ch, in_ch, k, _ = w.shape
    big_k = k // 2 + 1
    phases = []
    for pr in (0, 1):
        for pc in (0, 1):  # output phase (pr, pc) reads padded input rows 2m + pr + a: the kernel shifted by pr
            shifted = w.new_zeros(out_ch, in_ch, 2 * big_k, 2 * big_k)
            shifted[:, :, pr:pr + k, pc:pc + k] = w
            # tap row 2q + s -> (q, s); SPACE_TO_DEPTH puts sub-pixel (s_r, s_c) at channel (s_r*2 + s_c)*C + c
            split = shifted.view(out_ch, in_ch, big_k, 2, big_k, 2).permute(0, 3, 5, 1, 2, 4)
            phases.append(split.reshape(out_ch, 4 * in_ch, big_k, big_k))
    return torch.cat(phases)


def uses_space_to_depth(layer: Layer, height: int) -> bool:
    """Stride-1 "same" convolutions with a kernel of 5 or more on an even-sized input, not normalised
    (a per-image norm needs the statistics of whole channels, not of their phases)."""
    k = layer.weight.shape[-1]
    return (layer.kind == "conv" and layer.stride == 1 and k >= 5 and layer.pad == k // 2 and height % 2 == 0
            and layer.norm is None and layer.standardise is None)


def not_splat(bias: torch.Tensor) -> np.ndarray:
    """A bias whose entries are not all equal, as a numpy constant.

    Measured with the TF 2.21 converter: a per-channel conv bias whose values are all equal (a "splat"
    constant, e.g. the colour head's initial gain bias of ones) is quantised to int32 with the scale of
    channel 0 for every channel, so the other channels come out wrong by their scale ratio. Moving
    entry i by i float32 ulps (far below the int32 bias step) keeps the constant dense.
    """
    b = bias.detach().float().numpy().copy()
    if len(b) > 1 and np.all(b == b[0]) and b[0] != 0:
        b = b + np.arange(len(b), dtype=np.float32) * np.spacing(b[0])
    return b


class _Builder:
    """Emits the TF ops of one ExportGraph (fake-quantised or fp32)."""

    def __init__(self, graph: ExportGraph, quantise: bool) -> None:
        self.tf = _tf()
        self.graph = graph
        self.quantise = quantise

    def fq(self, x: Any, q: QParams | None) -> Any:
        if not self.quantise or q is None:
            return x
        lo, hi = q.range
        return self.tf.quantization.fake_quant_with_min_max_args(x, min=lo, max=hi, num_bits=8)

    def weight(self, w: torch.Tensor) -> Any:
        """torch [out, in, kh, kw] -> TF HWIO constant (per-channel FakeQuant when quantising)."""
        tf = self.tf
        hwio = tf.constant(w.permute(2, 3, 1, 0).contiguous().numpy())
        if not self.quantise:
            return hwio
        m = np.maximum(w.abs().flatten(1).amax(1).numpy(), WQMAX * 1e-12).astype(np.float32)
        return tf.quantization.fake_quant_with_min_max_vars_per_channel(hwio, -m, m, num_bits=8, narrow_range=True)

    def conv(self, layer: Layer, x: Any, to_depth: bool = False) -> Any:
        tf = self.tf
        w, b = layer.weight, layer.bias
        if layer.kind == "convT":
            h, wd = int(x.shape[1]), int(x.shape[2])
            filt = tf.constant(w.permute(2, 3, 1, 0).contiguous().numpy())  # [kh, kw, out, in]
            y = tf.nn.conv2d_transpose(x, filt, [1, 2 * h + 1, 2 * wd + 1, layer.out_channels], 2, "VALID")
            return y[:, 1:2 * h + 1, 1:2 * wd + 1, :] + b.numpy()
        if layer.kind == "up":
            perm = _dcr_order(layer.out_channels)
            x = tf.pad(x, [[0, 0], [0, 1], [0, 1], [0, 0]])
            return tf.nn.conv2d(x, self.weight(w[perm]), 1, "VALID") + not_splat(b[perm])
        if to_depth:
            x = tf.nn.space_to_depth(self.pad(layer, x), 2)
            return tf.nn.conv2d(x, self.weight(space_to_depth_kernel(w)), 1, "VALID") + not_splat(b.repeat(4))
        p = layer.pad
        fuse_same = layer.pad_mode != "reflect" and layer.stride == 1 and w.shape[-1] == 2 * p + 1
        if p and not fuse_same:
            x = self.pad(layer, x)
        return tf.nn.conv2d(x, self.weight(w), layer.stride, "SAME" if p and fuse_same else "VALID") + not_splat(b)

    def pad(self, layer: Layer, x: Any) -> Any:
        """Explicit padding of `layer` (reflection or zeros)."""
        p = layer.pad
        if layer.pad_mode == "reflect":
            return reflect_pad(self.tf, x, p)
        return self.tf.pad(x, [[0, 0], [p, p], [p, p], [0, 0]])

    def layer(self, layer: Layer, x: Any, grade: tuple[Any, Any] | None = None) -> Any:
        tf = self.tf
        to_depth = uses_space_to_depth(layer, int(x.shape[1]))
        y = self.conv(layer, x, to_depth)
        shuffled = layer.kind == "up" and layer.standardise is not None
        if shuffled:  # the per-image statistics are over whole channels, not over their 4 phases
            y = tf.nn.depth_to_space(y, 2)
        if layer.standardise is not None:
            y = self.standardise(y, layer.standardise)
        if layer.norm is not None:
            mean, var = tf.nn.moments(y, axes=[1, 2], keepdims=True)
            y = (y - mean) * tf.math.rsqrt(var + layer.norm.eps) * layer.norm.gamma.numpy() + layer.norm.beta.numpy()
        if layer.act == "relu":
            y = tf.nn.relu(y)
        elif layer.act == "tanh":
            y = self.fq(y, layer.pre_q)
            if grade is not None:
                if to_depth:  # the grade is per output channel: back to pixels first (int8 data movement)
                    y, to_depth = tf.nn.depth_to_space(y, 2), False
                y = self.grade(y, *grade)
            y = tf.math.tanh(y)
        y = self.fq(y, layer.out_q)
        if (layer.kind == "up" and not shuffled) or to_depth:
            y = tf.nn.depth_to_space(y, 2)
        return y

    def conv1x1(self, x: Any, w: torch.Tensor, b: torch.Tensor) -> Any:
        return self.tf.nn.conv2d(x, self.weight(w), 1, "VALID") + not_splat(b)

    def standardise(self, z: Any, st: ImageStandardise) -> Any:
        """A student's per-image normalisation: MEAN, SUB, MUL, MEAN, RESHAPE, the piecewise-linear
        1/sqrt as two 1x1 CONV_2D (the first with RELU6) over channels laid out as a row, RESHAPE, MUL; then the channel affine as a 1x1
        DEPTHWISE_CONV_2D (its per-channel FakeQuant is taken on the [1, 1, 1, C] layout, whose last
        axis is the channel, and reshaped to the depthwise filter layout [1, 1, C, 1])."""
        tf = self.tf
        z = self.fq(z, st.conv_q)
        d = self.fq(z - self.fq(tf.reduce_mean(z, axis=[1, 2], keepdims=True), st.mean_q), st.diff_q)
        var = self.fq(tf.reduce_mean(self.fq(d * d, st.square_q), axis=[1, 2], keepdims=True), st.var_q)
        channels = len(st.scale)
        h = self.fq(tf.nn.relu6(self.conv1x1(tf.reshape(var, [1, 1, channels, 1]), st.w1, st.b1)), st.hidden_q)
        r = tf.reshape(self.fq(self.conv1x1(h, st.w2, st.b2), st.inv_q), [1, 1, 1, channels])
        n = self.fq(d * r, st.norm_q)
        filt = tf.constant(st.scale.reshape(1, 1, 1, channels).numpy())
        if self.quantise:
            m = np.maximum(st.scale.abs().numpy(), WQMAX * 1e-12).astype(np.float32)
            filt = tf.quantization.fake_quant_with_min_max_vars_per_channel(filt, -m, m, num_bits=8, narrow_range=True)
        filt = tf.reshape(filt, [1, 1, channels, 1])
        return tf.nn.depthwise_conv2d(n, filt, [1, 1, 1, 1], "VALID") + not_splat(st.shift)

    def modulation(self, trunk: Any) -> tuple[Any, Any]:
        """The colour head: MEAN + REDUCE_MAX of the trunk -> three 1x1 convs -> (gain, shift)."""
        tf, c = self.tf, self.graph.colour
        pooled = [self.fq(op(trunk, axis=[1, 2], keepdims=True), c.pool_q) for op in (tf.reduce_mean, tf.reduce_max)]
        h = self.fq(tf.nn.relu(self.conv1x1(self.fq(tf.concat(pooled, axis=3), c.pool_q), c.w1, c.b1)), c.hidden_q)
        return self.fq(self.conv1x1(h, c.wg, c.bg), c.gain_q), self.fq(self.conv1x1(h, c.wt, c.bt), c.shift_q)

    def grade(self, pre: Any, gain: Any, shift: Any) -> Any:
        c = self.graph.colour
        return self.fq(self.fq(pre * gain, c.mul_q) + shift, c.grade_q)

    def __call__(self, x: Any) -> Any:
        g = self.graph
        y = self.fq(x, g.input_q)
        for layer in g.stem:
            y = self.layer(layer, y)
        for i, (a, b) in enumerate(g.blocks):
            y = self.fq(y + self.layer(b, self.layer(a, y)), g.add_q[i] if g.add_q else None)
        grade = self.modulation(y) if g.colour else None
        for layer in g.tail:
            y = self.layer(layer, y, grade if layer.act == "tanh" else None)
        return y


def convert_tflite(graph: ExportGraph, size: int, int8: bool, io: str = "int8") -> bytes:
    """Build and convert; `int8` gives full-integer INT8 with `io` ("int8" | "uint8" | "float") I/O."""
    if io not in IO_TYPES:
        raise ValueError(f"io must be one of {IO_TYPES}")
    tf = _tf()
    build = _Builder(graph, quantise=int8)
    module = tf.Module()
    module.fn = tf.function(lambda x: {"output": tf.identity(build(x), name="output")},
                            input_signature=[tf.TensorSpec([1, size, size, 3], tf.float32, name="input")])
    converter = tf.lite.TFLiteConverter.from_concrete_functions([module.fn.get_concrete_function()], module)
    if int8:
        converter.optimizations = [tf.lite.Optimize.DEFAULT]
        if io != "float":
            converter.inference_input_type = converter.inference_output_type = getattr(tf, io)
    import warnings

    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        return converter.convert()
