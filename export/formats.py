"""One table of artifacts -> one export function each (in the style of ultralytics' exporter).

Every function writes one artifact of the slim student (or the teacher) to the path it is given;
the caller (`export.pipeline`) gives a temporary path and renames after validation. Converters are
imported inside the functions, so `--format onnx` never imports TensorFlow.
"""
from __future__ import annotations

import contextlib
import importlib.util
import io
from dataclasses import dataclass
from pathlib import Path
from typing import Callable

import torch

from .errors import ExportError
from .graph import ExportGraph, GraphModule, with_grid_weights


@dataclass
class ExportContext:
    """What the export functions build from."""

    student: ExportGraph   # slim student, with its QAT grids
    teacher: ExportGraph   # teacher as it is, RGB in/out
    size: int              # square export resolution
    io: str = "int8"       # TFLite INT8 I/O type: int8 | uint8 | float


@dataclass(frozen=True)
class ArtifactSpec:
    name: str
    filename: str
    format: str      # onnx | tflite | coreml | torchscript
    role: str        # student | teacher
    precision: str   # int8 | fp32 | w8 (int8 weights) | w8a8 (int8 weights and activations)
    export: Callable[[ExportContext, Path], None]


def _onnx(role: str, int8: bool) -> Callable[[ExportContext, Path], None]:
    def export(ctx: ExportContext, path: Path) -> None:
        import onnx

        from .onnx_build import build_onnx

        onnx.save(build_onnx(getattr(ctx, role), ctx.size, int8), str(path))

    return export


def _tflite(role: str, int8: bool) -> Callable[[ExportContext, Path], None]:
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


def _coreml(activations: bool) -> Callable[[ExportContext, Path], None]:
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


ARTIFACTS: tuple[ArtifactSpec, ...] = (
    ArtifactSpec("student_int8_tflite", "student_int8.tflite", "tflite", "student", "int8", _tflite("student", True)),
    ArtifactSpec("student_fp32_tflite", "student_fp32.tflite", "tflite", "student", "fp32", _tflite("student", False)),
    ArtifactSpec("teacher_fp32_tflite", "teacher_fp32.tflite", "tflite", "teacher", "fp32", _tflite("teacher", False)),
    ArtifactSpec("student_int8_onnx", "student_int8.onnx", "onnx", "student", "int8", _onnx("student", True)),
    ArtifactSpec("student_fp32_onnx", "student_fp32.onnx", "onnx", "student", "fp32", _onnx("student", False)),
    ArtifactSpec("teacher_fp32_onnx", "teacher_fp32.onnx", "onnx", "teacher", "fp32", _onnx("teacher", False)),
    ArtifactSpec("student_w8_mlpackage", "student_w8.mlpackage", "coreml", "student", "w8", _coreml(False)),
    ArtifactSpec("student_w8a8_mlpackage", "student_w8a8.mlpackage", "coreml", "student", "w8a8", _coreml(True)),
    ArtifactSpec("teacher_fp32_torchscript", "teacher_fp32.pt", "torchscript", "teacher", "fp32",
                 export_torchscript_teacher),
)
FORMATS = ("onnx", "tflite", "coreml", "torchscript")
# modules each format needs: the converter and the runtime that validates it
REQUIRED_MODULES = {"onnx": ("onnx", "onnxslim", "onnxruntime"), "tflite": ("tensorflow", "ai_edge_litert"),
                    "coreml": ("coremltools",), "torchscript": ()}


def select(formats: list[str]) -> list[ArtifactSpec]:
    """Artifacts of the requested formats ("all" = every format), checking converters are installed."""
    wanted = set(FORMATS) if "all" in formats else set(formats)
    unknown = wanted - set(FORMATS)
    if unknown:
        raise ExportError(f"unknown format {', '.join(sorted(unknown))} (choose from {', '.join(FORMATS)}, all)")
    for fmt in sorted(wanted):
        missing = [m for m in REQUIRED_MODULES[fmt] if importlib.util.find_spec(m) is None]
        if missing:
            raise ExportError(f"format {fmt} needs the Python module(s) {', '.join(missing)}, which are not installed")
    return [a for a in ARTIFACTS if a.format in wanted]
