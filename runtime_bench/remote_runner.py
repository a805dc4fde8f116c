"""Measure ONE artifact in this (fresh) process: the worker gs-bench starts per artifact.

It runs locally in a subprocess (so init time and peak RSS belong to that artifact alone), on an
ARM board over ssh, or under qemu-aarch64. Needs only numpy and the artifact's runtime.

    python3 -m runtime_bench.remote_runner --artifact-json A.json --model M.tflite \
        --inputs inputs.npy --out-dir OUT [--threads 2 --warmup 5 --runs 50 --size H W]

Writes OUT/result.json ({"ok": true, ...} or {"ok": false, "error": "..."}) and, on success,
OUT/outputs.npy: the float NCHW output for every input image. Exit code 0, or 2 on failure.
"""
from __future__ import annotations

import argparse
import json
import platform
import sys
from pathlib import Path
from typing import Any, Callable, Sequence

import numpy as np

from .errors import BenchError
from .runners import runner_for
from .stats import cpu_model, current_rss_mb, peak_rss_mb, summarize, versions


def measure(artifact: dict[str, Any], model: Path, images: np.ndarray, threads: int, warmup: int,
            runs: int, size: tuple[int, int] | None = None) -> tuple[dict[str, Any], np.ndarray]:
    """Load, time the first inference, warm up, time ``runs`` inferences, then run every image.

    Timing uses the first image; outputs for quality are computed after timing.
    """
    rss_before = current_rss_mb()
    runner = runner_for(artifact, model, threads, size)
    init_ms = runner.load()
    native = runner.prepare(images[:1])
    first_ms, _ = runner.timed_invoke(native)
    for _ in range(warmup):
        runner.invoke(native)
    times = [runner.timed_invoke(native)[0] for _ in range(runs)]
    outputs = np.concatenate([runner.run(images[i:i + 1]) for i in range(len(images))], axis=0)
    result = {"ok": True, "init_ms": init_ms, "first_ms": first_ms, "times_ms": times,
              "latency_ms": summarize(times), "rss_before_load_mb": rss_before,
              "peak_rss_mb": peak_rss_mb(), "runtime_info": runner.info(),
              "host": {"cpu_model": cpu_model(), "machine": platform.machine(), "versions": versions()}}
    return result, outputs.astype(np.float32)


def worker_parser(prog: str, threads: int) -> argparse.ArgumentParser:
    """The arguments every per-artifact worker process takes (this runner, the instruction counter)."""
    p = argparse.ArgumentParser(prog=prog, description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--artifact-json", type=Path, required=True, help="the artifact's manifest entry")
    p.add_argument("--model", type=Path, required=True, help="the artifact file")
    p.add_argument("--inputs", type=Path, required=True, help=".npy float32 NCHW images in [-1, 1]")
    p.add_argument("--threads", type=int, default=threads)
    p.add_argument("--size", type=int, nargs=2, default=None, metavar=("H", "W"))
    return p


def _parse(argv: Sequence[str] | None) -> argparse.Namespace:
    p = worker_parser("python -m runtime_bench.remote_runner", threads=2)
    p.add_argument("--out-dir", type=Path, required=True)
    p.add_argument("--warmup", type=int, default=5)
    p.add_argument("--runs", type=int, default=50)
    return p.parse_args(argv)


def run_worker(out_dir: Path, work: Callable[[], dict[str, Any]]) -> int:
    """Run ``work`` and write its result to OUT/result.json; any failure becomes {"ok": false, "error"}.

    Returns the worker's exit code: 0, or 2 on failure. Shared by every worker process.
    """
    out_dir.mkdir(parents=True, exist_ok=True)
    try:
        result, code = work(), 0
    except BenchError as exc:
        result, code = {"ok": False, "error": str(exc)}, 2
    except Exception as exc:  # noqa: BLE001 - report any runtime failure as one line
        msg = str(exc).strip().splitlines()[0] if str(exc).strip() else ""
        result, code = {"ok": False, "error": f"{type(exc).__name__}: {msg}"}, 2
    (out_dir / "result.json").write_text(json.dumps(result))
    return code


def main(argv: Sequence[str] | None = None) -> int:
    """Entry point; always writes result.json, even on failure."""
    args = _parse(argv)

    def work() -> dict[str, Any]:
        artifact = json.loads(args.artifact_json.read_text())
        images = np.load(args.inputs).astype(np.float32)
        result, outputs = measure(artifact, args.model, images, args.threads, args.warmup, args.runs,
                                  tuple(args.size) if args.size else None)
        np.save(args.out_dir / "outputs.npy", outputs)
        return result

    return run_worker(args.out_dir, work)


if __name__ == "__main__":
    sys.exit(main())
