"""gs-bench refuses what it cannot measure or compare: one line on stderr, exit 2, before any work."""
from __future__ import annotations

import hashlib
import json
import os
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest

from runtime_bench import quality
from pipeline.ci_gate import BASELINE_JSON
from runtime_bench.cli import main
from runtime_bench.errors import BenchError

from bench_helpers import SIZE, copy_export, read_manifest, write_manifest

HERE = Path(__file__).resolve().parent
REPO = HERE.parents[1]
QUICK = ["--runs", "2", "--warmup", "0", "--rounds", "0", "--threads", "1", "--no-kid", "--quiet"]
RAW_ERRORS = ("Traceback", "UnicodeDecodeError", "codec can't", "EOFError", "RuntimeError", "KeyError",
              "TypeError")


def _refused(capsys: pytest.CaptureFixture, argv: list[str], needle: str) -> str:
    """Run gs-bench in-process; assert exit 2, one clean line on stderr holding ``needle``, < 10 s."""
    start = time.perf_counter()
    rc = main(argv)
    elapsed = time.perf_counter() - start
    err = capsys.readouterr().err.strip()
    assert rc == 2, err
    assert len(err.splitlines()) == 1 and err.startswith("gs-bench: error:") and needle in err, err
    assert not any(raw in err for raw in RAW_ERRORS), err
    assert elapsed < 10, f"refused after {elapsed:.1f} s"
    return err


def _png(path: Path, h: int, w: int, seed: int = 0) -> Path:
    from PIL import Image

    Image.fromarray(np.random.default_rng(seed).integers(0, 256, (h, w, 3), dtype=np.uint8)).save(path)
    return path


# ----------------------------------------------------------------------------- impossible numbers

@pytest.mark.parametrize("args,needle", [
    (["--threads", "0"], "--threads"), (["--threads", "-2"], "--threads"), (["--runs", "-1"], "--runs"),
    (["--warmup", "-1"], "--warmup"), (["--rounds", "-3"], "--rounds"), (["--max-images", "0"], "--max-images"),
    (["--timeout", "0"], "--timeout"), (["--timeout", "-5"], "--timeout"), (["--timeout", "nan"], "--timeout"),
    (["--timeout", "inf"], "--timeout"), (["--instr-runs", "-1"], "--instr-runs"),
    (["--instr-extra", "0"], "--instr-extra"), (["--instr-threads", "0"], "--instr-threads"),
    (["--instr-roles", "pupil"], "--instr-roles"), (["--instr-roles", ","], "--instr-roles"),
    (["--size", "0x32"], "bad size"), (["--size", "32x-1"], "bad size"),
    (["--size", f"{2 * SIZE}x{2 * SIZE}"], f"take {SIZE}x{SIZE} inputs only"),
    (["--size", f"{SIZE}x{SIZE + 4}"], "gs-export --size"),
])
def test_impossible_numbers_refused(tiny_export: Path, tmp_path: Path, capsys, args: list[str], needle: str) -> None:
    out = tmp_path / "b.json"
    _refused(capsys, [str(tiny_export), "--json", str(out), "--quiet", *args], needle)
    assert not out.exists()


def test_size_of_the_export_is_accepted(tiny_export: Path, tmp_path: Path) -> None:
    out = tmp_path / "b.json"
    assert main([str(tiny_export), "--runtime", "onnxruntime", "--size", f"{SIZE}x{SIZE}", "--json", str(out),
                 *QUICK]) == 0
    assert json.loads(out.read_text())["settings"]["image_size"] == [SIZE, SIZE]


def test_size_mismatch_refused_quickly_as_a_process(tiny_export: Path, tmp_path: Path) -> None:
    env = dict(os.environ, PYTHONPATH=str(REPO))
    start = time.perf_counter()
    proc = subprocess.run([sys.executable, "-m", "runtime_bench.cli", str(tiny_export), "--size", "256x256",
                           "--json", str(tmp_path / "b.json"), "--quiet"], capture_output=True, text=True,
                          env=env, cwd=REPO, timeout=60)
    assert time.perf_counter() - start < 10
    assert proc.returncode == 2 and proc.stderr.count("\n") == 1 and "--size 256x256" in proc.stderr, proc.stderr


@pytest.mark.parametrize("threshold", ["nan", "inf", "-inf%", "0%"])
def test_compare_impossible_threshold(bench_run: Path, capsys, threshold: str) -> None:
    _refused(capsys, ["compare", str(bench_run), str(bench_run), f"--threshold={threshold}"], "threshold")
    _refused(capsys, ["compare", str(bench_run), str(bench_run), f"--instr-threshold={threshold}"], "threshold")


# ----------------------------------------------------------------------------- damaged exports

def _rehash(d: Path) -> None:
    """Make manifest.json's bytes/sha256 match the (damaged) files, so the runtime itself must judge them."""
    m = read_manifest(d)
    for a in m["artifacts"]:
        data = (d / a["path"]).read_bytes()
        a["bytes"], a["sha256"] = len(data), hashlib.sha256(data).hexdigest()
    write_manifest(d, m)


def _truncated_tflite(d: Path) -> None:
    p = d / "student_int8.tflite"
    p.write_bytes(p.read_bytes()[:300])
    _rehash(d)


def _garbage_onnx(d: Path) -> None:
    (d / "student_fp32.onnx").write_bytes(b"\x00garbage" * 50)
    _rehash(d)


def _not_utf8(d: Path) -> None:
    (d / "manifest.json").write_bytes(b"\xff\xfe{\"format\": 1}")


def _not_json(d: Path) -> None:
    (d / "manifest.json").write_text('{"format": "gs-mobile/export", ')


def _edit(change):  # noqa: ANN001, ANN202 - a manifest edit as a damage function
    def damage(d: Path) -> None:
        m = read_manifest(d)
        change(m)
        write_manifest(d, m)
    return damage


def _empty(d: Path) -> None:
    for p in d.iterdir():
        p.unlink()


@pytest.mark.parametrize("damage,needle", [
    (_truncated_tflite, "cannot load student_int8.tflite"),
    (_garbage_onnx, "cannot load student_fp32.onnx"),
    (_not_utf8, "not UTF-8 text"),
    (_not_json, "not valid JSON"),
    (_edit(lambda m: m.pop("image_size")), "no valid image_size"),
    (_edit(lambda m: m.update(image_size="big")), "no valid image_size"),
    (_edit(lambda m: m["artifacts"][0].pop("path")), "has no 'path'"),
    (_edit(lambda m: m["artifacts"].append(7)), "is not a JSON object"),
    (_edit(lambda m: m.pop("artifacts")), "lists no artifacts"),
    (_empty, "no manifest.json in"),
])
def test_damaged_export_named_in_one_line(tiny_export: Path, tmp_path: Path, capsys, damage, needle: str) -> None:
    d = copy_export(tiny_export, tmp_path / "export")
    damage(d)
    out = tmp_path / "out" / "b.json"
    err = _refused(capsys, [str(d), "--json", str(out), *QUICK], needle)
    assert str(d / "manifest.json") in err or "student_" in err or str(d) in err
    assert not out.exists()


def _outside(d: Path, how: str) -> None:
    other = d.parent / "other"
    other.mkdir()
    (other / "x.tflite").write_bytes((d / "student_int8.tflite").read_bytes())
    m = read_manifest(d)
    entry = next(a for a in m["artifacts"] if a["name"] == "student_int8_tflite")
    if how == "relative":
        entry["path"] = "../other/x.tflite"
    elif how == "absolute":
        entry["path"] = str(other / "x.tflite")
    else:
        (d / "student_int8.tflite").unlink()
        (d / "student_int8.tflite").symlink_to(other / "x.tflite")
    write_manifest(d, m)


@pytest.mark.parametrize("how", ["relative", "absolute", "symlink"])
def test_artifact_outside_the_export_refused(tiny_export: Path, tmp_path: Path, capsys, how: str) -> None:
    d = copy_export(tiny_export, tmp_path / "export")
    _outside(d, how)
    _refused(capsys, [str(d), "--json", str(tmp_path / "b.json"), *QUICK], "outside the export folder")


def test_pipeline_report_refuses_artifact_outside(tiny_export: Path, tmp_path: Path) -> None:
    from runtime_bench.manifest import verify_artifact

    d = copy_export(tiny_export, tmp_path / "export")
    _outside(d, "relative")
    entry = next(a for a in read_manifest(d)["artifacts"] if a["name"] == "student_int8_tflite")
    with pytest.raises(BenchError, match="outside the export folder"):
        verify_artifact(d, entry)


# ----------------------------------------------------------------------------- --images

def test_images_folder_problems(tiny_export: Path, tmp_path: Path, capsys) -> None:
    base = [str(tiny_export), "--json", str(tmp_path / "b.json"), *QUICK]
    _refused(capsys, [*base, "--images", str(tmp_path / "absent")], "is not a folder")
    empty = tmp_path / "empty"
    empty.mkdir()
    (empty / "notes.txt").write_text("no images here")
    _refused(capsys, [*base, "--images", str(empty)], "holds no image files")
    bad = tmp_path / "bad"
    bad.mkdir()
    (bad / "a.png").write_bytes(b"not a png")
    (bad / "b.jpg").write_bytes(b"")
    assert main([*base, "--images", str(bad)]) == 2
    lines = capsys.readouterr().err.strip().splitlines()
    assert len(lines) == 3 and "a.png" in lines[0] and "b.jpg" in lines[1], lines
    assert lines[2].startswith("gs-bench: error:") and "none of its 2 image files is usable" in lines[2]


def test_corrupt_images_skipped_with_a_warning(tiny_export: Path, tmp_path: Path, capsys) -> None:
    images = tmp_path / "imgs"
    images.mkdir()
    (images / "a_broken.png").write_bytes(b"\x89PNG\r\n\x1a\n truncated")
    good = _png(images / "b_good.png", 80, 96)
    (images / "c_truncated.jpg").write_bytes(b"")
    _png(images / "d_good.png", 70, 70, seed=1)
    out = tmp_path / "b.json"
    assert main([str(tiny_export), "--runtime", "onnxruntime", "--json", str(out), "--images", str(images),
                 *QUICK]) == 0
    err = [line for line in capsys.readouterr().err.splitlines() if line.strip()]
    assert len(err) == 2 and all(line.startswith("gs-bench: warning: skipping") for line in err), err
    assert "a_broken.png" in err[0] and "c_truncated.jpg" in err[1]
    assert json.loads(out.read_text())["settings"]["images"] == [good.name, "d_good.png"]


def test_images_smaller_than_the_input_are_not_scored(tmp_path: Path, capsys) -> None:
    images = tmp_path / "imgs"
    images.mkdir()
    _png(images / "big.png", 140, 160)
    _png(images / "small.png", 100, 200)  # decodable, but lower than the 128x128 input
    x, names = quality.load_images(images, (128, 128), limit=8)
    assert names == ["big.png"] and x.shape == (1, 3, 128, 128)
    err = capsys.readouterr().err.strip()
    assert err.count("\n") == 0 and "small.png" in err and "200x100" in err and "128x128" in err, err
    (images / "big.png").unlink()
    with pytest.raises(BenchError, match="none of its 1 image files is usable"):
        quality.load_images(images, (128, 128))


def test_images_beyond_the_limit_replace_skipped_ones(tmp_path: Path, capsys) -> None:
    images = tmp_path / "imgs"
    images.mkdir()
    (images / "a.png").write_bytes(b"junk")
    for seed, name in enumerate(("b.png", "c.png", "d.png")):
        _png(images / name, 64, 64, seed)
    _, names = quality.load_images(images, (32, 32), limit=2)
    assert names == ["b.png", "c.png"]
    assert "a.png" in capsys.readouterr().err


# ----------------------------------------------------------------------------- compare

@pytest.fixture(scope="module")
def other_size_export(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A second tiny real export, at 48x48."""
    out = tmp_path_factory.mktemp("export48")
    env = dict(os.environ, OMP_NUM_THREADS="1", TF_NUM_INTRAOP_THREADS="1", TF_NUM_INTEROP_THREADS="1")
    proc = subprocess.run([sys.executable, str(HERE / "tiny_export.py"), str(out), "--size", "48"],
                          capture_output=True, text=True, env=env, timeout=300)
    assert proc.returncode == 0, proc.stderr[-3000:]
    return out


def _bench(export_dir: Path, out: Path, *args: str) -> Path:
    assert main([str(export_dir), "--json", str(out), "--runs", "3", "--warmup", "1", "--rounds", "0",
                 "--no-kid", "--quiet", *args]) == 0
    return out


def test_compare_refuses_other_image_size(bench_run: Path, other_size_export: Path, tmp_path: Path,
                                          capsys) -> None:
    current = _bench(other_size_export, tmp_path / "b48.json", "--threads", "1")
    report = tmp_path / "r.md"
    err = _refused(capsys, ["compare", str(bench_run), str(current), "--report", str(report)],
                   f"image size {SIZE}x{SIZE} in the baseline, 48x48 in the current run")
    assert f"gs-export --size {SIZE}" in err and "regression" not in err
    assert not report.exists()


def test_compare_refuses_committed_baseline_against_another_size(bench_run: Path, capsys) -> None:
    err = _refused(capsys, ["compare", str(BASELINE_JSON), str(bench_run)], "image size 128x128 in the baseline")
    assert "1 in the current run (re-run the bench with --threads 2)" in err  # bench_run used 1 thread


def test_compare_refuses_other_thread_count(bench_run: Path, tiny_export: Path, tmp_path: Path, capsys) -> None:
    current = _bench(tiny_export, tmp_path / "t2.json", "--threads", "2")
    err = _refused(capsys, ["compare", str(bench_run), str(current)], "1 threads in the baseline, 2 in the current")
    assert "--threads 1" in err


def test_compare_artifact_sets(bench_run: Path, tiny_export: Path, tmp_path: Path, capsys) -> None:
    only_tflite = _bench(tiny_export, tmp_path / "tflite.json", "--threads", "1", "--runtime", "tflite")
    # the current run lacks what the baseline measured: refused, naming what is missing
    err = _refused(capsys, ["compare", str(bench_run), str(only_tflite)], "the current run lacks")
    assert "student_fp32_onnx [onnxruntime]" in err and "--runtime all" in err
    # the current run measures more than the baseline: the baseline's rows are judged, the rest noted
    report = tmp_path / "r.md"
    assert main(["compare", str(only_tflite), str(bench_run), "--report", str(report)]) in (0, 1)
    md = report.read_text()
    assert "student_int8_tflite" in md and "student_fp32_onnx [onnxruntime] only in the current run" in md


def test_compare_refuses_unusable_bench_files(bench_run: Path, tmp_path: Path, capsys) -> None:
    not_utf8 = tmp_path / "a.json"
    not_utf8.write_bytes(b"\xff\xfe\x00")
    _refused(capsys, ["compare", str(bench_run), str(not_utf8)], f"corrupt bench result {not_utf8}: not UTF-8")
    no_p50 = tmp_path / "b.json"
    doc = json.loads(bench_run.read_text())
    del doc["results"][1]["latency_ms"]
    no_p50.write_text(json.dumps(doc))
    _refused(capsys, ["compare", str(bench_run), str(no_p50)], "result #2 lacks name, runtime or latency_ms.p50")
