"""gs-demo: the whole pipeline on the embedded default, re-runnable stage by stage.

    preview (teacher on the default photos) -> gs-compress --preset quick -> gs-export --format all
    -> gs-bench -> gs-bench --target qemu-aarch64 (ARM instruction counts) -> report (HTML + Markdown)

Finished stages are reused (their output file exists) unless --force. Each stage is run through its
own command-line entry point, so the demo exercises exactly what users run by hand.
"""
from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path
from typing import Callable


def _stage(name: str, done: Path, force: bool, run: Callable[[], int]) -> None:
    if done.exists() and not force:
        print(f"[gs-demo] {name}: reusing {done} (--force to redo)")
        return
    print(f"[gs-demo] {name} ...", flush=True)
    t0 = time.time()
    rc = run()
    if rc != 0:
        raise SystemExit(f"gs-demo: stage '{name}' failed (exit {rc})")
    print(f"[gs-demo] {name}: done in {time.time() - t0:.0f} s", flush=True)


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(prog="gs-demo", description="Run preview -> gs-compress -> gs-export -> gs-bench "
                                "-> report on the default teacher and photos.")
    p.add_argument("--out", type=Path, default=Path("runs/demo"), help="output directory (default runs/demo)")
    p.add_argument("--preset", default="quick", help="gs-compress preset (quick: about 30 min on 2 cores)")
    p.add_argument("--size", type=int, default=256, help="export / benchmark resolution")
    p.add_argument("--runs", type=int, default=20, help="benchmark runs per artifact")
    p.add_argument("--force", action="store_true", help="redo finished stages")
    p.add_argument("--compress-args", default="", help="extra gs-compress arguments (quoted)")
    p.add_argument("--no-arm", action="store_true",
                   help="skip counting the LiteRT artifacts' aarch64 instructions under qemu (about 9 min: "
                        "the fp32 teacher is emulated; skipped anyway without runtime_bench/qemu/setup.sh's sysroot)")
    a = p.parse_args(argv)
    out = a.out
    out.mkdir(parents=True, exist_ok=True)
    run_dir, export_dir = out / "run", out / "export"

    from compress.cli import main as compress_main

    _stage("teacher preview", out / "preview" / "teacher_preview.png", a.force,
           lambda: compress_main(["preview", "--out", str(out / "preview")]))
    _stage("gs-compress", run_dir / "student.pt", a.force,
           lambda: compress_main(["--preset", a.preset, "--out", str(run_dir), "--eval-size", str(a.size),
                                  *a.compress_args.split()] + (["--resume"] if not a.force else [])))
    from export.cli import main as export_main

    _stage("gs-export", export_dir / "manifest.json", a.force,
           lambda: export_main([str(run_dir), "--format", "all", "--out", str(export_dir), "--size", str(a.size)]))
    from runtime_bench.arm import why_unavailable
    from runtime_bench.cli import main as bench_main

    _stage("gs-bench", out / "bench.json", a.force,
           lambda: bench_main([str(export_dir), "--json", str(out / "bench.json"), "--runs", str(a.runs),
                               "--threads", "2"]))
    arm_json = out / "bench_arm.json"
    if a.no_arm:
        print("[gs-demo] ARM count: skipped (--no-arm)")
    elif (why := why_unavailable()) is not None:
        print(f"[gs-demo] ARM count: skipped ({why})")
    else:  # the LiteRT artifacts under qemu-aarch64 on a Neoverse-N1 model: minutes (the fp32 teacher)
        _stage("gs-bench ARM count (qemu-aarch64, neoverse-n1)", arm_json, a.force,
               lambda: bench_main([str(export_dir), "--runtime", "tflite", "--target", "qemu-aarch64",
                                   "--no-kid", "--json", str(arm_json), "--out-dir", str(out / "bench_arm")]))
    from pipeline.report import write_report

    _stage("report", out / "report.html", a.force,
           lambda: write_report(out, run_dir, export_dir, out / "bench.json",
                                arm_json if arm_json.exists() else None))
    print(f"[gs-demo] report: {(out / 'report.html').resolve()}  (Markdown twin: {out / 'report.md'})")
    return 0


if __name__ == "__main__":
    sys.exit(main())
