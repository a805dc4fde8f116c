"""The format table (in the style of ultralytics' exporter): everything about each export format.

`FORMATS` maps a format name (the `--format` choice and the manifest's "format") to a `Format`:
its artifacts and their export functions, the Python modules it needs, the file suffix, how its
facts are read, its validation runner and structural checks, the gs-bench runtime written into
each manifest entry, and the gs-export options only it uses. gs-export's CLI, the pipeline and
validation read this table; a new format is one `Format` entry here.

Every export function writes one artifact of the slim student (or the teacher) to the path it is
given; the caller (`export.pipeline`) gives a temporary path and renames after validation.
Converters are imported inside the functions, so `--format onnx` never imports TensorFlow.
"""
from __future__ import annotations

import contextlib
import importlib.util
import io
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable

import numpy as np
import torch

from .artifact_info import COREML_INLINE, coreml_info, onnx_info, tflite_info
from .errors import ExportError
from .graph import ExportGraph, GraphModule, with_grid_weights
from .runners import run_onnx, run_tflite, run_torchscript


@dataclass
class ExportContext:
    """What the export functions build from."""

    student: ExportGraph   # slim student, with its QAT grids
    teacher: ExportGraph   # teacher as it is, RGB in/out
    size: int              # square export resolution
    io: str = "int8"       # TFLite INT8 I/O type: int8 | uint8 | float


Exporter = Callable[[ExportContext, Path], None]


@dataclass(frozen=True)
class ArtifactSpec:
    """One artifact as the pipeline exports, validates and lists it (built from `FORMATS`)."""

    name: str
    filename: str
    format: str      # a key of FORMATS
    role: str        # student | teacher
    precision: str   # int8 | fp32 | w8 (int8 weights) | w8a8 (int8 weights and activations)
    export: Exporter


def _onnx(role: str, int8: bool) -> Exporter:
    def export(ctx: ExportContext, path: Path) -> None:
        import onnx

        from .onnx_build import build_onnx

        onnx.save(build_onnx(getattr(ctx, role), ctx.size, int8), str(path))

    return export


def _tflite(role: str, int8: bool) -> Exporter:
    def export(ctx: ExportContext, path: Path) -> None:
        from .tflite_build import convert_tflite

        path.write_bytes(convert_tflite(getattr(ctx, role), ctx.size, int8, ctx.io))

    return export


TRACE_SIZE = 64  # GraphModule has no size-dependent constants: tracing small is fast and size-agnostic


def _traced(graph: ExportGraph, size: int, **kwargs: bool) -> torch.jit.ScriptModule:
    """torch.jit.trace of a GraphModule (weights are module buffers, not inlined constants)."""
    side = min(size, TRACE_SIZE)
    with torch.no_grad():
        return torch.jit.trace(GraphModule(graph, **kwargs).eval(), torch.zeros(1, 3, side, side), check_trace=False)


def export_torchscript_teacher(ctx: ExportContext, path: Path) -> None:
    """TorchScript of the fp32 teacher (RGB in/out, any size) for gs-bench's torch runner."""
    _traced(ctx.teacher, ctx.size).save(str(path))


def _register_fake_quant_converters() -> None:
    """Teach coremltools' torch frontend the fake-quant op: MIL quantize + dequantize (iOS 17) on the
    same per-tensor int8 grid, so a W8A8 package carries the QAT grids (no calibration)."""
    import numpy as np
    from coremltools.converters.mil import Builder as mb
    from coremltools.converters.mil.frontend.torch.ops import _get_inputs
    from coremltools.converters.mil.frontend.torch.torch_op_registry import register_torch_op

    @register_torch_op(override=True)
    def fake_quantize_per_tensor_affine(context, node) -> None:  # noqa: ANN001
        x, scale, zero_point, _qmin, _qmax = _get_inputs(context, node, expected=5)
        s, z = np.float32(scale.val), np.int8(zero_point.val)
        q = mb.quantize(input=x, scale=s, zero_point=z, output_dtype="int8", name=node.name + "_q")
        context.add(mb.dequantize(input=q, scale=s, zero_point=z, name=node.name))


def _coreml(activations: bool) -> Exporter:
    def export(ctx: ExportContext, path: Path) -> None:
        """ML Program (iOS 17), fp32 I/O, fp16 compute, int8 per-channel symmetric weights (max|w|/127,
        the student's); with `activations`, also int8 quantize/dequantize at every student quantiser."""
        import logging

        import numpy as np

        logging.getLogger("coremltools").setLevel(logging.ERROR)  # untested-version and no-runtime notices
        import coremltools as ct
        from coremltools.optimize import coreml as cto

        graph = with_grid_weights(ctx.student) if activations else ctx.student
        if activations:
            _register_fake_quant_converters()
        traced = _traced(graph, ctx.size, quantise=activations, weights_on_grid=True)
        with contextlib.redirect_stderr(io.StringIO()):  # coremltools' own progress bars
            model = ct.convert(traced,
                               inputs=[ct.TensorType(name="input", shape=(1, 3, ctx.size, ctx.size), dtype=np.float32)],
                               outputs=[ct.TensorType(name="output", dtype=np.float32)],
                               convert_to="mlprogram", minimum_deployment_target=ct.target.iOS17)
            config = cto.OptimizationConfig(global_config=cto.OpLinearQuantizerConfig(
                mode="linear_symmetric", dtype="int8", granularity="per_channel", weight_threshold=0))
            model = cto.linear_quantize_weights(model, config)
        model.short_description = f"gs-mobile GAN Slimming student ({'W8A8' if activations else 'int8 weights'})"
        model.save(str(path))

    return export


# ----- structural checks of each format (validate.structural_checks adds the checks common to all) -----
def _tflite_checks(spec: ArtifactSpec, info: dict, _quantisers: int) -> list[str]:
    """An INT8 model computes in int8: no float conv, no float op besides the I/O QUANTIZE/DEQUANTIZE."""
    hist = info["op_histogram"]
    if spec.precision != "int8":
        return []
    float_convs = [k for k in hist if k.split("/")[0] in ("CONV_2D", "DEPTHWISE_CONV_2D", "TRANSPOSE_CONV")
                   and not k.endswith("/int8")]
    if float_convs or info["float_ops"]:
        return [f"float ops in the INT8 model: {', '.join(k for k in hist if 'float' in k)}"]
    return []


def _onnx_checks(spec: ArtifactSpec, info: dict, _quantisers: int) -> list[str]:
    """An INT8 model has every Conv on QDQ."""
    n = info["op_histogram"].get("Conv/float32")
    return [f"{n} Conv nodes are not on QDQ"] if spec.precision == "int8" and n else []


def _coreml_checks(spec: ArtifactSpec, info: dict, quantisers: int) -> list[str]:
    """int8 conv weights; a W8A8 package has one int8 quantize op per student activation quantiser."""
    problems = []
    if set(info["weight_dtypes"]) - {"int8", COREML_INLINE}:
        problems.append(f"Core ML conv weights are {info['weight_dtypes']}, expected int8")
    quantize_ops = info["op_histogram"].get("quantize")
    if spec.precision == "w8a8" and quantize_ops != quantisers:
        problems.append(f"{quantize_ops or 0} activation quantize ops, the student has {quantisers}")
    return problems


def _no_checks(_spec: ArtifactSpec, _info: dict, _quantisers: int) -> list[str]:
    return []


def _no_facts(_spec: ArtifactSpec, _ctx: ExportContext) -> dict:
    return {}


def _tflite_facts(spec: ArtifactSpec, ctx: ExportContext) -> dict:
    """`--io` sets the I/O type of the INT8 model only (fp32 models keep float I/O)."""
    return {"io": ctx.io} if spec.precision == "int8" else {}


@dataclass(frozen=True)
class Variant:
    """One artifact of a format: whose graph, at which precision, written by which function."""

    role: str
    precision: str
    export: Exporter


@dataclass(frozen=True)
class Format:
    """Everything about one export format."""

    name: str                       # --format choice and the manifest's "format"
    suffix: str                     # artifact file suffix: ROLE_PRECISION + suffix
    tag: str                        # artifact name suffix: ROLE_PRECISION_ + tag
    variants: tuple[Variant, ...]
    modules: tuple[str, ...]        # Python modules the converter and the validation runner need
    runtime: str | None             # gs-bench runtime that runs it (manifest "runtime"); None: not benchmarked
    info: Callable[[Path], dict] | None = None     # facts from the artifact's own graph; None: declared I/O only
    run: Callable[[Path, torch.Tensor], np.ndarray] | None = None  # validation runner; None: structure only
    checks: Callable[[ArtifactSpec, dict, int], list[str]] = _no_checks  # (spec, info, student quantisers)
    facts: Callable[[ArtifactSpec, ExportContext], dict] = _no_facts     # extra manifest facts
    options: tuple[str, ...] = field(default=())    # gs-export options (argparse dests) that only apply here

    def specs(self) -> list[ArtifactSpec]:
        """The format's artifacts, named ROLE_PRECISION_TAG, files ROLE_PRECISION+SUFFIX."""
        return [ArtifactSpec(f"{v.role}_{v.precision}_{self.tag}", f"{v.role}_{v.precision}{self.suffix}",
                             self.name, v.role, v.precision, v.export) for v in self.variants]


# Order = the order artifacts are exported and listed in manifest.json.
FORMATS: dict[str, Format] = {
    "tflite": Format("tflite", ".tflite", "tflite",
                     (Variant("student", "int8", _tflite("student", True)),
                      Variant("student", "fp32", _tflite("student", False)),
                      Variant("teacher", "fp32", _tflite("teacher", False))),
                     modules=("tensorflow", "ai_edge_litert"), runtime="tflite", info=tflite_info, run=run_tflite,
                     checks=_tflite_checks, facts=_tflite_facts, options=("io", "android")),
    "onnx": Format("onnx", ".onnx", "onnx",
                   (Variant("student", "int8", _onnx("student", True)),
                    Variant("student", "fp32", _onnx("student", False)),
                    Variant("teacher", "fp32", _onnx("teacher", False))),
                   modules=("onnx", "onnxslim", "onnxruntime"), runtime="onnxruntime", info=onnx_info, run=run_onnx,
                   checks=_onnx_checks),
    # Core ML cannot predict on Linux: structure checked only, not benchmarked
    "coreml": Format("coreml", ".mlpackage", "mlpackage",
                     (Variant("student", "w8", _coreml(False)), Variant("student", "w8a8", _coreml(True))),
                     modules=("coremltools",), runtime=None, info=coreml_info, checks=_coreml_checks),
    "torchscript": Format("torchscript", ".pt", "torchscript",
                          (Variant("teacher", "fp32", export_torchscript_teacher),),
                          modules=(), runtime="torch", run=run_torchscript),
}


def artifacts() -> list[ArtifactSpec]:
    """Every artifact of every format, in table order."""
    return [spec for fmt in FORMATS.values() for spec in fmt.specs()]


def select(formats: list[str]) -> list[ArtifactSpec]:
    """Artifacts of the requested formats ("all" = every format), checking converters are installed."""
    wanted = set(FORMATS) if "all" in formats else set(formats)
    unknown = wanted - set(FORMATS)
    if unknown:
        raise ExportError(f"unknown format {', '.join(sorted(unknown))} (choose from {', '.join(FORMATS)}, all)")
    for name in sorted(wanted):
        missing = [m for m in FORMATS[name].modules if importlib.util.find_spec(m) is None]
        if missing:
            raise ExportError(f"format {name} needs the Python module(s) {', '.join(missing)}, which are not installed")
    return [spec for spec in artifacts() if spec.format in wanted]
