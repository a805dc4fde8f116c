"""The CI cost gate for the default pipeline: export the committed student, count, compare.

    python -m pipeline.ci_gate                 # count + compare with the committed baseline
    python -m pipeline.ci_gate --update        # re-count and overwrite the committed baseline

The committed student (`baselines/default_student.pt`, the quick preset's result on the default
teacher) is exported to TFLite at 128x128 and every LiteRT artifact (student INT8, student fp32,
teacher fp32) runs once under qemu-aarch64 on a Neoverse-N1 core model with the counting plugin
(runtime_bench.arm): instructions per inference, split by MAC class. The count depends on the
LiteRT build, the core model and the size, not on the host: a baseline made on one x86 machine
holds on any other, with or without VNNI, loaded or idle. `gs-bench compare` gates on the counts
(2 %) and shows emulated wall times as information. The Markdown report is written to
`ci-artifacts/bench_report.md`, with the teacher/student instruction ratio. Needs Debian's
qemu-user, gcc and the sysroot of `runtime_bench/qemu/setup.sh` (`make sysdeps` builds it).
"""
from __future__ import annotations

import argparse
import shutil
import sys
import tempfile
from pathlib import Path

BASELINES = Path(__file__).resolve().parent / "baselines"
STUDENT = BASELINES / "default_student.pt"
BASELINE_JSON = BASELINES / "default_neoverse-n1_128px.json"
SIZE = 128
CORE = "neoverse-n1"


def measure(student: Path, work: Path) -> Path:
    """Export `student` (TFLite, SIZE px) and count its artifacts under qemu-aarch64; returns bench.json."""
    from export.cli import main as export_main

    from runtime_bench.cli import main as bench_main

    export_dir = work / "export"
    if export_main([str(student), "--format", "tflite", "--size", str(SIZE), "--out", str(export_dir), "--quiet"]):
        raise SystemExit("ci-gate: gs-export failed")
    out = work / "bench.json"
    if bench_main([str(export_dir), "--runtime", "tflite", "--target", "qemu-aarch64", "--arm-cpu", CORE,
                   "--no-kid", "--quiet", "--json", str(out)]):
        raise SystemExit("ci-gate: gs-bench failed")
    return out


def gate(report_dir: Path, baseline: Path = BASELINE_JSON, student: Path = STUDENT) -> int:
    """Measure now and compare with the baseline; 0 = no regression, 1 = regression, 2 = not comparable."""
    from runtime_bench.cli import main as bench_main

    report_dir.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(prefix="gs-ci-gate-") as tmp:
        current = measure(student, Path(tmp))
        shutil.copy(current, report_dir / "bench_current.json")
    return bench_main(["compare", str(baseline), str(report_dir / "bench_current.json"),
                       "--report", str(report_dir / "bench_report.md")])


def update(student: Path = STUDENT, baseline: Path = BASELINE_JSON) -> Path:
    with tempfile.TemporaryDirectory(prefix="gs-ci-gate-") as tmp:
        shutil.copy(measure(student, Path(tmp)), baseline)
    return baseline


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(prog="python -m pipeline.ci_gate", description=__doc__.split("\n\n")[0])
    p.add_argument("--update", action="store_true", help="re-measure and overwrite the committed baseline")
    p.add_argument("--report-dir", type=Path, default=Path("ci-artifacts"))
    a = p.parse_args(argv)
    if a.update:
        print(f"baseline written: {update()}")
        return 0
    rc = gate(a.report_dir)
    verdict = {0: "no regression", 1: "regression"}.get(rc, "not compared: see the error above")
    print(f"cost report: {a.report_dir / 'bench_report.md'} ({verdict})")
    return rc


if __name__ == "__main__":
    sys.exit(main())
