"""The GS trade-off table: several budgets, and one budget without the GAN term / without QAT.

    python -m compress.ablation --out runs/ablation --jobs 2 --cache runs/demo/run/cache --default-run runs/demo/run

Each row is a real gs-compress run (same seed, same teacher-labelled views, shared through
`--cache`); the table (Markdown + JSON) reads each run's metrics.json. The colour head is fitted
after GS training on the frozen student, so every row also reports its score before the head
(the "no colour head" ablation comes free with each run). `--default-run` reuses a finished
quick-preset run (e.g. `make demo`'s) as the quick-default row instead of training it again.
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
from gs_contract.figures import save_figure
from .macs import count_module_macs, count_params
from .teachers import load_teacher

ROWS: dict[str, list[str]] = {
    "budget 1/6 MACs, 1/8 params": ["--target-macs", "1/6", "--target-params", "1/8"],
    "budget 1/9 MACs, 1/12 params (quick default)": [],
    "budget 1/14 MACs, 1/18 params": ["--target-macs", "1/14", "--target-params", "1/18"],
    "1/9 budget, no GAN term": ["--no-gan"],
    "1/9 budget, no QAT (fp32 training)": ["--no-qat"],
}
DEFAULT_ROW = "budget 1/9 MACs, 1/12 params (quick default)"
SERIES = (("psnr_fakequant", "fake-quant INT8 student"), ("psnr_fakequant_without_head", "same, before the colour head"))


class RunFailed(RuntimeError):
    """A gs-compress run of the table exited non-zero."""


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


def run_row(name: str, extra: list[str], out: Path, steps: int | None, cache: Path | None, totals: dict[str, int]) -> Path:
    run_dir = out / name.split(" (")[0].replace(" ", "_").replace("/", "-").replace(",", "")
    if cache is not None and cache.is_dir() and not (run_dir / "cache").exists():
        run_dir.mkdir(parents=True, exist_ok=True)
        shutil.copytree(cache, run_dir / "cache")
    if not (run_dir / "metrics.json").is_file():
        cmd = [sys.executable, "-m", "compress.cli", "--out", str(run_dir), "--threads", "1",
               "--no-progress", "--resume", *(["--steps", str(steps)] if steps else []), *_absolute(extra, totals)]
        log_path = run_dir.parent / f"{run_dir.name}.log"
        with open(log_path, "w") as log:
            if subprocess.run(cmd, stdout=log, stderr=subprocess.STDOUT).returncode != 0:
                raise RunFailed(f"the run '{name}' failed; its output is in {log_path}")
    return run_dir


def _db(value: float | None) -> str:
    return "-" if value is None else f"{value:.2f} dB"


def table(runs: dict[str, Path]) -> tuple[str, list[dict]]:
    """Markdown table + JSON rows from each run's metrics.json (PSNR vs the teacher on the val photos)."""
    lines = ["| run | steps | MACs | params | PSNR fake-quant INT8 | same, before the colour head | PSNR fp32 | SSIM "
             "| identity |", "|---|---|---|---|---|---|---|---|---|"]
    rows = []
    for name, run_dir in runs.items():
        m = json.loads((run_dir / "metrics.json").read_text())
        q = m["quality"]
        head = m.get("colour_head") or {}
        before = head.get("without_head", {}).get("fakequant", {}).get("psnr")
        row = {"run": name, "macs": m["student_macs"], "params": m["student_params"],
               "psnr_fakequant": q["fakequant"]["psnr"], "psnr_fakequant_without_head": before,
               "psnr_fp32": q["fp32"]["psnr"], "ssim_fakequant": q["fakequant"]["ssim"],
               "psnr_identity": q["identity_baseline"]["psnr"], "steps": m["config"]["steps"]}
        rows.append(row)
        lines.append(f"| {name} | {row['steps']} | {row['macs'] / G:.2f}G ({m['macs_ratio']:.1f}x) | "
                     f"{row['params'] / 1e6:.3f}M ({m['params_ratio']:.1f}x) | {_db(row['psnr_fakequant'])} | "
                     f"{_db(before)} | {_db(row['psnr_fp32'])} | {row['ssim_fakequant']:.3f} | "
                     f"{_db(row['psnr_identity'])} |")
    return "\n".join(lines), rows


def plot_tradeoff(rows: list[dict], path: Path) -> Path:
    """Left: PSNR against MACs for the budget rows; right: every run's PSNR with and without the colour head."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, (ax, bars) = plt.subplots(1, 2, figsize=(12, 4.6), gridspec_kw={"width_ratios": [1, 1.3]})
    budgets = sorted((r for r in rows if r["run"].startswith("budget")), key=lambda r: r["macs"])
    for (key, label), style in zip(SERIES, ("o-", "s--")):
        pts = [(r["macs"] / G, r[key]) for r in budgets if r[key] is not None]
        if pts:
            ax.plot(*zip(*pts), style, label=label)
    for r in budgets:
        ax.annotate(f"{r['macs'] / G:.2f}G, {r['params'] / 1e6:.2f}M", (r["macs"] / G, r["psnr_fakequant"]),
                    fontsize=7, xytext=(4, 4), textcoords="offset points")
    identity = rows[0]["psnr_identity"]
    ax.axhline(identity, color="grey", ls=":", lw=1)
    bars.axvline(identity, color="grey", ls=":", lw=1)
    ax.set_xlabel("student MACs at 256x256 (G = 2^30)")
    ax.set_ylabel("PSNR vs teacher, val photos (dB)")
    ax.set_title("budgets")
    ax.legend(fontsize=8, loc="lower right")
    ax.grid(alpha=0.3)
    y = range(len(rows))
    for (key, label), offset in zip(SERIES, (0.2, -0.2)):
        drawn = bars.barh([i + offset for i in y], [r[key] or 0 for r in rows], height=0.4, label=label)
        bars.bar_label(drawn, labels=[f"{r[key]:.2f}" if r[key] else "" for r in rows], fontsize=7, padding=2)
    bars.set_yticks(list(y), [r["run"] for r in rows], fontsize=8)
    bars.invert_yaxis()
    low = min(identity, *(v for r in rows for v in (r["psnr_fakequant"], r["psnr_fakequant_without_head"]) if v)) - 2
    bars.set_xlim(left=max(0.0, low))
    bars.set_xlabel("PSNR vs teacher, val photos (dB); dotted: the input itself", fontsize=9)
    bars.set_title("every run")
    bars.legend(fontsize=8, loc="upper center", bbox_to_anchor=(0.5, -0.14), ncol=2)
    bars.grid(axis="x", alpha=0.3)
    fig.tight_layout()
    return save_figure(fig, path)


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(prog="python -m compress.ablation", description=__doc__.split("\n\n")[0])
    p.add_argument("--out", type=Path, default=Path("runs/ablation"))
    p.add_argument("--steps", type=int, help="training steps per run (default: the quick preset's)")
    p.add_argument("--jobs", type=int, default=2, help="runs in parallel (1 thread each)")
    p.add_argument("--cache", type=Path, help="a RUN_DIR/cache with teacher-labelled views to reuse")
    p.add_argument("--default-run", type=Path,
                   help="a finished quick-preset RUN_DIR (e.g. make demo's) to use as the quick-default row")
    a = p.parse_args(argv)
    if a.default_run is not None and not (a.default_run / "metrics.json").is_file():
        p.error(f"--default-run {a.default_run} has no metrics.json (not a finished gs-compress run)")
    a.out.mkdir(parents=True, exist_ok=True)
    totals = teacher_totals()
    todo = {name: extra for name, extra in ROWS.items() if not (name == DEFAULT_ROW and a.default_run)}
    with ThreadPoolExecutor(a.jobs) as pool:
        futures = {name: pool.submit(run_row, name, extra, a.out, a.steps, a.cache, totals)
                   for name, extra in todo.items()}
        try:
            done = {name: f.result() for name, f in futures.items()}
        except RunFailed as exc:
            print(f"{p.prog}: error: {exc}", file=sys.stderr)
            return 1
    runs = {name: done.get(name, a.default_run) for name in ROWS}
    md, rows = table(runs)
    (a.out / "table.md").write_text(md + "\n")
    (a.out / "table.json").write_text(json.dumps(rows, indent=2))
    plot_tradeoff(rows, a.out / "tradeoff.png")
    print(md)
    print(f"plot: {a.out / 'tradeoff.png'}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
