"""The GS trade-off table: several budgets, and one budget without the GAN term / without QAT.

    python -m compress.ablation --out runs/ablation --steps 250 --jobs 2

Each row is a real gs-compress run (same seed, same teacher-labelled views, shared through the
first run's cache); the table (Markdown + JSON) reads each run's metrics.json.
"""
from __future__ import annotations

import argparse
import json
import shutil
import subprocess
import sys
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

from .config import G, make_config
from .macs import count_module_macs, count_params
from .teachers import load_teacher

ROWS: dict[str, list[str]] = {
    "budget 1/6 MACs, 1/8 params": ["--target-macs", "1/6", "--target-params", "1/8"],
    "budget 1/9 MACs, 1/12 params (quick default)": [],
    "budget 1/14 MACs, 1/18 params": ["--target-macs", "1/14", "--target-params", "1/18"],
    "1/9 budget, no GAN term": ["--no-gan"],
    "1/9 budget, no QAT (fp32 training)": ["--no-qat"],
    "1/9 budget, no colour head": ["--no-colour-head"],
}


def teacher_totals() -> dict[str, int]:
    """MACs (at the quick preset's eval size) and parameters of the default teacher."""
    teacher = load_teacher("default").model
    size = make_config("quick").eval_size
    return {"--target-macs": count_module_macs(teacher, size, size), "--target-params": count_params(teacher)}


def _absolute(args: list[str], totals: dict[str, int]) -> list[str]:
    """Turn '1/6'-style budgets into absolute numbers of the default teacher."""
    out = list(args)
    for flag, total in totals.items():
        if flag in out:
            i = out.index(flag) + 1
            num, den = out[i].split("/")
            out[i] = str(int(total * float(num) / float(den)))
    return out


def run_row(name: str, extra: list[str], out: Path, steps: int, cache: Path | None, totals: dict[str, int]) -> Path:
    run_dir = out / name.split(" (")[0].replace(" ", "_").replace("/", "-").replace(",", "")
    if cache is not None and cache.is_dir() and not (run_dir / "cache").exists():
        run_dir.mkdir(parents=True, exist_ok=True)
        shutil.copytree(cache, run_dir / "cache")
    if not (run_dir / "metrics.json").is_file():
        cmd = [sys.executable, "-m", "compress.cli", "--out", str(run_dir), "--steps", str(steps), "--threads", "1",
               "--no-progress", "--resume", *_absolute(extra, totals)]
        with open(run_dir.parent / f"{run_dir.name}.log", "w") as log:
            subprocess.run(cmd, check=True, stdout=log, stderr=subprocess.STDOUT)
    return run_dir


def table(runs: dict[str, Path]) -> tuple[str, list[dict]]:
    lines = ["| run | MACs | params | PSNR fake-quant INT8 | PSNR fp32 | SSIM | identity |",
             "|---|---|---|---|---|---|---|"]
    rows = []
    for name, run_dir in runs.items():
        m = json.loads((run_dir / "metrics.json").read_text())
        q = m["quality"]
        row = {"run": name, "macs": m["student_macs"], "params": m["student_params"],
               "psnr_fakequant": q["fakequant"]["psnr"], "psnr_fp32": q["fp32"]["psnr"],
               "ssim_fakequant": q["fakequant"]["ssim"], "psnr_identity": q["identity_baseline"]["psnr"],
               "steps": m["config"]["steps"]}
        rows.append(row)
        lines.append(f"| {name} | {row['macs'] / G:.2f}G ({m['macs_ratio']:.1f}x) | {row['params'] / 1e6:.3f}M "
                     f"({m['params_ratio']:.1f}x) | {row['psnr_fakequant']:.2f} dB | {row['psnr_fp32']:.2f} dB | "
                     f"{row['ssim_fakequant']:.3f} | {row['psnr_identity']:.2f} dB |")
    return "\n".join(lines), rows


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(prog="python -m compress.ablation", description=__doc__.split("\n\n")[0])
    p.add_argument("--out", type=Path, default=Path("runs/ablation"))
    p.add_argument("--steps", type=int, default=250)
    p.add_argument("--jobs", type=int, default=2, help="runs in parallel (1 thread each)")
    p.add_argument("--cache", type=Path, help="a RUN_DIR/cache with teacher-labelled views to reuse")
    a = p.parse_args(argv)
    a.out.mkdir(parents=True, exist_ok=True)
    totals = teacher_totals()
    with ThreadPoolExecutor(a.jobs) as pool:
        futures = {name: pool.submit(run_row, name, extra, a.out, a.steps, a.cache, totals)
                   for name, extra in ROWS.items()}
        runs = {name: f.result() for name, f in futures.items()}
    md, rows = table(runs)
    (a.out / "table.md").write_text(md + "\n")
    (a.out / "table.json").write_text(json.dumps(rows, indent=2))
    print(md)
    return 0


if __name__ == "__main__":
    sys.exit(main())
