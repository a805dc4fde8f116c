"""The pipeline report: one self-contained HTML page and its Markdown twin for RUN_DIR + EXPORT_DIR + bench.json.

    write_report(out_dir, run_dir, export_dir, bench_json)
      -> out_dir/report.html            (images embedded as base64 data URIs, CSS inline)
         out_dir/report.md              (references the PNGs below)
         out_dir/report_files/*.png     (image grid, training curves, channels, latency chart)

Contents: input | teacher | student INT8 TFLite on the val photos of RUN_DIR/val_views.npz (the .tflite run here with the
LiteRT runner), one row per artifact (size, params, MACs, latency p50/p90, speedup vs teacher,
PSNR/SSIM/KID vs teacher from bench.json), the training curves and per-layer channel counts from
metrics.json, the quality summary, the headline ratios, the environment and the commands to
reproduce. A missing optional input (no bench.json, no KID, an ablation without some loss term)
is shown as "n/a"; it never stops the report.
"""
from __future__ import annotations

import base64
import datetime as _dt
import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable, Sequence

import numpy as np

from gs_contract import write_text_atomic
from runtime_bench.arm import cost_lines
from runtime_bench.report import bar_chart

from .report_figures import STUDENT_TFLITE, GridResult, make_grid, plot_channels, plot_training

NA = "n/a"
FILES_DIR = "report_files"
TEMPLATES = Path(__file__).resolve().parent / "templates"


# ----------------------------------------------------------------------------------------------
# inputs


@dataclass
class Sources:
    """Everything the report reads; absent optional pieces are None (and noted in ``notes``)."""

    run_dir: Path
    export_dir: Path
    bench_json: Path
    metrics: dict[str, Any] | None
    manifest: dict[str, Any] | None
    bench: dict[str, Any] | None
    notes: list[str] = field(default_factory=list)
    arm: dict[str, Any] | None = None  # gs-bench --target qemu-aarch64 result, when the demo counted


def _load_json(path: Path, what: str, notes: list[str]) -> dict[str, Any] | None:
    """Parse a JSON file; None (with a note) when it is absent or unreadable."""
    try:
        doc = json.loads(Path(path).read_text())
    except FileNotFoundError:
        notes.append(f"{what} not found ({path}): its parts show n/a")
        return None
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as exc:
        notes.append(f"{what} unreadable ({path}: {exc}): its parts show n/a")
        return None
    return doc if isinstance(doc, dict) else None


def load_sources(run_dir: Path, export_dir: Path, bench_json: Path, arm_json: Path | None = None) -> Sources:
    """Read metrics.json, manifest.json, bench.json (and the ARM count), tolerating any of them missing."""
    notes: list[str] = []
    return Sources(Path(run_dir), Path(export_dir), Path(bench_json),
                   _load_json(Path(run_dir) / "metrics.json", "metrics.json", notes),
                   _load_json(Path(export_dir) / "manifest.json", "manifest.json", notes),
                   _load_json(Path(bench_json), "bench.json", notes), notes,
                   _load_json(arm_json, "ARM count", notes) if arm_json else None)


# ----------------------------------------------------------------------------------------------
# formatting


def fmt(v: Any, spec: str = ".2f", suffix: str = "") -> str:
    """A number as text, or "n/a" for None / NaN / non-numbers."""
    if isinstance(v, bool) or not isinstance(v, (int, float)) or not np.isfinite(v):
        return NA
    return f"{v:{spec}}{suffix}"


def fmt_count(v: Any, unit: str = "") -> str:
    """Large counts with an SI prefix (decimal: 1 G = 1e9), e.g. 56.80 G; "n/a" when absent."""
    if isinstance(v, bool) or not isinstance(v, (int, float)) or not np.isfinite(v):
        return NA
    for div, prefix in ((1e9, "G"), (1e6, "M"), (1e3, "k")):
        if abs(v) >= div:
            return f"{v / div:.2f} {prefix}{unit}"
    return f"{v:.0f} {unit}".rstrip()


def fmt_bytes(v: Any) -> str:
    """Bytes as MB (1e6) with three decimals."""
    return fmt(v / 1e6 if isinstance(v, (int, float)) and not isinstance(v, bool) else None, ".3f", " MB")


def _get(doc: dict[str, Any] | None, *keys: str) -> Any:
    """Nested lookup that returns None as soon as a level is missing."""
    cur: Any = doc
    for k in keys:
        if not isinstance(cur, dict):
            return None
        cur = cur.get(k)
    return cur


@dataclass
class Table:
    """A rendered table: header and rows of strings (the templates print them as they are)."""

    header: list[str]
    rows: list[list[str]]


# ----------------------------------------------------------------------------------------------
# figures


@dataclass
class Figure:
    """A PNG in report_files/ with its caption; ``data_uri`` is what the HTML embeds."""

    title: str
    file: str
    data_uri: str
    caption: str = ""


def publish(path: Path) -> Path:
    """World-readable like any other output (temp files start as 0600)."""
    path.chmod(0o644)
    return path


def _figure(path: Path, title: str, caption: str = "") -> Figure:
    data = base64.b64encode(path.read_bytes()).decode("ascii")
    return Figure(title, f"{FILES_DIR}/{path.name}", f"data:image/png;base64,{data}", caption)


# ----------------------------------------------------------------------------------------------
# tables


def _bench_rows(bench: dict[str, Any] | None) -> dict[str, dict[str, Any]]:
    """bench.json results by artifact name (the first runtime listed, one per artifact here)."""
    rows: dict[str, dict[str, Any]] = {}
    for r in (bench or {}).get("results", []):
        rows.setdefault(str(r.get("name")), r)
    return rows


def _quality_cells(q: dict[str, Any] | None) -> list[str]:
    """PSNR, SSIM, KID cells of one bench result's quality entry."""
    q = q or {}
    if q.get("is_reference"):
        return ["reference"] * 3
    psnr = "identical" if q.get("identical") else fmt(q.get("psnr_db"), ".2f", " dB")
    kid = fmt(q.get("kid"), ".4f")
    if kid != NA and (q.get("kid_std") or 0) > 0:
        kid += f" ± {q['kid_std']:.4f}"
    return [psnr, fmt(q.get("ssim"), ".3f"), kid]


def artifact_table(manifest: dict[str, Any] | None, bench: dict[str, Any] | None) -> Table:
    """One row per artifact of the manifest (or of bench.json when there is no manifest)."""
    header = ["artifact", "format [runtime]", "precision", "size", "params", "MACs", "p50 ms", "p90 ms",
              "speedup vs teacher", "PSNR vs teacher", "SSIM", "KID"]
    by_name = _bench_rows(bench)
    entries = (manifest or {}).get("artifacts") or list(by_name.values())
    rows = []
    for a in entries:
        r = by_name.get(str(a.get("name")), {})
        lat = r.get("latency_ms") or {}
        speed = fmt(r.get("speedup_vs_teacher_same_runtime"), ".2f", "x")
        if r and a.get("role") == "teacher":
            speed = "1.00x (itself)"
        rows.append([str(a.get("name")), f"{a.get('format', NA)} [{r.get('runtime', 'not run')}]",
                     str(a.get("precision", NA)), fmt_bytes(a.get("bytes")), fmt_count(a.get("params")),
                     fmt_count(a.get("macs")), fmt(lat.get("p50"), ".2f"), fmt(lat.get("p90"), ".2f"), speed,
                     *_quality_cells(r.get("quality"))])
    return Table(header, rows)


def _hw(size: Any) -> str:
    """[H, W] -> "HxW" ("n/a" when absent)."""
    return "x".join(str(v) for v in size) if isinstance(size, (list, tuple)) and size else NA


def quality_table(metrics: dict[str, Any] | None, grid: GridResult) -> Table:
    """PSNR/SSIM vs teacher on the val photos: training-time evaluation and the INT8 TFLite here."""
    at = f"at {_hw(_get(metrics, 'image_size'))}"
    labels = {"fp32": f"student fp32 (torch, {at})", "fakequant": f"student fake-quant INT8 (torch, {at})",
              "identity_baseline": f"identity baseline: the input itself ({at})"}
    q = _get(metrics, "quality") or {}
    rows = [[label, fmt(_get(q, k, "psnr"), ".2f", " dB"), fmt(_get(q, k, "psnr_min"), ".2f", " dB"),
             fmt(_get(q, k, "ssim"), ".3f")] for k, label in labels.items()]
    p, s = np.array(grid.psnr or [np.nan]), np.array(grid.ssim or [np.nan])
    rows.append([f"student INT8 TFLite (LiteRT, at {_hw(grid.size)})", fmt(float(p.mean()), ".2f", " dB"),
                 fmt(float(p.min()), ".2f", " dB"), fmt(float(s.mean()), ".3f")])
    return Table(["model", "PSNR mean", "PSNR min", "SSIM"], rows)


def headline_table(metrics: dict[str, Any] | None, manifest: dict[str, Any] | None) -> Table:
    """Teacher vs student MACs and params (metrics.json) and the export's ratios (manifest.json)."""
    m = metrics or {}
    rows = [[f"MACs (training eval, {_hw(m.get('image_size'))})", fmt_count(m.get("teacher_macs")),
             fmt_count(m.get("student_macs")), fmt(m.get("macs_ratio"), ".2f", "x")],
            ["params", fmt_count(m.get("teacher_params")), fmt_count(m.get("student_params")),
             fmt(m.get("params_ratio"), ".2f", "x")]]
    t, s = _get(manifest, "teacher") or {}, _get(manifest, "student") or {}
    rows.append([f"MACs (export, {_hw(_get(manifest, 'image_size'))})", fmt_count(t.get("macs")),
                 fmt_count(s.get("macs")), fmt(_get(manifest, "ratios", "macs_teacher_over_student"), ".2f", "x")])
    int8 = next((a for a in (manifest or {}).get("artifacts", []) if a.get("name") == STUDENT_TFLITE), {})
    rows.append(["size: teacher checkpoint / student INT8 TFLite", fmt_bytes(t.get("checkpoint_bytes")),
                 fmt_bytes(int8.get("bytes")),
                 fmt(_get(manifest, "ratios", "size_teacher_ckpt_over_student_int8_tflite"), ".2f", "x")])
    return Table(["", "teacher", "student", "ratio"], rows)


def channel_table(layers: Sequence[dict[str, Any]]) -> Table:
    """Per-layer channels before/after and the layer's MACs."""
    rows = [[str(ly.get("unit")), fmt(ly.get("original_out_channels"), "d"), fmt(ly.get("out_channels"), "d"),
             fmt(ly.get("in_channels"), "d"), fmt_count(ly.get("macs"))] for ly in layers]
    return Table(["layer", "out channels before", "out channels after", "in channels", "MACs"], rows)


# ----------------------------------------------------------------------------------------------
# environment and commands


def environment_line(bench: dict[str, Any] | None) -> str:
    """One line: CPU, its int8 ISA, cores, threads, OS, load, runtime versions (from bench.json)."""
    env = _get(bench, "environment")
    if not env:
        return NA
    versions = ", ".join(f"{k} {v}" for k, v in (env.get("versions") or {}).items() if v)
    load = env.get("load_average")
    parts = [str(env.get("cpu_model") or NA), str(_get(env, "isa", "summary") or ""),
             f"{env.get('machine', NA)} {env.get('system', '')}".strip(),
             f"{env.get('usable_cores', NA)} usable cores", f"{env.get('threads', NA)} threads",
             f"load {' '.join(map(str, load))}" if load else "", versions, str(env.get("note") or "")]
    return "; ".join(p for p in parts if p)


def isa_line(bench: dict[str, Any] | None) -> str:
    """The int8 instruction set of the CPU the bench ran on (bench.json's environment.isa summary);
    for a remote target it is the host's, and says so."""
    summary = _get(bench, "environment", "isa", "summary")
    if not summary:
        return NA
    target = _get(bench, "target")
    return str(summary) if target in (None, "local") else f"{summary} (this host; the artifacts ran on {target})"


def commands(src: Sources, out_dir: Path) -> list[str]:
    """The commands that reproduce this report (from the recorded run configuration)."""
    cfg = _get(src.metrics, "config") or {}
    teacher = _get(src.metrics, "teacher", "source") or "default"
    arch = _get(src.metrics, "teacher", "arch")
    size = _get(src.manifest, "image_size") or [256, 256]
    settings = _get(src.bench, "settings") or {}
    compress = f"gs-compress --teacher {teacher}" + (f" --arch {arch}" if arch else "") \
        + f" --preset {cfg.get('preset', 'quick')} --out {src.run_dir}"
    formats = sorted({str(a.get("format")) for a in (src.manifest or {}).get("artifacts", [])}) or ["all"]
    cmds = [compress,
            f"gs-export {src.run_dir} --format {','.join(formats)} --out {src.export_dir} --size {size[0]}",
            f"gs-bench {src.export_dir} --runtime {settings.get('runtime', 'all')} --threads "
            f"{settings.get('threads', 2)} --runs {settings.get('runs', 50)} --json {src.bench_json}"]
    demo_layout = ((out_dir / "run").resolve(), (out_dir / "export").resolve())
    if (src.run_dir.resolve(), src.export_dir.resolve()) == demo_layout:
        cmds.append(f"# or all of it at once:  python -m pipeline.demo --out {out_dir}")
    return cmds


# ----------------------------------------------------------------------------------------------
# rendering


def _figures(src: Sources, files: Path) -> tuple[list[Figure], GridResult]:
    """Write every PNG into ``files`` and return them in page order."""
    figs: list[Figure] = []
    grid = make_grid(src, files / "val_grid.png")
    if grid.path:
        figs.append(_figure(grid.path, "Val photos: input | teacher | student INT8 TFLite",
                            "the student column is the exported .tflite run with LiteRT"))
    makers: list[tuple[str, Callable[[], Path | None]]] = [
        ("Training curves", lambda: plot_training(_get(src.metrics, "history") or [], files / "training_curves.png")),
        ("Channels per layer", lambda: plot_channels(_get(src.metrics, "layers") or [], files / "channels.png")),
        ("Latency and size", lambda: bar_chart(_get(src.bench, "results"), files / "latency.png", title="gs-bench")
         if _get(src.bench, "results") else None),
    ]
    for title, make in makers:
        path = make()
        if path is not None:
            figs.append(_figure(path, title))
    return figs, grid


def build_context(src: Sources, out_dir: Path) -> dict[str, Any]:
    """Everything both templates print (strings and tables only)."""
    files = out_dir / FILES_DIR
    files.mkdir(parents=True, exist_ok=True)
    figures, grid = _figures(src, files)
    return {
        "title": "gs-mobile pipeline report",
        "created": _dt.datetime.now(_dt.timezone.utc).isoformat(timespec="seconds"),
        "paths": {"run": str(src.run_dir), "export": str(src.export_dir), "bench": str(src.bench_json)},
        "figures": {Path(f.file).stem: f for f in figures},
        "why_missing": {"val_grid": grid.reason or "no student INT8 TFLite output",
                        "training_curves": "no loss history in metrics.json",
                        "channels": "no per-layer channels in metrics.json", "latency": "no bench.json results"},
        "artifacts": artifact_table(src.manifest, src.bench),
        "quality": quality_table(src.metrics, grid),
        "headline": headline_table(src.metrics, src.manifest),
        "channels": channel_table(_get(src.metrics, "layers") or []),
        "quality_reference": _get(src.bench, "quality_reference") or NA,
        "bench_settings": _get(src.bench, "settings") or {},
        "skipped": [f"{s.get('name')}: {s.get('reason')}" for s in (_get(src.bench, "skipped") or [])],
        "arm_cost": cost_lines((_get(src.arm, "results") or [])),
        "environment": environment_line(src.bench),
        "isa": isa_line(src.bench),
        "commands": commands(src, out_dir),
        "notes": src.notes,
    }


def render(template: str, context: dict[str, Any]) -> str:
    """Render one of pipeline/templates/ (HTML autoescaped, Markdown verbatim)."""
    import jinja2

    env = jinja2.Environment(loader=jinja2.FileSystemLoader(str(TEMPLATES)), undefined=jinja2.StrictUndefined,
                             autoescape=jinja2.select_autoescape(["html", "html.j2"]),
                             trim_blocks=True, lstrip_blocks=True, keep_trailing_newline=True)
    return env.get_template(template).render(**context)


def write_report(out_dir: Path, run_dir: Path, export_dir: Path, bench_json: Path,
                 arm_json: Path | None = None) -> int:
    """Write out_dir/report.html (self-contained) and out_dir/report.md (+ report_files/); return 0."""
    out_dir = Path(out_dir)
    context = build_context(load_sources(run_dir, export_dir, bench_json, arm_json), out_dir)
    for name in ("report.md", "report.html"):
        write_text_atomic(out_dir / name, render(f"{name}.j2", context))
        publish(out_dir / name)
    return 0
