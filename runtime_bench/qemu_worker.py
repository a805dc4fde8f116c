"""The worker gs-bench runs under qemu-aarch64 for one artifact (see ``runtime_bench.arm``).

    qemu-aarch64 ... python3 -m runtime_bench.qemu_worker --artifact-json A.json --model M \
        --inputs X.npy --out-dir OUT [--threads 1] [--size H W]

Load the model, prepare the first image, then run it once between two snapshots of the counting
plugin (mark 1 | inference | mark 2): start-up and loading are outside the count. The count is of
that first inference: the one-time set-up it includes is small (on the INT8 student at 256x256
under neoverse-n1, first 560,377,395 vs second 560,331,116 instructions: 0.008 %), and under
emulation an inference of the fp32 teacher takes minutes, so nothing more is run. Its output is
checked against x86. Writes OUT/result.json and OUT/outputs.npy (float NCHW), like ``remote_runner``.
"""
from __future__ import annotations

import ctypes
import platform
import sys
from pathlib import Path
from typing import Any, Sequence

import numpy as np

from .arm import MARK_SYSCALL
from .remote_runner import run_worker, worker_parser
from .runners import runner_for
from .stats import summarize, versions


def mark(libc: ctypes.CDLL, n: int) -> None:
    """Snapshot the plugin's counters (an unknown syscall: ENOSYS, and a no-op without the plugin)."""
    libc.syscall(MARK_SYSCALL, n)


def main(argv: Sequence[str] | None = None) -> int:
    """Entry point; always writes result.json, even on failure."""
    import json

    p = worker_parser("python -m runtime_bench.qemu_worker", threads=1)
    p.add_argument("--out-dir", type=Path, required=True)
    args = p.parse_args(argv)

    def work() -> dict[str, Any]:
        artifact = json.loads(args.artifact_json.read_text())
        images = np.load(args.inputs).astype(np.float32)[:1]
        runner = runner_for(artifact, args.model, args.threads, tuple(args.size) if args.size else None)
        libc = ctypes.CDLL(None)
        init_ms = runner.load()
        native = runner.prepare(images)
        mark(libc, 1)
        ms, out = runner.timed_invoke(native)
        mark(libc, 2)
        np.save(args.out_dir / "outputs.npy", runner.finish(out).astype(np.float32))
        return {"ok": True, "init_ms": init_ms, "first_ms": ms, "latency_ms": summarize([ms]),
                "rss_before_load_mb": None, "peak_rss_mb": None, "runtime_info": runner.info(),
                "host": {"machine": platform.machine(), "versions": versions()}}

    return run_worker(args.out_dir, work)


if __name__ == "__main__":
    sys.exit(main())
