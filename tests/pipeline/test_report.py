"""The pipeline report (HTML + Markdown twin) on a tiny but real gs-compress -> gs-export -> gs-bench run.

The slow test builds the run with the real command-line entry points, writes the report, checks
every referenced image exists, that the numbers agree with manifest.json / bench.json, and
screenshots the HTML in headless Chromium (skipped with the reason if Chromium cannot be installed).
"""
from __future__ import annotations

import base64
import json
import re
import subprocess
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pytest

from pipeline.report import NA, fmt_count, plot_training, write_report

REPO = Path(__file__).resolve().parents[2]
ENSURE_CHROMIUM = REPO / "runtime_bench" / "tools" / "ensure_chromium.sh"
SIZE = 32  # export resolution; the tiny preset evaluates at 48, so the report resizes the val photos


@dataclass
class Pipeline:
    run: Path
    export: Path
    bench_json: Path
    out: Path
    manifest: dict
    bench: dict


def _photos(root: Path) -> Path:
    from PIL import Image
    from skimage import data

    photos = root / "photos"
    photos.mkdir()
    for name in ("astronaut", "coffee", "chelsea", "rocket"):
        Image.fromarray(getattr(data, name)()).resize((128, 96)).save(photos / f"{name}.png")
    return photos


@pytest.fixture(scope="module")
def pipeline(tmp_path_factory: pytest.TempPathFactory) -> Pipeline:
    """gs-compress --preset tiny -> gs-export --format tflite -> gs-bench --runs 3 -> write_report."""
    import torch

    from compress.cli import main as compress_main
    from export.cli import main as export_main
    from runtime_bench.cli import main as bench_main
    from tests.tiny import make_tiny_teacher

    root = tmp_path_factory.mktemp("pipeline")
    torch.save(make_tiny_teacher("cyclegan").state_dict(), root / "teacher.pth")
    run, export, bench_json, out = root / "run", root / "export", root / "bench.json", root / "report"
    assert compress_main(["--teacher", str(root / "teacher.pth"), "--arch", "cyclegan", "--data",
                          str(_photos(root)), "--preset", "tiny", "--out", str(run), "--no-progress"]) == 0
    assert export_main([str(run), "--format", "tflite", "--out", str(export), "--size", str(SIZE), "--quiet"]) == 0
    assert bench_main([str(export), "--json", str(bench_json), "--runs", "3", "--threads", "1", "--no-kid",
                       "--quiet"]) == 0
    assert write_report(out, run, export, bench_json) == 0
    return Pipeline(run, export, bench_json, out, json.loads((export / "manifest.json").read_text()),
                    json.loads(bench_json.read_text()))


def _row(doc: str, name: str, open_tag: str, cell: str) -> str:
    """The table row (HTML ``<tr>`` or Markdown line) whose first cell is ``name``."""
    rows = [r for r in doc.split(open_tag) if r.lstrip().startswith(cell.format(name))]
    assert len(rows) == 1, f"{name}: {len(rows)} rows"
    return rows[0].split("\n")[0] if open_tag == "\n" else rows[0].split("</tr>")[0]


def _expected_cells(art: dict, result: dict) -> list[str]:
    """Numbers of one artifact row, formatted independently of the report code where possible."""
    cells = [f"{art['bytes'] / 1e6:.3f} MB", fmt_count(art["params"]), fmt_count(art["macs"]),
             f"{result['latency_ms']['p50']:.2f}", f"{result['latency_ms']['p90']:.2f}"]
    q = result["quality"]
    if not q.get("is_reference"):  # KID: n/a, the bench ran with --no-kid
        cells += [f"{result['speedup_vs_teacher_same_runtime']:.2f}x", f"{q['psnr_db']:.2f} dB", f"{q['ssim']:.3f}", NA]
    return cells


@pytest.mark.slow
def test_markdown_images_exist(pipeline: Pipeline) -> None:
    md = (pipeline.out / "report.md").read_text()
    images = re.findall(r"!\[[^\]]*\]\(([^)]+)\)", md)
    assert {Path(i).name for i in images} == {"val_grid.png", "training_curves.png", "channels.png", "latency.png"}
    for rel in images:
        path = pipeline.out / rel
        assert path.is_file() and path.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n", rel
    assert not [p.name for p in pipeline.out.rglob(".*")], "temp files left behind"


@pytest.mark.slow
def test_html_self_contained(pipeline: Pipeline) -> None:
    html = (pipeline.out / "report.html").read_text()
    srcs = re.findall(r'<img src="([^"]+)"', html)
    assert len(srcs) == 4
    for src in srcs:
        assert src.startswith("data:image/png;base64,")
        assert base64.b64decode(src.split(",", 1)[1])[:8] == b"\x89PNG\r\n\x1a\n"
    assert "<style>" in html and "<link" not in html and "http://" not in html and "https://" not in html


@pytest.mark.slow
def test_numbers_match_manifest_and_bench(pipeline: Pipeline) -> None:
    html = (pipeline.out / "report.html").read_text()
    md = (pipeline.out / "report.md").read_text()
    results = {r["name"]: r for r in pipeline.bench["results"]}
    assert {a["name"] for a in pipeline.manifest["artifacts"]} == set(results)
    for art in pipeline.manifest["artifacts"]:
        expected = _expected_cells(art, results[art["name"]])
        for row in (_row(html, art["name"], "<tr>", "<td>{}</td>"), _row(md, art["name"], "\n", "| {} |")):
            for cell in expected:
                assert cell in row, (art["name"], cell, row)
    ratios = pipeline.manifest["ratios"]
    for doc in (html, md):
        assert f"{ratios['macs_teacher_over_student']:.2f}x" in doc
        assert f"{ratios['size_teacher_ckpt_over_student_int8_tflite']:.2f}x" in doc
        assert f"{SIZE}x{SIZE}" in doc and "student_int8_tflite" in doc
    metrics = json.loads((pipeline.run / "metrics.json").read_text())
    assert f"{metrics['quality']['fakequant']['psnr']:.2f} dB" in md
    assert f"--size {SIZE}" in md and "gs-bench" in md
    isa = pipeline.bench["environment"]["isa"]
    assert isa["summary"] and all(isa["summary"] in doc for doc in (html, md))


def _chromium() -> str:
    """Path of a Chromium binary, installing the Debian package if needed; skip with the reason."""
    proc = subprocess.run(["sh", str(ENSURE_CHROMIUM)], capture_output=True, text=True, timeout=900)
    if proc.returncode != 0:
        pytest.skip(f"headless Chromium unavailable: {proc.stderr.strip() or 'ensure_chromium.sh failed'}")
    return proc.stdout.strip().splitlines()[-1]


@pytest.mark.slow
def test_html_screenshot_in_headless_chromium(pipeline: Pipeline, tmp_path: Path) -> None:
    from PIL import Image

    shot = tmp_path / "report.png"
    cmd = [_chromium(), "--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
           "--disable-background-networking", "--disable-component-update", "--disable-sync",
           f"--user-data-dir={tmp_path / 'profile'}", f"--screenshot={shot}", "--window-size=1280,2400",
           (pipeline.out / "report.html").resolve().as_uri()]
    proc = subprocess.run(cmd, capture_output=True, text=True, timeout=180)
    assert proc.returncode == 0 and shot.is_file(), proc.stderr[-2000:]
    px = np.asarray(Image.open(shot).convert("L"), dtype=np.float32)
    assert px.shape == (2400, 1280)
    assert px.var() > 100, "blank screenshot"
    top = px[:800]  # headline, grid and artifact table are above the fold: not a white page
    assert (top < 128).mean() > 0.01


def test_missing_inputs_render_as_na(tmp_path: Path) -> None:
    """No RUN_DIR, EXPORT_DIR or bench.json: the report is still written, every value n/a."""
    out = tmp_path / "report"
    assert write_report(out, tmp_path / "no_run", tmp_path / "no_export", tmp_path / "no_bench.json") == 0
    html, md = (out / "report.html").read_text(), (out / "report.md").read_text()
    for doc in (html, md):
        assert "bench.json not found" in doc and "n/a (no manifest.json)" in doc
    assert "<img" not in html and "![" not in md


@pytest.mark.parametrize("target, suffix", [("local", ""), ("adb", " (this host; the artifacts ran on adb)")])
def test_isa_printed_next_to_speedups(tmp_path: Path, target: str, suffix: str) -> None:
    """bench.json's environment.isa summary appears on the speedup line of both reports."""
    bench = tmp_path / "bench.json"
    bench.write_text(json.dumps({"target": target, "settings": {"runs": 3, "threads": 1},
                                 "environment": {"cpu_model": "CPU", "isa": {"summary": "x86-64 AVX2 (no VNNI)",
                                                                             "flags": ["avx2"]}}}))
    out = tmp_path / "report"
    assert write_report(out, tmp_path / "no_run", tmp_path / "no_export", bench) == 0
    for name in ("report.html", "report.md"):
        line = next(ln for ln in (out / name).read_text().splitlines() if "speedup = teacher p50" in ln)
        assert f"x86-64 AVX2 (no VNNI){suffix}" in line.replace("&#39;", "'"), line


def test_training_plot_tolerates_ablation_history(tmp_path: Path) -> None:
    """An ablation history without some loss terms, sparsity or MACs still plots."""
    history = [{"step": i, "l1": 1.0 / (i + 1), "total": 2.0 / (i + 1)} for i in range(5)]
    history[2]["l1"] = None
    path = plot_training(history, tmp_path / "curves.png")
    assert path is not None and path.read_bytes()[:4] == b"\x89PNG"
    assert plot_training([], tmp_path / "none.png") is None


@pytest.mark.parametrize("value, text", [(56.8e9, "56.80 G"), (2620, "2.62 k"), (None, NA), (float("nan"), NA)])
def test_fmt_count(value: float | None, text: str) -> None:
    assert fmt_count(value) == text


def test_grid_refuses_val_views_that_would_run_code(tmp_path: Path) -> None:
    """An object (pickle) array in RUN_DIR/val_views.npz is refused in the report (one reason), never run."""
    import os
    import shlex

    from pipeline.report import Sources, make_grid

    marker = tmp_path / "ran"

    class Payload:
        def __reduce__(self) -> tuple:
            return os.system, (f"touch {shlex.quote(str(marker))}",)

    (tmp_path / "run").mkdir()
    payload = np.empty(1, dtype=object)
    payload[0] = Payload()
    np.savez(tmp_path / "run" / "val_views.npz", inputs=payload, teacher=payload)
    src = Sources(tmp_path / "run", tmp_path / "export", tmp_path / "bench.json", None, {"artifacts": []}, None)
    result = make_grid(src, tmp_path / "grid.png")
    assert result.path is None and "allow_pickle" in result.reason, result
    assert not marker.exists()


def test_grid_without_val_views_says_why(tmp_path: Path) -> None:
    from pipeline.report import Sources, make_grid

    src = Sources(tmp_path / "run", tmp_path / "export", tmp_path / "bench.json", None, {"artifacts": []}, None)
    result = make_grid(src, tmp_path / "grid.png")
    assert result.path is None and "val_views.npz not found" in result.reason, result


def test_val_views_round_trip(tmp_path: Path) -> None:
    import gs_contract

    rng = np.random.default_rng(0)
    inputs, teacher = rng.uniform(-1, 1, (2, 3, 8, 8)), rng.uniform(-1, 1, (2, 3, 8, 8))
    gs_contract.write_val_views(tmp_path / gs_contract.VAL_VIEWS_FILE, inputs, teacher)
    got_in, got_t = gs_contract.read_val_views(tmp_path / gs_contract.VAL_VIEWS_FILE)
    assert got_in.dtype == np.float32 and np.array_equal(got_in, inputs.astype(np.float32))
    assert np.array_equal(got_t, teacher.astype(np.float32))
