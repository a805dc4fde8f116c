"""Ablation of the quality levers on the label bank: quick-preset runs, each lever by name, several seeds.

    python -m compress.experiments.levers --out runs/levers [--variants fixed image image+layer] \\
        [--seeds 0 1] [--bank-views 2000] [--jobs 1] [-- extra gs-compress flags]

Each (variant, seed) is one `gs-compress --preset quick --bank-views N --seed S <variant flags>` run in
OUT/<variant>_s<S>; finished runs (their metrics.json exists) are reused. Writes OUT/table.md and
OUT/table.json (PSNR vs the teacher on the val photos with and without the colour head, the worst
photo, how many photos score below their identity) and OUT/curves.png (val PSNR against training step).
"""
from __future__ import annotations

import argparse
import subprocess
import sys
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

from gs_contract import write_json_atomic, write_text_atomic
from gs_contract.figures import pyplot, save_figure

from .bank_curve import markdown_table, row

VARIANTS: dict[str, list[str]] = {
    "fixed": [],                                                        # the folded population norm
    "fixed+layer": ["--w-layer", "0.5"],                                # + layer-wise distillation
    "image": ["--norm", "image"],                                       # INT8 per-image normalisation
    "image+clip": ["--norm", "image", "--prenorm-range", "0.4"],        # + clipped pre-norm int8 grids
    "image+layer": ["--norm", "image", "--w-layer", "0.5"],
    "image-exact": ["--norm", "image-exact"],                           # its float upper bound
    "image-exact+layer": ["--norm", "image-exact", "--w-layer", "0.5"],
}


def run_one(out: Path, variant: str, seed: int, bank_views: int, threads: int, extra: list[str]) -> Path:
    run_dir = out / f"{variant}_s{seed}"
    if not (run_dir / "metrics.json").exists():
        cmd = [sys.executable, "-m", "compress.cli", "--out", str(run_dir), "--seed", str(seed),
               "--threads", str(threads), "--no-progress", "--bank-views", str(bank_views),
               *VARIANTS[variant], *extra]
        with open(out / f"{variant}_s{seed}.log", "w") as log:
            subprocess.run(cmd, check=True, stdout=log, stderr=subprocess.STDOUT)
    return run_dir


def plot_curves(runs: dict[str, Path], path: Path) -> Path:
    """Fake-quant and fp32 val PSNR at every evaluation of each run (then the final score, head included)."""
    import json

    plt = pyplot()
    fig, ax = plt.subplots(figsize=(7, 4.2))
    for label, run_dir in runs.items():
        m = json.loads((run_dir / "metrics.json").read_text())
        steps = [e["step"] for e in m["evals"]] + [m["config"]["steps"]]
        colour = None
        for kind, style, tag in (("fakequant", "-", "int8"), ("fp32", ":", "fp32")):
            db = [e[kind]["psnr"] for e in m["evals"]] + [m["quality"][kind]["psnr"]]
            (line,) = ax.plot(steps, db, style, marker="o", ms=3, label=f"{label} ({tag})", color=colour)
            colour = line.get_color()
    ax.axhline(m["quality"]["identity_baseline"]["psnr"], color="grey", lw=0.8, ls="--", label="input itself")
    ax.set_xlabel("training step (last point: final student)")
    ax.set_ylabel("PSNR vs teacher, 8 val photos (dB)")
    ax.legend(fontsize=7, ncol=2)
    ax.grid(alpha=0.3)
    fig.tight_layout()
    return save_figure(fig, path)


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(prog="python -m compress.experiments.levers", description=__doc__.split("\n\n")[0])
    p.add_argument("--out", type=Path, required=True)
    p.add_argument("--variants", nargs="+", choices=sorted(VARIANTS), default=["fixed", "image", "image+layer"])
    p.add_argument("--seeds", type=int, nargs="+", default=[0, 1])
    p.add_argument("--bank-views", type=int, default=2000)
    p.add_argument("--jobs", type=int, default=1, help="runs in parallel (each gets 2 // jobs threads, at least 1)")
    p.add_argument("extra", nargs="*", help="more gs-compress flags for every run (after --)")
    a = p.parse_args(argv)
    a.out.mkdir(parents=True, exist_ok=True)
    grid = [(v, s) for v in a.variants for s in a.seeds]
    threads = max(1, 2 // a.jobs)
    with ThreadPoolExecutor(max_workers=a.jobs) as pool:
        dirs = list(pool.map(lambda vs: run_one(a.out, vs[0], vs[1], a.bank_views, threads, a.extra), grid))
    rows = [{**row(d, a.bank_views, s), "variant": v} for d, (v, s) in zip(dirs, grid)]
    write_json_atomic(a.out / "table.json", rows)
    write_text_atomic(a.out / "table.md", markdown_table(["variant", "seed"], rows))
    plot_curves({f"{v} s{s}": d for d, (v, s) in zip(dirs, grid)}, a.out / "curves.png")
    print(markdown_table(["variant", "seed"], rows))
    return 0


if __name__ == "__main__":
    sys.exit(main())
