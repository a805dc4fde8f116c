"""Val PSNR against the number of teacher-labelled views: quick-preset runs with and without the label bank.

    python -m compress.experiments.bank_curve --out runs/bank_curve [--views 0 2000] [--seeds 0 1] [--jobs 1]

Each (views, seed) is one `gs-compress --preset quick --seed S [--bank-views V]` run in OUT/v{V}_s{S}
(views 0: the preset's 96 crops of RUN_DIR views; V > 0: V whole views from the label bank in the
user cache, built on first use and shared by every run). Finished runs (their metrics.json exists) are
reused. Writes OUT/table.md and OUT/table.json: fake-quant and fp32 PSNR with and without the colour
head, the worst val photo and how many val photos score below their identity.
"""
from __future__ import annotations

import argparse
import json
import subprocess
import sys
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

from gs_contract import write_json_atomic, write_text_atomic


def run_one(out: Path, views: int, seed: int, threads: int) -> Path:
    """One quick-preset run (skipped when its metrics.json exists); returns its RUN_DIR."""
    run_dir = out / f"v{views}_s{seed}"
    if not (run_dir / "metrics.json").exists():
        cmd = [sys.executable, "-m", "compress.cli", "--out", str(run_dir), "--seed", str(seed),
               "--threads", str(threads), "--no-progress", *(["--bank-views", str(views)] if views else [])]
        subprocess.run(cmd, check=True)
    return run_dir


def row(run_dir: Path, views: int, seed: int) -> dict[str, Any]:
    """The numbers of one run's metrics.json that the curve needs."""
    m = json.loads((run_dir / "metrics.json").read_text())
    q, head = m["quality"], (m.get("colour_head") or {}).get("without_head") or {}
    identity = q["identity_baseline"]["psnr_per_image"]
    fq = q["fakequant"]["psnr_per_image"]
    return {"views": views or 96, "bank": bool(views), "seed": seed, "fakequant_db": q["fakequant"]["psnr"],
            "fp32_db": q["fp32"]["psnr"], "fakequant_no_head_db": (head.get("fakequant") or {}).get("psnr"),
            "worst_db": min(fq), "below_identity": sum(a < b for a, b in zip(fq, identity)), "photos": len(fq),
            "identity_db": q["identity_baseline"]["psnr"]}


RESULT_HEADER = "fake-quant dB | fp32 dB | fake-quant, no head | worst photo | below identity |"


def result_cells(r: dict[str, Any]) -> str:
    """The RESULT_HEADER cells of one row."""
    no_head = f"{r['fakequant_no_head_db']:.2f}" if r["fakequant_no_head_db"] is not None else "n/a"
    return (f"{r['fakequant_db']:.2f} | {r['fp32_db']:.2f} | {no_head} | {r['worst_db']:.2f} | "
            f"{r['below_identity']} of {r['photos']} |")


def markdown_table(first_columns: list[str], rows: list[dict[str, Any]]) -> str:
    """A Markdown table: `first_columns` (row keys) then the RESULT_HEADER cells."""
    lines = ["| " + " | ".join(first_columns) + " | " + RESULT_HEADER,
             "|" + "---|" * (len(first_columns) + RESULT_HEADER.count("|"))]
    lines += ["| " + " | ".join(str(r[c]) for c in first_columns) + " | " + result_cells(r) for r in rows]
    return "\n".join(lines) + "\n"


def to_markdown(rows: list[dict[str, Any]]) -> str:
    labelled = [{**r, "labelled views": f"{r['views']} ({'bank, whole views' if r['bank'] else 'quick preset crops'})"}
                for r in rows]
    return markdown_table(["labelled views", "seed"], labelled)


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(prog="python -m compress.experiments.bank_curve", description=__doc__.split("\n\n")[0])
    p.add_argument("--out", type=Path, required=True)
    p.add_argument("--views", type=int, nargs="+", default=[0, 2000], help="0 = the quick preset's 96 crops")
    p.add_argument("--seeds", type=int, nargs="+", default=[0, 1])
    p.add_argument("--jobs", type=int, default=1, help="runs in parallel (each gets 2 // jobs threads, at least 1)")
    a = p.parse_args(argv)
    grid = [(v, s) for v in a.views for s in a.seeds]
    threads = max(1, 2 // a.jobs)
    with ThreadPoolExecutor(max_workers=a.jobs) as pool:
        dirs = list(pool.map(lambda vs: run_one(a.out, vs[0], vs[1], threads), grid))
    rows = [row(d, v, s) for d, (v, s) in zip(dirs, grid)]
    write_json_atomic(a.out / "table.json", rows)
    write_text_atomic(a.out / "table.md", to_markdown(rows))
    print(to_markdown(rows))
    return 0


if __name__ == "__main__":
    sys.exit(main())
