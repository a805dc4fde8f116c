"""The qemu-aarch64 target: each artifact once under an emulated Arm core, its instructions counted.

See ``runtime_bench.arm`` for the core models, the sysroot and the counting plugin, and
``runtime_bench.qemu_worker`` for what runs inside the emulated process.
"""
from __future__ import annotations

import shutil
import time
from pathlib import Path
from typing import Any

import numpy as np

from . import arm
from .manifest import Artifact
from .targets import Settings, Target, _run, read_worker_output

#: LiteRT's log line when its XNNPACK delegate is applied: the delegate is recorded as observed.
XNNPACK_LOG = "Created TensorFlow Lite XNNPACK delegate"


def observed_delegate(runtime: str, stderr: str) -> str | None:
    """What the worker's log shows about LiteRT's CPU path (None for other runtimes)."""
    if runtime != "tflite":
        return None
    return "XNNPACK (observed in the log)" if XNNPACK_LOG in stderr else "none: built-in kernels (no XNNPACK log line)"


class QemuTarget(Target):
    """aarch64 LiteRT / ONNX Runtime under qemu-user on a named core: instruction counts + outputs.

    Each artifact runs once in ``runtime_bench.qemu_worker`` with the counting plugin; the result
    carries the instructions of one inference (``instructions_per_inference``, ``instructions``)
    and the first image's output, which gs-bench checks against the x86 build.
    """

    timings_meaningful = False
    runtimes = ("tflite", "onnxruntime")
    #: measured with the plugin on a 2-core Xeon: ~1e-8 s per MAC for fp32 (TCG emulates FMLA in
    #: software), ~1e-9 for INT8; a 4x margin over fp32 and a minute of start-up bound any run.
    SECONDS_PER_MAC = 4e-8

    def __init__(self, rootfs: Path | None = None, core_name: str = arm.DEFAULT_CORE) -> None:
        self.rootfs = Path(rootfs or arm.DEFAULT_ROOTFS)
        self.core = arm.core(core_name)
        self.emulator: arm.Emulator | None = None  # resolved by prepare()
        self.name = "qemu-aarch64"

    def prepare(self, work: Path) -> None:
        self.emulator = arm.Emulator.prepare(self.rootfs, self.core)

    def timeout(self, art: Artifact, s: Settings) -> float:
        """The artifact's time limit: --timeout, or more when its MACs need it."""
        macs = float(art.entry.get("macs") or 0)
        shape = (art.entry.get("inputs") or [{}])[0].get("shape")
        if s.size and shape:  # MACs grow with the pixels: scale from the export's size to --size
            macs *= s.size[0] * s.size[1] / (float(np.prod(shape)) / 3)
        return max(s.timeout_s, 60.0 + macs * self.SECONDS_PER_MAC)

    def measure(self, art: Artifact, inputs: Path, work: Path, s: Settings) -> tuple[dict[str, Any], np.ndarray | None]:
        self.check_runtime(art)
        out = work / f"{art.name}.qemu"
        shutil.rmtree(out, ignore_errors=True)
        out.mkdir(parents=True)
        counts_file = out / "counts.txt"
        args = ["-m", "runtime_bench.qemu_worker", "--artifact-json", str(self.write_artifact_json(art, work)),
                "--model", str(art.path), "--inputs", str(inputs), "--out-dir", str(out), "--threads", "1"]
        if s.size:
            args += ["--size", str(s.size[0]), str(s.size[1])]
        assert self.emulator is not None, "prepare() first"
        cmd = self.emulator.command(args, counts_file)
        limit = self.timeout(art, s)
        t0 = time.perf_counter()
        proc = _run(cmd, limit, f"qemu-aarch64 run of {art.name} (limit {limit:.0f} s from its MACs)",
                    env=arm.guest_env(self.rootfs, 1))
        seconds = time.perf_counter() - t0
        result, outputs = read_worker_output(out, art.name, proc)
        counts = arm.between(arm.parse_plugin_output(counts_file.read_text()), 1, 2)
        info = dict(result.get("runtime_info") or {})
        if (delegate := observed_delegate(art.runtime, proc.stderr or "")) is not None:
            info["delegate"] = delegate
        result["runtime_info"] = info
        result["instructions_per_inference"] = float(counts["total"])
        result["instructions"] = {
            "method": "aarch64 instructions of one inference, load excluded (qemu TCG plugin, runtime_bench.arm)",
            "counter": f"qemu-aarch64 {self.emulator.version} -cpu {self.core.qemu_cpu}", "core": self.core.name,
            "threads": 1, "classes": counts, "seconds": round(seconds, 1)}
        return result, outputs
