"""Facts read from an artifact's own graph: op histogram, float ops, params, MACs, I/O tensors.

MAC convention (docs/CONTRACTS.md): multiply-accumulates of conv layers, counted at each layer's
output resolution (a transposed conv at its upsampled resolution, input size x stride), for one image.
Params: elements of the convolutions' weight and bias tensors in the graph (plus, for an ONNX
teacher, the InstanceNormalization affine).
Op histogram keys are "OP/dtype": TFLite by the dtype of the op's output tensor; ONNX "/int8" when an
op reads only DequantizeLinear outputs / constants (or, like Relu, feeds only QuantizeLinear, which
runtimes fuse), else "/float32"; QuantizeLinear / DequantizeLinear are listed by name. `float_ops`
counts ops computing in float, not counting the I/O conversions QUANTIZE/DEQUANTIZE (TFLite) or
Q/DQ nodes (ONNX). Core ML (fp16 activations) lists op types; its `weight_dtypes` give the conv
weight precision.
"""
from __future__ import annotations

import math
from collections import Counter
from pathlib import Path

import numpy as np

TFLITE_CONVS = ("CONV_2D", "DEPTHWISE_CONV_2D", "TRANSPOSE_CONV")
TFLITE_IO_OPS = ("QUANTIZE", "DEQUANTIZE")
# what an instance norm decomposes into (a student's colour head has a MEAN too: a global pool, no RSQRT)
NORM_OPS = ("RSQRT", "SQUARED_DIFFERENCE", "InstanceNormalization", "instance_norm")


def _tensor_entry(name: str, shape: list[int], dtype: str, layout: str,
                  quant: tuple[float, int] | None) -> dict:
    scale, zp = quant if quant and quant[0] else (None, None)
    return {"name": name, "shape": [int(d) for d in shape], "dtype": dtype, "layout": layout,
            "scale": None if scale is None else float(scale), "zero_point": None if zp is None else int(zp)}


# ----- TFLite -----
def tflite_interpreter(path: Path, num_threads: int = 2, delegates: bool = True):  # noqa: ANN201
    from ai_edge_litert.interpreter import Interpreter, OpResolverType

    kind = OpResolverType.AUTO if delegates else OpResolverType.BUILTIN_WITHOUT_DEFAULT_DELEGATES
    it = Interpreter(model_path=str(path), num_threads=num_threads, experimental_op_resolver_type=kind)
    it.allocate_tensors()
    return it


def tflite_info(path: Path) -> dict:
    """Ops (without delegate clustering), tensors, MACs and params of a .tflite file."""
    it = tflite_interpreter(path, delegates=False)
    tensors = {t["index"]: t for t in it.get_tensor_details()}
    hist: Counter[str] = Counter()
    float_ops = macs = params = 0
    ops = it._get_ops_details()
    producer = {t: op["op_name"] for op in ops for t in op["outputs"]}
    for op in ops:
        name = op["op_name"]
        out = tensors[op["outputs"][0]]
        dtype = np.dtype(out["dtype"]).name
        hist[f"{name}/{dtype}"] += 1
        if dtype.startswith("float") and name not in TFLITE_IO_OPS:
            float_ops += 1
        if name in TFLITE_CONVS:
            w_idx = op["inputs"][1]
            w = [int(d) for d in tensors[w_idx]["shape"]]  # [out, kh, kw, in] (depthwise: [1, kh, kw, out])
            b_pos = 3 if name == "TRANSPOSE_CONV" else 2
            b_idx = op["inputs"][b_pos] if len(op["inputs"]) > b_pos else -1
            n_bias = math.prod(int(d) for d in tensors[b_idx]["shape"]) if b_idx >= 0 else 0
            h, wd = int(out["shape"][1]), int(out["shape"][2])
            if producer.get(op["inputs"][0]) == "SPACE_TO_DEPTH":
                # counted as the stride-1 conv it computes (export/tflite_build.py), not its zero taps
                k, cout, cin = 2 * w[1] - 1, w[0] // 4, w[3] // 4
                params += cout * k * k * cin + n_bias // 4
                macs += (2 * h) * (2 * wd) * cout * cin * k * k
                continue
            params += math.prod(w) + n_bias
            if name == "TRANSPOSE_CONV":
                x = [int(d) for d in tensors[op["inputs"][2]]["shape"]]
                stride = round(h / x[1])
                h, wd = x[1] * stride, x[2] * stride
            cin = 1 if name == "DEPTHWISE_CONV_2D" else w[3]
            cout = w[3] if name == "DEPTHWISE_CONV_2D" else w[0]
            macs += int(h * wd * cout * cin * w[1] * w[2])

    def io(details: list[dict], name: str) -> list[dict]:
        return [_tensor_entry(name, d["shape"].tolist(), np.dtype(d["dtype"]).name, "NHWC", d["quantization"])
                for d in details]

    return {"op_histogram": dict(sorted(hist.items())), "float_ops": float_ops, "macs": macs, "params": params,
            "inputs": io(it.get_input_details(), "input"), "outputs": io(it.get_output_details(), "output")}


# ----- ONNX -----
def onnx_info(path: Path) -> dict:
    import onnx
    from onnx import numpy_helper

    model = onnx.shape_inference.infer_shapes(onnx.load(str(path)))
    g = model.graph
    inits = {i.name: numpy_helper.to_array(i) for i in g.initializer}
    producer = {o: n for n in g.node for o in n.output}
    consumers: dict[str, list] = {}
    for n in g.node:
        for i in n.input:
            consumers.setdefault(i, []).append(n)
    shapes = {v.name: [d.dim_value for d in v.type.tensor_type.shape.dim]
              for v in list(g.value_info) + list(g.output) + list(g.input)}

    def const(name: str) -> np.ndarray | None:
        """An initializer, looking through a DequantizeLinear of one."""
        if name in inits:
            return inits[name]
        p = producer.get(name)
        if p is not None and p.op_type == "DequantizeLinear" and p.input[0] in inits:
            return inits[p.input[0]]
        return None

    def int8_op(n) -> bool:  # noqa: ANN001
        data = [i for i in n.input if i and i not in inits]
        from_dq = all(producer.get(i) is not None and producer[i].op_type == "DequantizeLinear" for i in data)
        to_q = all(c.op_type == "QuantizeLinear" for c in consumers.get(n.output[0], [])) and n.op_type == "Relu"
        return bool(data) and (from_dq or to_q)

    hist: Counter[str] = Counter()
    float_ops = macs = params = 0
    for n in g.node:
        if n.op_type in ("QuantizeLinear", "DequantizeLinear"):
            hist[n.op_type] += 1
            continue
        if n.op_type == "Identity" or (n.op_type == "DequantizeLinear"):
            continue
        q = int8_op(n)
        hist[f"{n.op_type}/{'int8' if q else 'float32'}"] += 1
        float_ops += not q
        if n.op_type in ("Conv", "ConvTranspose", "InstanceNormalization"):
            params += sum(int(c.size) for c in (const(i) for i in n.input[1:] if i) if c is not None)
        if n.op_type in ("Conv", "ConvTranspose"):
            w = const(n.input[1]).shape
            out = shapes[n.output[0]]
            cin = w[1] if n.op_type == "Conv" else w[0]
            macs += int(math.prod(out[1:]) * cin * w[2] * w[3])

    def io(values) -> list[dict]:  # noqa: ANN001
        return [_tensor_entry(v.name, [d.dim_value for d in v.type.tensor_type.shape.dim], "float32", "NCHW", None)
                for v in values]

    return {"op_histogram": dict(sorted(hist.items())), "float_ops": float_ops, "macs": macs, "params": params,
            "inputs": io(g.input), "outputs": io(g.output)}


# ----- Core ML -----
ARRAY_DTYPES = {65568: "float32", 65552: "float16", 65600: "float64", 131104: "int32"}
MIL_DTYPES = {10: "float16", 11: "float32", 21: "int8", 23: "int32", 31: "uint8"}


# coremltools writes a constant of fewer than 10 values inline in the program, never to the weight file
# (coremltools.converters.mil.backend.mil.load.should_use_weight_file), and quantises only weight-file
# constants: a conv weight that small (e.g. a 1x1 depthwise channel scale of under 10 channels) stays fp16
COREML_INLINE_VALUES = 10
COREML_INLINE = "float16-inline"


def coreml_info(path: Path) -> dict:
    """Structure of an .mlpackage from its spec (Core ML cannot run on Linux)."""
    import logging

    logging.getLogger("coremltools").setLevel(logging.ERROR)
    import coremltools as ct

    spec = ct.models.MLModel(str(path), skip_model_load=True).get_spec()
    fn = spec.mlProgram.functions["main"]
    ops = list(fn.block_specializations[fn.opset].operations)
    dims = {o.name: [int(d.constant.size) for d in o.type.tensorType.dimensions] for op in ops for o in op.outputs}
    producer = {o.name: op for op in ops for o in op.outputs}
    hist: Counter[str] = Counter(op.type for op in ops if op.type != "const")
    weight_dtypes: Counter[str] = Counter()
    macs = params = 0
    for op in ops:
        if op.type not in ("conv", "conv_transpose"):
            continue
        w_name = op.inputs["weight"].arguments[0].name
        w = dims[w_name]
        src = producer[w_name]
        if src.type.startswith("constexpr"):
            data = src.attributes.get("quantized_data") or src.attributes.get("data")
            weight_dtypes[MIL_DTYPES.get(data.type.tensorType.dataType, "other")] += 1
        elif math.prod(w) < COREML_INLINE_VALUES:
            weight_dtypes[COREML_INLINE] += 1
        else:
            weight_dtypes[MIL_DTYPES.get(src.outputs[0].type.tensorType.dataType, "other")] += 1
        params += math.prod(w) + (math.prod(dims[op.inputs["bias"].arguments[0].name]) if "bias" in op.inputs else 0)
        out = dims[op.outputs[0].name]
        cin = w[1] if op.type == "conv" else w[0]
        macs += int(math.prod(out[1:]) * cin * w[2] * w[3])
    compute = sum(c for t, c in hist.items() if not t.startswith("constexpr"))

    def io(features) -> list[dict]:  # noqa: ANN001
        return [_tensor_entry(f.name, list(f.type.multiArrayType.shape),
                              ARRAY_DTYPES.get(f.type.multiArrayType.dataType, "other"),
                              "NCHW", None) for f in features]

    return {"op_histogram": dict(sorted(hist.items())), "float_ops": compute, "macs": macs, "params": params,
            "weight_dtypes": dict(weight_dtypes), "deployment_target": f"iOS{spec.specificationVersion + 9}",
            "inputs": io(spec.description.input), "outputs": io(spec.description.output)}
