"""The colour head's val PSNR against its number of views: views of few scenes or spread over all of them.

    python -m compress.experiments.scene_curve ROWS.jsonl [ROWS.jsonl ...] --out docs/scene_curve.png

Reads the JSON lines head_zoom prints for its `photos{N}_p{P}` and `views_like_photos{N}_p{P}` subsets
(and `all`), one file per trunk, and draws, per trunk, each photo draw as a point and the mean over the
draws as a line: every view of N photos against as many views drawn from all photos.
"""
from __future__ import annotations

import argparse
import json
import re
from collections import defaultdict
from pathlib import Path

import numpy as np

from gs_contract.figures import pyplot, save_figure

SUBSET = re.compile(r"(?P<kind>photos|views_like_photos)(?P<n>\d+)_p(?P<draw>\d+)$")
KINDS = {"photos": "every view of N photos", "views_like_photos": "as many views from all photos"}
ALL_PHOTOS = 10 ** 9  # the photo count the `all` row stands at: after every N


def curves(rows: list[dict]) -> dict[str, dict[int, list[float]]]:
    """{kind: {mean view count: [val per photo draw]}}; the `all` row ends both curves."""
    grouped: dict[str, dict[int, list[tuple[int, float]]]] = {kind: defaultdict(list) for kind in KINDS}
    for r in rows:
        m = SUBSET.match(r["subset"])
        if m:
            grouped[m["kind"]][int(m["n"])].append((r["views"], r["val"]))
        elif r["subset"] == "all":
            for kind in KINDS:
                grouped[kind][ALL_PHOTOS].append((r["views"], r["val"]))
    return {kind: {round(float(np.mean([v for v, _ in pts]))): [db for _, db in pts] for _, pts in sorted(by_n.items())}
            for kind, by_n in grouped.items()}


def plot(trunks: dict[str, list[dict]], path: Path) -> Path:
    """One panel per trunk: both curves, points per draw, a line through their means."""
    plt = pyplot()
    fig, axes = plt.subplots(1, len(trunks), figsize=(5.2 * len(trunks), 3.8), squeeze=False, sharey=True)
    for ax, (name, rows) in zip(axes[0], trunks.items()):
        by_kind = curves(rows)
        for kind, label in KINDS.items():
            pts = by_kind[kind]
            xs = sorted(pts)
            (line,) = ax.plot(xs, [np.mean(pts[x]) for x in xs], marker="o", ms=4, label=f"{label} (mean)")
            for x in xs:
                ax.plot([x] * len(pts[x]), pts[x], ".", color=line.get_color(), alpha=0.5)
        for db, target in ((25.5, "quick target"), (27.0, "standard target")):
            ax.axhline(db, color="grey", lw=0.8, ls="--")
            ax.annotate(target, (0.01, db), xycoords=("axes fraction", "data"), fontsize=7, va="bottom", color="grey")
        ax.set_xscale("log")
        ticks = sorted(set().union(*by_kind.values()))
        ax.set_xticks(ticks, [str(x) for x in ticks], fontsize=7)
        ax.minorticks_off()
        ax.set_title(name, fontsize=9)
        ax.set_xlabel("head views (256 px, teacher-labelled)")
        ax.grid(alpha=0.3)
    axes[0][0].set_ylabel("val PSNR vs teacher, fake-quant (dB)")
    axes[0][0].legend(fontsize=7)
    fig.tight_layout()
    return save_figure(fig, path)


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(prog="python -m compress.experiments.scene_curve", description=__doc__.split("\n\n")[0])
    p.add_argument("rows", type=Path, nargs="+", help="head_zoom's JSON lines, one file per trunk")
    p.add_argument("--names", nargs="+", help="a panel title per file (default: the file names)")
    p.add_argument("--out", type=Path, required=True)
    a = p.parse_args(argv)
    names = a.names or [f.stem for f in a.rows]
    if len(names) != len(a.rows):
        p.error(f"--names: {len(names)} names for {len(a.rows)} files")
    trunks = {}
    for name, f in zip(names, a.rows):
        try:
            trunks[name] = [json.loads(line) for line in f.read_text().splitlines() if line.strip()]
        except (OSError, json.JSONDecodeError) as exc:
            p.error(f"{f}: not head_zoom's JSON lines ({exc})")
        if not all(isinstance(r, dict) and {"subset", "views", "val"} <= r.keys() for r in trunks[name]):
            p.error(f"{f}: not head_zoom's JSON lines (each needs subset, views and val)")
    print(plot(trunks, a.out))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
