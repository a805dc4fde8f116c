"""Interleaved rounds in ONE process: the student/teacher latency ratio on a noisy machine.

Why: on the shared 2-core VM this project is built on, each vCPU's speed swings by up to 2x within
seconds (a spin loop pinned to one vCPU counted 155..334 k iterations per 0.5 s). Artifacts measured
one after another, each in its own process, therefore saw different machines: the student/teacher
p50 ratio of the same export varied from 0.018 to 0.034 between runs. Here every artifact runs in
each short round, in a serpentine order, so a student and its teacher share the conditions of the
round; the ratio is the median over rounds of (student round median / teacher round median).

    python -m runtime_bench.paired --spec SPEC.json --inputs inputs.npy --out-dir OUT \
        [--threads 2 --warmup 5 --rounds 60 --size H W]

SPEC.json: {"artifacts": [{"label", "artifact": <manifest entry>, "model": path, "est_ms": p50}],
"pairs": {student_label: [teacher_label, ...]}}. Writes OUT/result.json ({"ok": true, "ratios":
{student: {teacher: stats}}, ...} or {"ok": false, "error": ...}); exit 0, or 2 on failure.
"""
from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path
from typing import Any, Callable, Sequence

import numpy as np

from .remote_runner import run_worker
from .runners import Runner, runner_for
from .stats import noise_band

#: wall time each artifact gets per round; fast students repeat to fill it (their round median).
ROUND_MS = 100.0
MAX_REPS = 10


def reps_for(est_ms: float, round_ms: float = ROUND_MS, max_reps: int = MAX_REPS) -> int:
    """Invocations per round for an artifact whose latency is about ``est_ms``."""
    return int(min(max_reps, max(1, round(round_ms / max(float(est_ms), 1e-3)))))


def round_order(labels: Sequence[str], r: int) -> list[str]:
    """Forward on even rounds, backward on odd ones: no artifact always runs right after the same one."""
    return list(labels) if r % 2 == 0 else list(labels)[::-1]


def interleaved_rounds(invoke: dict[str, Callable[[], float]], reps: dict[str, int], rounds: int,
                       progress: Callable[[int], None] | None = None) -> dict[str, list[float]]:
    """Per-round median latency (ms) of every artifact; ``invoke[label]()`` times one inference."""
    medians: dict[str, list[float]] = {label: [] for label in invoke}
    for r in range(rounds):
        for label in round_order(list(invoke), r):
            medians[label].append(float(np.median([invoke[label]() for _ in range(reps[label])])))
        if progress:
            progress(r + 1)
    return medians


def ratio_stats(student_ms: Sequence[float], teacher_ms: Sequence[float]) -> dict[str, float | int]:
    """Median, noise band and range of the per-round ratios student/teacher."""
    ratios = np.asarray(student_ms, dtype=np.float64) / np.asarray(teacher_ms, dtype=np.float64)
    return {"p50": float(np.median(ratios)), "noise": noise_band(ratios), "rounds": int(ratios.size),
            "min": float(ratios.min()), "max": float(ratios.max())}


def measure_paired(spec: dict[str, Any], images: np.ndarray, threads: int, warmup: int, rounds: int,
                   size: tuple[int, int] | None = None, progress: bool = False) -> dict[str, Any]:
    """Load every artifact of ``spec`` in this process, warm up, run the rounds, return the ratios."""
    from tqdm import tqdm

    runners: dict[str, Runner] = {}
    native: dict[str, np.ndarray] = {}
    for a in spec["artifacts"]:
        runner = runner_for(a["artifact"], Path(a["model"]), threads, size)
        runner.load()
        native[a["label"]] = runner.prepare(images[:1])
        for _ in range(max(1, warmup)):
            runner.invoke(native[a["label"]])
        runners[a["label"]] = runner
    reps = {a["label"]: reps_for(a["est_ms"]) for a in spec["artifacts"]}
    invoke = {label: (lambda r=runner, x=native[label]: r.timed_invoke(x)[0]) for label, runner in runners.items()}
    with tqdm(total=rounds, desc="interleaved rounds", unit="round", file=sys.stderr, disable=not progress) as bar:
        medians = interleaved_rounds(invoke, reps, rounds, progress=lambda r: bar.update(1))
    ratios = {s: {t: ratio_stats(medians[s], medians[t]) for t in teachers}
              for s, teachers in spec["pairs"].items()}
    return {"ok": True, "rounds": rounds, "round_ms": ROUND_MS, "reps": reps,
            "order": list(runners), "round_medians_ms": medians, "ratios": ratios}


def _parse(argv: Sequence[str] | None) -> argparse.Namespace:
    p = argparse.ArgumentParser(prog="python -m runtime_bench.paired", description=__doc__,
                                formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--spec", type=Path, required=True)
    p.add_argument("--inputs", type=Path, required=True)
    p.add_argument("--out-dir", type=Path, required=True)
    p.add_argument("--threads", type=int, default=2)
    p.add_argument("--warmup", type=int, default=5)
    p.add_argument("--rounds", type=int, default=60)
    p.add_argument("--size", type=int, nargs=2, default=None, metavar=("H", "W"))
    p.add_argument("--progress", action="store_true", help="progress bar on stderr")
    return p.parse_args(argv)


def main(argv: Sequence[str] | None = None) -> int:
    """Worker entry point; always writes result.json."""
    args = _parse(argv)

    def work() -> dict[str, Any]:
        spec = json.loads(args.spec.read_text())
        images = np.load(args.inputs).astype(np.float32)
        return measure_paired(spec, images, args.threads, args.warmup, args.rounds,
                              tuple(args.size) if args.size else None, args.progress)

    return run_worker(args.out_dir, work)


if __name__ == "__main__":
    sys.exit(main())
