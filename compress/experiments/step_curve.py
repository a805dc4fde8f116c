"""Val PSNR against training step for finished gs-compress runs of different lengths (e.g. quick vs standard).

    python -m compress.experiments.step_curve --out runs/step_curve "standard=runs/standard" \\
        "quick, image+clip=runs/levers/image+clip_s0"

Reads each RUN_DIR's metrics.json (its evaluations during training and the final student); writes
OUT/curves.png (the levers plot: fake-quant and fp32 at every evaluation, last point the final
student with its colour head), OUT/table.md and OUT/table.json (the bank_curve row of each run, with
its steps and bank views).
"""
from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

from gs_contract import write_json_atomic, write_text_atomic

from .bank_curve import markdown_table, row
from .levers import plot_curves


def labelled_run(text: str) -> tuple[str, Path]:
    """'LABEL=RUN_DIR' -> (label, RUN_DIR), the run finished (its metrics.json exists)."""
    label, sep, path = text.partition("=")
    run_dir = Path(path)
    if not sep or not label or not (run_dir / "metrics.json").is_file():
        raise argparse.ArgumentTypeError(f"'{text}' is not LABEL=RUN_DIR of a finished gs-compress run "
                                         "(RUN_DIR/metrics.json)")
    return label, run_dir


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(prog="python -m compress.experiments.step_curve", description=__doc__.split("\n\n")[0])
    p.add_argument("--out", type=Path, required=True)
    p.add_argument("runs", nargs="+", type=labelled_run, metavar="LABEL=RUN_DIR")
    a = p.parse_args(argv)
    a.out.mkdir(parents=True, exist_ok=True)
    rows = []
    for label, run_dir in a.runs:
        cfg = json.loads((run_dir / "metrics.json").read_text())["config"]
        rows.append({"run": label, "steps": cfg["steps"], **row(run_dir, cfg["bank_views"], cfg["seed"])})
    table = markdown_table(["run", "steps", "views", "seed"], rows)
    write_json_atomic(a.out / "table.json", rows)
    write_text_atomic(a.out / "table.md", table)
    plot_curves(dict(a.runs), a.out / "curves.png")
    print(table)
    return 0


if __name__ == "__main__":
    sys.exit(main())
