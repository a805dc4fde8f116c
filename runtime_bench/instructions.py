"""Instructions per inference under ``valgrind --tool=callgrind``: a load-independent CI metric.

Wall time on a shared machine moves with whatever else runs there; the number of instructions
an inference executes does not. For one artifact we run a small worker (this module's ``main``)
twice under callgrind, in the same way except for the number of invokes: ``runs`` and then
``runs + extra`` invokes of the same prepared input with the same thread count. Start-up, imports,
model loading and the first (one-time set-up) invoke are identical in both runs, so

    instructions_per_inference = (Ir(runs + extra) - Ir(runs)) / extra

Determinism: ``PYTHONHASHSEED=0``, no bytecode writes (the first run would otherwise write .pyc
files the second one reads), Python's garbage collector frozen before the invoke loop, one
intra-op thread by default, and ASLR off via ``setarch -R`` where the kernel allows it. Counts are
those of the code paths chosen on valgrind's emulated CPU (AVX2 at most in valgrind 3.19), which
may differ from the native ones, and valgrind's emulated CPU follows the host's (a host without
AVX2 counts other kernels): each count records ``host_isa`` and `gs-bench compare` does not gate
counts made on hosts of different ISA. They are for comparing runs, not for predicting latency;
the host-independent count is the aarch64 one (``--target qemu-aarch64``, runtime_bench.arm).

    python -m runtime_bench.instructions --artifact-json A.json --model M --inputs X.npy --invokes N \
        [--threads 1] [--size H W]
"""
from __future__ import annotations

import argparse
import functools
import gc
import os
import platform
import re
import shutil
import subprocess
import sys
import time
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Sequence

import numpy as np

from .errors import BenchError
from .stats import isa

#: keys this module adds to an artifact's bench result (and to its JSON entry).
RESULT_KEYS = ("instructions_per_inference", "instructions")
METHOD = "callgrind Ir difference: (Ir(runs + extra) - Ir(runs)) / extra, one process per count"
_TOTAL = re.compile(r"^(?:summary|totals):\s*(\d+)", re.MULTILINE)
_PACKAGE_PARENT = Path(__file__).resolve().parents[1]


@dataclass(frozen=True)
class InstrSettings:
    """How instruction counts are measured."""

    runs: int = 2
    extra: int = 2
    threads: int = 1
    timeout_s: float = 3600.0
    roles: tuple[str, ...] = ("student", "teacher")  # which artifacts are counted


def valgrind_version() -> str | None:
    """``valgrind --version`` (e.g. 'valgrind-3.19.0'), or None when valgrind is not installed."""
    exe = shutil.which("valgrind")
    if exe is None:
        return None
    proc = subprocess.run([exe, "--version"], capture_output=True, text=True, timeout=60)
    return proc.stdout.strip() or None


def parse_callgrind_total(text: str) -> int:
    """Total Ir from a callgrind output file (its ``summary:``/``totals:`` line)."""
    m = _TOTAL.search(text)
    if m is None:
        raise BenchError("callgrind output has no summary/totals line")
    return int(m.group(1))


@functools.lru_cache(maxsize=1)
def _no_aslr_prefix() -> tuple[str, ...]:
    """``setarch ARCH -R`` when it works here (containers may forbid personality changes), else []."""
    exe = shutil.which("setarch")
    if exe is None:
        return ()
    cmd = (exe, platform.machine(), "-R")
    try:
        ok = subprocess.run([*cmd, "true"], capture_output=True, timeout=30).returncode == 0
    except (OSError, subprocess.SubprocessError):
        ok = False
    return cmd if ok else ()


def worker_env(threads: int) -> dict[str, str]:
    """Environment of the measured process: fixed hash seed, no .pyc writes, pinned thread pools."""
    pythonpath = os.pathsep.join([str(_PACKAGE_PARENT), *filter(None, [os.environ.get("PYTHONPATH")])])
    return dict(os.environ, PYTHONPATH=pythonpath, PYTHONHASHSEED="0", PYTHONDONTWRITEBYTECODE="1",
                OMP_NUM_THREADS=str(threads), MKL_NUM_THREADS=str(threads), OPENBLAS_NUM_THREADS=str(threads),
                TF_CPP_MIN_LOG_LEVEL="3", CUDA_VISIBLE_DEVICES="")


def worker_command(artifact_json: Path, model: Path, inputs: Path, invokes: int, threads: int,
                   size: tuple[int, int] | None) -> list[str]:
    """The Python command line of one counted worker run."""
    cmd = [sys.executable, "-m", "runtime_bench.instructions", "--artifact-json", str(artifact_json),
           "--model", str(model), "--inputs", str(inputs), "--invokes", str(invokes), "--threads", str(threads)]
    return cmd + (["--size", str(size[0]), str(size[1])] if size else [])


def count_instructions(worker: Sequence[str], out_file: Path, threads: int, timeout_s: float, what: str) -> int:
    """Run ``worker`` under callgrind (ASLR off where possible); return its total instruction count."""
    exe = shutil.which("valgrind")
    if exe is None:
        raise BenchError("instruction counts need valgrind on PATH (apt-get install valgrind)")
    cmd = [*_no_aslr_prefix(), exe, "--tool=callgrind", f"--callgrind-out-file={out_file}",
           "--trace-children=no", *worker]
    try:
        proc = subprocess.run(cmd, capture_output=True, text=True, timeout=timeout_s, env=worker_env(threads))
    except subprocess.TimeoutExpired as exc:
        raise BenchError(f"{what}: callgrind timed out after {timeout_s:.0f} s") from exc
    if proc.returncode != 0 or not out_file.exists():
        tail = (proc.stderr or "").strip().splitlines()[-1:] or [f"exit code {proc.returncode}"]
        raise BenchError(f"{what}: callgrind run failed: {tail[0]}")
    return parse_callgrind_total(out_file.read_text(errors="replace"))


def per_inference(ir_runs: int, ir_more: int, extra: int) -> float:
    """(Ir(N + k) - Ir(N)) / k; BenchError when the difference is not positive."""
    delta = ir_more - ir_runs
    if delta <= 0:
        raise BenchError(f"callgrind counts do not grow with invokes ({ir_runs} -> {ir_more})")
    return delta / extra


def measure_instructions(artifact_json: Path, model: Path, inputs: Path, work: Path, name: str,
                         s: InstrSettings, size: tuple[int, int] | None = None) -> dict[str, Any]:
    """Instructions per inference of one artifact plus the raw counts: the ``RESULT_KEYS`` fields.

    The two counted processes run side by side (wall time of one on two free cores).
    """
    version = valgrind_version()
    if version is None:
        raise BenchError("instruction counts need valgrind on PATH (apt-get install valgrind)")
    def count(n: int) -> int:
        return count_instructions(worker_command(artifact_json, model, inputs, n, s.threads, size),
                                  work / f"{name}.callgrind.{n}", s.threads, s.timeout_s,
                                  f"counting instructions of {name}")

    t0 = time.perf_counter()
    with ThreadPoolExecutor(max_workers=2) as pool:  # two independent processes: counts do not interfere
        counts = list(pool.map(count, (s.runs, s.runs + s.extra)))
    seconds = time.perf_counter() - t0
    return {"instructions_per_inference": per_inference(counts[0], counts[1], s.extra),
            "instructions": {"method": METHOD, "runs": s.runs, "extra": s.extra, "threads": s.threads,
                             "ir_runs": counts[0], "ir_runs_plus_extra": counts[1], "valgrind": version,
                             "aslr_disabled": bool(_no_aslr_prefix()), "seconds": round(seconds, 1),
                             "host_isa": isa()["summary"]}}


def invoke_loop(artifact: dict[str, Any], model: Path, images: np.ndarray, invokes: int, threads: int,
                size: tuple[int, int] | None) -> None:
    """What is counted: load, prepare the first image once, then ``invokes`` invokes with GC frozen."""
    from .runners import runner_for

    runner = runner_for(artifact, model, threads, size)
    runner.load()
    native = runner.prepare(images[:1])
    gc.collect()
    gc.freeze()
    gc.disable()
    for _ in range(invokes):
        runner.invoke(native)


def _parse(argv: Sequence[str] | None) -> argparse.Namespace:
    from .remote_runner import worker_parser

    p = worker_parser("python -m runtime_bench.instructions", threads=1)
    p.description = __doc__
    p.add_argument("--invokes", type=int, required=True)
    return p.parse_args(argv)


def main(argv: Sequence[str] | None = None) -> int:
    """Worker entry point (run under callgrind): exit 0, or 2 with one line on stderr."""
    import json

    args = _parse(argv)
    try:
        artifact = json.loads(args.artifact_json.read_text())
        images = np.load(args.inputs).astype(np.float32)
        invoke_loop(artifact, args.model, images, args.invokes, args.threads,
                    tuple(args.size) if args.size else None)
    except Exception as exc:  # noqa: BLE001 - one line for the parent's error message
        print(f"{type(exc).__name__}: {' '.join(str(exc).split())}", file=sys.stderr)
        return 2
    return 0


if __name__ == "__main__":
    sys.exit(main())
