"""Human-readable output of a bench run: the console table, a latency/size bar chart, an image grid."""
from __future__ import annotations

from pathlib import Path
from typing import Any, Sequence

import numpy as np

import gs_contract
from gs_contract import figures


def _fmt(v: Any, spec: str = ".1f", suffix: str = "") -> str:
    return "-" if v is None else f"{v:{spec}}{suffix}"


def table(results: Sequence[dict[str, Any]]) -> str:
    """Plain-text table of the measured artifacts (one row per artifact and runtime)."""
    head = ["artifact", "runtime", "init ms", "first ms", "p50 ms", "p90 ms", "std ms", "RSS MB",
            "size MB", "x teacher", "x torch T", "PSNR dB", "SSIM"]
    rows = [head]
    for r in results:
        lat, q = r["latency_ms"], r.get("quality") or {}
        rows.append([r["name"], r["runtime"], _fmt(r.get("init_ms")), _fmt(r.get("first_ms")),
                     _fmt(lat.get("p50"), ".2f"), _fmt(lat.get("p90"), ".2f"), _fmt(lat.get("std"), ".2f"),
                     _fmt(r.get("peak_rss_mb"), ".0f"), _fmt(r["bytes"] / 1e6 if r.get("bytes") else None, ".2f"),
                     _fmt(r.get("speedup_vs_teacher_same_runtime"), ".1f", "x"),
                     _fmt(r.get("speedup_vs_teacher_torch"), ".1f", "x"),
                     "ref" if q.get("is_reference") else "=" if q.get("identical") else _fmt(q.get("psnr_db"), ".1f"),
                     "ref" if q.get("is_reference") else _fmt(q.get("ssim"), ".3f")])
    widths = [max(len(row[i]) for row in rows) for i in range(len(head))]
    lines = ["  ".join(c.ljust(w) if i < 2 else c.rjust(w) for i, (c, w) in enumerate(zip(row, widths)))
             for row in rows]
    lines.insert(1, "-" * len(lines[0]))
    return "\n".join(lines)


def finite(obj: Any) -> Any:
    """Copy of a JSON-able structure with NaN/inf floats replaced by None (strict JSON)."""
    if isinstance(obj, float):
        return obj if np.isfinite(obj) else None
    if isinstance(obj, dict):
        return {k: finite(v) for k, v in obj.items()}
    if isinstance(obj, (list, tuple)):
        return [finite(v) for v in obj]
    return obj


def write_json_atomic(path: Path, doc: dict[str, Any]) -> None:
    """Atomic, strict JSON (non-finite floats become null)."""
    gs_contract.write_json_atomic(path, finite(doc), allow_nan=False)


def bar_chart(results: Sequence[dict[str, Any]], path: Path, title: str = "gs-bench") -> Path:
    """PNG with two panels: p50 latency (ms, log scale, p90 whisker) per artifact/runtime, and size (MB)."""
    plt = figures.pyplot()
    labels = [f"{r['name']}\n[{r['runtime']}]" for r in results]
    p50 = np.array([r["latency_ms"]["p50"] for r in results], dtype=float)
    p90 = np.array([r["latency_ms"].get("p90") or r["latency_ms"]["p50"] for r in results], dtype=float)
    colors = ["tab:red" if r.get("role") == "teacher" else "tab:blue" for r in results]
    sizes: dict[str, float] = {}
    for r in results:
        sizes.setdefault(r["name"], (r.get("bytes") or 0) / 1e6)
    fig, (ax1, ax2) = plt.subplots(1, 2, figsize=(max(8, 1.3 * len(results) + 4), 5),
                                   gridspec_kw={"width_ratios": [max(len(results), 1), max(len(sizes), 1)]})
    x = np.arange(len(results))
    ax1.bar(x, p50, color=colors, yerr=[np.zeros_like(p50), np.maximum(p90 - p50, 0)], capsize=3)
    ax1.set_xticks(x, labels, rotation=45, ha="right", fontsize=7)
    ax1.set_ylabel("p50 latency, ms (whisker: p90)")
    if len(p50) and p50.max() / max(p50.min(), 1e-9) > 20:
        ax1.set_yscale("log")
    for xi, v in zip(x, p50):
        ax1.annotate(f"{v:.3g}", (xi, v), ha="center", va="bottom", fontsize=7)
    ax1.set_title("latency (red: teacher, blue: student)")
    names = list(sizes)
    ax2.bar(np.arange(len(names)), [sizes[n] for n in names], color="tab:gray")
    ax2.set_xticks(np.arange(len(names)), names, rotation=45, ha="right", fontsize=7)
    ax2.set_ylabel("artifact size, MB")
    ax2.set_title("size")
    fig.suptitle(title)
    fig.tight_layout()
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    return figures.save_figure(fig, path, dpi=100)


def image_grid(inputs: np.ndarray, columns: dict[str, np.ndarray], path: Path, max_rows: int = 4) -> Path:
    """PNG grid: one row per image, columns input | each output set (float NCHW in [-1, 1])."""
    cols = {"input": inputs, **columns}
    Path(path).parent.mkdir(parents=True, exist_ok=True)
    return figures.save_grid(Path(path), {k: np.asarray(v, dtype=np.float32) for k, v in cols.items()},
                             max_rows=max_rows)
