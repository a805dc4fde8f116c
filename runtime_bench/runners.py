"""One Runner interface over the runtimes gs-bench measures: torch, ONNX Runtime and LiteRT.

Every runner takes float32 NCHW input in [-1, 1] and returns float32 NCHW output in [-1, 1]
(docs/CONTRACTS.md). Layout changes and INT8 (de)quantisation use the tensor specs from the
manifest, which are checked against what the loaded model itself declares.

Timing: ``prepare`` turns a float NCHW image into the runtime's native input (layout, dtype);
``invoke`` is the timed part (set input, run, read output); ``finish`` converts back. This is
what an app pays per frame, and what the upstream ``benchmark_model`` binary times.

Heavy imports happen inside ``_load`` so this module works on a board with only one runtime.
"""
from __future__ import annotations

import re
import time
from dataclasses import dataclass
from importlib import metadata
from pathlib import Path
from typing import Any

import numpy as np

import gs_contract

from .errors import BenchError

#: For manifests written before each artifact entry named its "runtime" (gs-export now writes it from
#: its format table): artifact "format" -> runtime. This module is the one place gs-bench maps
#: formats, because it is what ssh boards and the qemu worker import (numpy only, no manifest.py).
_LEGACY_FORMAT_RUNTIME: dict[str, str] = {"tflite": "tflite", "onnx": "onnxruntime", "torchscript": "torch"}

_DTYPES: dict[str, Any] = {"float32": np.float32, "int8": np.int8, "uint8": np.uint8}


def _load_detail(exc: Exception) -> str:
    """The runtime's own first line about a failed load, without ONNX Runtime's '[ONNXRuntimeError] : 7 : X :' tag."""
    first = str(exc).strip().splitlines()[0] if str(exc).strip() else ""
    return re.sub(r"^\[\w+\] : \d+ : \w+ : ", "", first) or "no details"


@dataclass(frozen=True)
class TensorSpec:
    """One input or output tensor as manifest.json describes it."""

    name: str
    shape: tuple[int, ...]
    dtype: str
    layout: str
    scale: float | None = None
    zero_point: int | None = None

    @classmethod
    def from_manifest(cls, entry: dict[str, Any]) -> "TensorSpec":
        """Build a spec from one ``inputs``/``outputs`` entry of an artifact."""
        try:
            dtype = str(entry["dtype"])
            if dtype not in _DTYPES:
                raise BenchError(f"unsupported tensor dtype {dtype!r} in manifest")
            quantised = dtype != "float32"
            scale = entry.get("scale")
            zero_point = entry.get("zero_point")
            if quantised and (scale is None or zero_point is None):
                raise BenchError(f"tensor {entry.get('name')!r} is {dtype} but has no scale/zero_point")
            return cls(
                name=str(entry.get("name", "")),
                shape=tuple(int(s) for s in entry["shape"]),
                dtype=dtype,
                layout=str(entry.get("layout", "NCHW")).upper(),
                scale=float(scale) if quantised else None,
                zero_point=int(zero_point) if quantised else None,
            )
        except (KeyError, TypeError, ValueError) as exc:
            raise BenchError(f"bad tensor entry in manifest: {entry!r} ({exc})") from exc

    @property
    def np_dtype(self) -> Any:
        return _DTYPES[self.dtype]


def quantize(x: np.ndarray, spec: TensorSpec) -> np.ndarray:
    """float -> integer tensor with ``gs_contract.quantize`` (float64, ties to even); float passes through."""
    if spec.scale is None:
        return x.astype(np.float32, copy=False)
    return gs_contract.quantize(x, spec.scale, spec.zero_point, spec.np_dtype)


def dequantize(q: np.ndarray, spec: TensorSpec) -> np.ndarray:
    """integer tensor -> float32 with ``gs_contract.dequantize``; float passes through."""
    if spec.scale is None:
        return q.astype(np.float32, copy=False)
    return gs_contract.dequantize(q, spec.scale, spec.zero_point).astype(np.float32)


def to_layout(x_nchw: np.ndarray, layout: str) -> np.ndarray:
    """NCHW -> the artifact's layout (NCHW or NHWC)."""
    return np.ascontiguousarray(x_nchw.transpose(0, 2, 3, 1)) if layout == "NHWC" else x_nchw


def from_layout(y: np.ndarray, layout: str) -> np.ndarray:
    """The artifact's layout -> NCHW."""
    return np.ascontiguousarray(y.transpose(0, 3, 1, 2)) if layout == "NHWC" else y


def package_version(dist: str) -> str | None:
    """Installed version of a distribution, without importing it (None if absent)."""
    try:
        return metadata.version(dist)
    except metadata.PackageNotFoundError:
        return None


class Runner:
    """Base class: load once, then ``run`` (whole conversion) or ``prepare``/``invoke``/``finish``."""

    runtime: str = ""

    def __init__(self, path: Path, input_spec: TensorSpec, output_spec: TensorSpec, threads: int,
                 size: tuple[int, int] | None = None) -> None:
        self.path = Path(path)
        self.input_spec = input_spec
        self.output_spec = output_spec
        self.threads = int(threads)
        self.size = size
        self.loaded = False

    # --- subclass hooks -------------------------------------------------------------------
    def _load(self) -> None:
        raise NotImplementedError

    def invoke(self, native_input: np.ndarray) -> np.ndarray:
        """Run the model on an already prepared native input; return its native output."""
        raise NotImplementedError

    def info(self) -> dict[str, Any]:
        """Runtime name, version and the options that affect speed."""
        return {"runtime": self.runtime, "threads": self.threads}

    # --- shared ---------------------------------------------------------------------------
    def load(self) -> float:
        """Load/initialise the model; return the initialisation time in milliseconds."""
        t0 = time.perf_counter()
        try:
            self._load()
        except BenchError:
            raise
        except Exception as exc:  # noqa: BLE001 - every runtime raises its own types
            raise BenchError(f"cannot load {self.path.name} with {self.runtime}: the file is damaged or not a model "
                             f"this runtime reads ({_load_detail(exc)}); re-run gs-export") from exc
        self.loaded = True
        return (time.perf_counter() - t0) * 1e3

    def prepare(self, x_nchw: np.ndarray) -> np.ndarray:
        """float NCHW [-1, 1] -> native input (layout + quantisation)."""
        return quantize(to_layout(x_nchw.astype(np.float32, copy=False), self.input_spec.layout),
                        self.input_spec)

    def finish(self, native_output: np.ndarray) -> np.ndarray:
        """native output -> float NCHW [-1, 1]."""
        return from_layout(dequantize(native_output, self.output_spec), self.output_spec.layout)

    def timed_invoke(self, native_input: np.ndarray) -> tuple[float, np.ndarray]:
        """One timed invocation: (milliseconds, native output)."""
        t0 = time.perf_counter()
        out = self.invoke(native_input)
        return (time.perf_counter() - t0) * 1e3, out

    def run(self, x_nchw: np.ndarray) -> np.ndarray:
        """float NCHW in, float NCHW out (one image per call, batch 1)."""
        return self.finish(self.invoke(self.prepare(x_nchw)))

    def _check_dtype(self, what: str, declared: str, spec: TensorSpec) -> None:
        if declared != spec.dtype:
            raise BenchError(f"manifest mismatch for {self.path.name}: {what} dtype is {declared} "
                             f"in the model but {spec.dtype} in manifest.json")


class LiteRTRunner(Runner):
    """LiteRT (ai-edge-litert) Interpreter; XNNPACK is its default CPU delegate."""

    runtime = "tflite"

    def _load(self) -> None:
        from ai_edge_litert.interpreter import Interpreter

        self.interp = Interpreter(model_path=str(self.path), num_threads=self.threads)
        inp = self.interp.get_input_details()[0]
        if self.size is not None and tuple(inp["shape"][1:3]) != self.size:
            self.interp.resize_tensor_input(inp["index"], [1, self.size[0], self.size[1], 3])
        self.interp.allocate_tensors()
        inp = self.interp.get_input_details()[0]
        out = self.interp.get_output_details()[0]
        self._in_index, self._out_index = inp["index"], out["index"]
        for what, det, spec in (("input", inp, self.input_spec), ("output", out, self.output_spec)):
            self._check_dtype(what, np.dtype(det["dtype"]).name, spec)
            if spec.scale is not None:
                scale, zp = det["quantization"]
                if not np.isclose(scale, spec.scale, rtol=1e-4) or int(zp) != spec.zero_point:
                    raise BenchError(
                        f"manifest mismatch for {self.path.name}: {what} quantisation is "
                        f"scale={scale:.6g} zero_point={zp} in the model but scale={spec.scale:.6g} "
                        f"zero_point={spec.zero_point} in manifest.json")

    def invoke(self, native_input: np.ndarray) -> np.ndarray:
        self.interp.set_tensor(self._in_index, native_input)
        self.interp.invoke()
        return self.interp.get_tensor(self._out_index)

    def info(self) -> dict[str, Any]:
        return {"runtime": self.runtime, "version": package_version("ai-edge-litert"),
                "threads": self.threads, "delegate": "XNNPACK (LiteRT default CPU delegate)"}


class OrtRunner(Runner):
    """ONNX Runtime CPUExecutionProvider with all graph optimisations, sequential execution."""

    runtime = "onnxruntime"
    _ORT_TYPES = {"tensor(float)": "float32", "tensor(int8)": "int8", "tensor(uint8)": "uint8"}

    def _load(self) -> None:
        import onnxruntime as ort

        so = ort.SessionOptions()
        so.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_ALL
        so.intra_op_num_threads = self.threads
        so.inter_op_num_threads = 1
        so.execution_mode = ort.ExecutionMode.ORT_SEQUENTIAL
        so.log_severity_level = 3
        self._opt_level = str(so.graph_optimization_level).split(".")[-1]
        self.sess = ort.InferenceSession(str(self.path), so, providers=["CPUExecutionProvider"])
        inp, out = self.sess.get_inputs()[0], self.sess.get_outputs()[0]
        self._check_dtype("input", self._ORT_TYPES.get(inp.type, inp.type), self.input_spec)
        self._check_dtype("output", self._ORT_TYPES.get(out.type, out.type), self.output_spec)
        self._in_name, self._out_name = inp.name, out.name

    def invoke(self, native_input: np.ndarray) -> np.ndarray:
        return self.sess.run([self._out_name], {self._in_name: native_input})[0]

    def info(self) -> dict[str, Any]:
        return {"runtime": self.runtime, "version": package_version("onnxruntime"),
                "threads": self.threads, "inter_op_threads": 1,
                "graph_optimization_level": getattr(self, "_opt_level", "ORT_ENABLE_ALL"),
                "execution_provider": "CPUExecutionProvider"}


class TorchRunner(Runner):
    """A TorchScript file (``torch.jit.save``) run in eager inference mode."""

    runtime = "torch"

    def _load(self) -> None:
        import torch

        self._torch = torch
        torch.set_num_threads(self.threads)
        self.module = torch.jit.load(str(self.path), map_location="cpu").eval()

    def invoke(self, native_input: np.ndarray) -> np.ndarray:
        with self._torch.inference_mode():
            return self.module(self._torch.from_numpy(native_input)).numpy()

    def info(self) -> dict[str, Any]:
        return {"runtime": self.runtime, "version": package_version("torch"),
                "threads": self.threads, "mode": "torch.jit.load + inference_mode"}


_RUNNERS: dict[str, type[Runner]] = {"tflite": LiteRTRunner, "onnxruntime": OrtRunner,
                                     "torch": TorchRunner}
#: runtime names used on the command line and in JSON.
RUNTIMES: tuple[str, ...] = tuple(_RUNNERS)


def artifact_runtime(artifact: dict[str, Any]) -> str | None:
    """The runtime a manifest artifact entry names (null: none runs it), else the one of its format."""
    if "runtime" in artifact:
        return None if artifact["runtime"] is None else str(artifact["runtime"])
    return _LEGACY_FORMAT_RUNTIME.get(str(artifact.get("format")))


def runner_for(artifact: dict[str, Any], path: Path, threads: int,
               size: tuple[int, int] | None = None) -> Runner:
    """The Runner for one manifest artifact entry (its file at ``path``)."""
    runtime = artifact_runtime(artifact)
    if runtime not in _RUNNERS:
        raise BenchError(f"artifact {artifact.get('name')!r} has format {artifact.get('format')!r} (runtime "
                         f"{runtime!r}), which gs-bench cannot run")
    try:
        inp = TensorSpec.from_manifest(artifact["inputs"][0])
        out = TensorSpec.from_manifest(artifact["outputs"][0])
    except (KeyError, IndexError) as exc:
        raise BenchError(f"artifact {artifact.get('name')!r} lacks inputs/outputs in manifest.json") from exc
    return _RUNNERS[runtime](path, inp, out, threads, size)
