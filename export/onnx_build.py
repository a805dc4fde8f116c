"""ExportGraph -> ONNX (opset 17): fp32, or 8-bit QDQ with the QAT grids (no calibration).

The graph is written directly with `onnx.helper` (NCHW, input "input" [1, 3, S, S] float, output
"output"), so every scale and zero point is the student's:
- activations: QuantizeLinear/DequantizeLinear pairs (per tensor) where the student
  fake-quantises, and again after each data-movement op (reflect Pad, DepthToSpace) with the same
  grid (exact: those ops only move 8-bit values), so each Conv/Add/Tanh reads DequantizeLinear outputs;
- weights: per-output-channel symmetric scale max|w| / 127 (axis 0), values in [-127, 127];
- biases: int32 with scale input_scale * weight_scale (what ORT's QLinearConv and TFLite execute).
Activations and weights are stored as uint8, offset by 128 (activation zero point = the student's
int8 zero point + 128, weight zero point 128): the same real values as the int8 grids, but ORT then
runs its U8U8 GEMM kernels. Its U8S8 kernels on x86 without VNNI (AVX2) sum pairs of u8*s8 products
with VPMADDUBSW, whose int16 result saturates (measured on tiny students under an emulated Haswell:
17-40 dB per image against the INT8 TFLite, instead of 47-100 dB); the U8U8 path is exact on every ISA.
The result is checked with `onnx.checker` and simplified with onnxslim.
"""
from __future__ import annotations

import numpy as np
import onnx
import torch
from onnx import TensorProto, helper, numpy_helper

from compress.image_norm import RAMP_TOP
from compress.quant import WQMAX, weight_scales

from .graph import ExportGraph, ImageStandardise, Layer, QParams

OPSET = 17
U8_OFFSET = 128  # int8 value + 128 = the uint8 value that stands for the same real number


def as_uint8(q: np.ndarray) -> np.ndarray:
    """int8 grid values (or zero points) as the uint8 values of the same real numbers."""
    return (np.asarray(q, np.int16) + U8_OFFSET).astype(np.uint8)


class _OnnxBuilder:
    def __init__(self, graph: ExportGraph, quantise: bool) -> None:
        self.graph = graph
        self.quantise = quantise
        self.nodes: list[onnx.NodeProto] = []
        self.inits: list[onnx.TensorProto] = []
        self.count = 0

    def name(self, stem: str) -> str:
        self.count += 1
        return f"{stem}_{self.count}"

    def const(self, stem: str, array: np.ndarray) -> str:
        n = self.name(stem)
        self.inits.append(numpy_helper.from_array(np.ascontiguousarray(array), n))
        return n

    def node(self, op: str, inputs: list[str], stem: str, **attrs: object) -> str:
        out = self.name(stem)
        self.nodes.append(helper.make_node(op, inputs, [out], name=out, **attrs))
        return out

    def qdq(self, x: str, q: QParams | None) -> str:
        """Quantize then dequantize on the student's per-tensor grid, as uint8 (identity when fp32)."""
        if not self.quantise or q is None:
            return x
        s = self.const("scale", np.array(q.scale, np.float32))
        z = self.const("zp", as_uint8(q.zero_point))
        return self.node("DequantizeLinear", [self.node("QuantizeLinear", [x, s, z], "q"), s, z], "dq")

    def conv_params(self, w: torch.Tensor, b: torch.Tensor, in_q: QParams | None) -> tuple[str, str]:
        """Weight and bias inputs: float initializers, or DequantizeLinear of uint8 / int32 ones."""
        if not self.quantise:
            return self.const("w", w.numpy()), self.const("b", b.numpy())
        ws = weight_scales(w).numpy().astype(np.float32)
        wq = np.clip(np.rint(w.numpy() / ws[:, None, None, None]), -WQMAX, WQMAX)
        w_dq = self.node("DequantizeLinear", [self.const("w_q", as_uint8(wq)), self.const("w_scale", ws),
                                              self.const("w_zp", as_uint8(np.zeros(len(ws))))], "w_dq", axis=0)
        bs = (ws * np.float32(in_q.scale)).astype(np.float32)
        bq = np.rint(b.numpy() / bs).astype(np.int32)
        b_dq = self.node("DequantizeLinear", [self.const("b_q", bq), self.const("b_scale", bs),
                                              self.const("b_zp", np.zeros(len(bs), np.int32))], "b_dq", axis=0)
        return w_dq, b_dq

    def conv1x1(self, x: str, w: torch.Tensor, b: torch.Tensor, in_q: QParams | None) -> str:
        wd, bd = self.conv_params(w, b, in_q)
        return self.node("Conv", [x, wd, bd], "conv", kernel_shape=[1, 1])

    def modulation(self, trunk: str) -> tuple[str, str]:
        """The colour head: ReduceMean + ReduceMax of the trunk -> three 1x1 convs -> (gain, shift)."""
        c = self.graph.colour
        pooled = [self.qdq(self.node(op, [trunk], op.lower(), axes=[2, 3], keepdims=1), c.pool_q)
                  for op in ("ReduceMean", "ReduceMax")]
        f = self.qdq(self.node("Concat", pooled, "concat", axis=1), c.pool_q)
        h = self.qdq(self.node("Relu", [self.conv1x1(f, c.w1, c.b1, c.pool_q)], "relu"), c.hidden_q)
        return (self.qdq(self.conv1x1(h, c.wg, c.bg, c.hidden_q), c.gain_q),
                self.qdq(self.conv1x1(h, c.wt, c.bt, c.hidden_q), c.shift_q))

    def standardise(self, z: str, st: ImageStandardise) -> str:
        """A student's per-image normalisation (ReduceMean, Sub, Mul, the piecewise-linear 1/sqrt as two
        1x1 Convs with a Clip(0, 6) over channels laid out as a row, Mul) and its channel affine (a 1x1
        depthwise Conv)."""
        z = self.qdq(z, st.conv_q)
        mean = self.qdq(self.node("ReduceMean", [z], "mean", axes=[2, 3], keepdims=1), st.mean_q)
        d = self.qdq(self.node("Sub", [z, mean], "sub"), st.diff_q)
        square = self.qdq(self.node("Mul", [d, d], "square"), st.square_q)
        var = self.qdq(self.node("ReduceMean", [square], "var", axes=[2, 3], keepdims=1), st.var_q)
        # each Reshape is re-gridded on the grid it carries (an identity on its values), so every
        # following op reads a DequantizeLinear and runs in int8
        row = self.qdq(self.node("Reshape", [var, self.const("row", np.array([1, 1, 1, -1], np.int64))], "row"),
                       st.var_q)
        ramps = self.conv1x1(row, st.w1, st.b1, st.var_q)
        h = self.qdq(self.node("Clip", [ramps, self.const("lo", np.array(0, np.float32)),
                                        self.const("hi", np.array(RAMP_TOP, np.float32))], "relu6"), st.hidden_q)
        r = self.qdq(self.conv1x1(h, st.w2, st.b2, st.hidden_q), st.inv_q)
        col = self.qdq(self.node("Reshape", [r, self.const("col", np.array([1, -1, 1, 1], np.int64))], "col"),
                       st.inv_q)
        n = self.qdq(self.node("Mul", [d, col], "mul"), st.norm_q)
        w, b = self.conv_params(st.depthwise(), st.shift, st.norm_q)
        return self.node("Conv", [n, w, b], "affine", kernel_shape=[1, 1], group=len(st.scale))

    def grade(self, pre: str, gain: str, shift: str) -> str:
        c = self.graph.colour
        scaled = self.qdq(self.node("Mul", [pre, gain], "mul"), c.mul_q)
        return self.qdq(self.node("Add", [scaled, shift], "add"), c.grade_q)

    def layer(self, layer: Layer, x: str, in_q: QParams | None, grade: tuple[str, str] | None = None) -> str:
        k = layer.weight.shape[-1]
        if layer.kind == "convT":
            w, b = self.conv_params(layer.weight, layer.bias, in_q)
            y = self.node("ConvTranspose", [x, w, b], "convT", strides=[2, 2], pads=[1, 1, 1, 1],
                          output_padding=[1, 1], kernel_shape=[k, k])
        else:
            pads = [layer.pad] * 4
            if layer.kind == "up":
                pads = [0, 0, 1, 1]
            elif layer.pad and layer.pad_mode == "reflect":
                p = layer.pad
                x = self.qdq(self.node("Pad", [x, self.const("pads", np.array([0, 0, p, p, 0, 0, p, p], np.int64))],
                                       "pad", mode="reflect"), in_q)
                pads = [0, 0, 0, 0]
            w, b = self.conv_params(layer.weight, layer.bias, in_q)
            stride = 1 if layer.kind == "up" else layer.stride
            y = self.node("Conv", [x, w, b], "conv", strides=[stride] * 2, pads=pads, kernel_shape=[k, k])
        shuffled = layer.kind == "up" and layer.standardise is not None
        if shuffled:  # the per-image statistics are over whole channels, not over their 4 phases
            y = self.node("DepthToSpace", [y], "d2s", blocksize=2, mode="CRD")
        if layer.standardise is not None:
            y = self.standardise(y, layer.standardise)
        if layer.norm is not None:
            y = self.node("InstanceNormalization", [y, self.const("gamma", layer.norm.gamma.numpy()),
                                                    self.const("beta", layer.norm.beta.numpy())],
                          "inorm", epsilon=layer.norm.eps)
        if layer.act == "relu":
            y = self.node("Relu", [y], "relu")
        elif layer.act == "tanh":
            y = self.qdq(y, layer.pre_q)
            y = self.node("Tanh", [self.grade(y, *grade) if grade else y], "tanh")
        y = self.qdq(y, layer.out_q)
        if layer.kind == "up" and not shuffled:
            y = self.qdq(self.node("DepthToSpace", [y], "d2s", blocksize=2, mode="CRD"), layer.out_q)
        return y

    def build(self, size: int) -> onnx.ModelProto:
        g = self.graph
        y, q = self.qdq("input", g.input_q), g.input_q
        for layer in g.stem:
            y, q = self.layer(layer, y, q), layer.out_q
        for i, (a, b) in enumerate(g.blocks):
            h = self.layer(a, y, q)
            r = self.layer(b, h, a.out_q)
            q = g.add_q[i] if g.add_q else None
            y = self.qdq(self.node("Add", [y, r], "add"), q)
        grade = self.modulation(y) if g.colour else None
        for layer in g.tail:
            y, q = self.layer(layer, y, q, grade if layer.act == "tanh" else None), layer.out_q
        self.nodes.append(helper.make_node("Identity", [y], ["output"], name="output"))
        graph = helper.make_graph(
            self.nodes, f"{g.arch}_{'int8' if self.quantise else 'fp32'}",
            [helper.make_tensor_value_info("input", TensorProto.FLOAT, [1, 3, size, size])],
            [helper.make_tensor_value_info("output", TensorProto.FLOAT, [1, 3, size, size])], self.inits)
        model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", OPSET)], producer_name="gs-export")
        model.ir_version = 8
        return model


def _per_tensor_scalars(model: onnx.ModelProto) -> None:
    """Give per-tensor Q/DQ scales and zero points rank 0 again (onnxslim rewrites them as shape [1])."""
    inits = {i.name: i for i in model.graph.initializer}
    for node in model.graph.node:
        if node.op_type in ("QuantizeLinear", "DequantizeLinear") and not any(a.name == "axis" for a in node.attribute):
            for name in node.input[1:]:
                init = inits.get(name)
                if init is not None and list(init.dims) == [1]:
                    init.CopyFrom(numpy_helper.from_array(numpy_helper.to_array(init).reshape(()), name))


def build_onnx(graph: ExportGraph, size: int, int8: bool) -> onnx.ModelProto:
    """The ONNX model of `graph`, checked and simplified (onnxslim)."""
    model = _OnnxBuilder(graph, quantise=int8).build(size)
    onnx.checker.check_model(model, full_check=True)
    import onnxslim

    slim = onnxslim.slim(model)
    if slim is not None:
        model = slim
    _per_tensor_scalars(model)
    onnx.checker.check_model(model, full_check=True)
    return model
