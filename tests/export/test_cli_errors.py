"""Bad input: one line on stderr, exit code 2, no file left behind."""
from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest
import torch

from export import validate
from export.cli import main
from tests.tiny import make_tiny_teacher

from tests.export.helpers import TinyRun, cli_args

ROOT = Path(__file__).resolve().parents[2]


def _fails(capsys: pytest.CaptureFixture, argv: list[str], *, expect: str) -> str:
    assert main(argv) == 2
    err = capsys.readouterr().err
    lines = err.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("gs-export: error:"), err
    assert expect in lines[0], lines[0]
    return lines[0]


def _no_files(path: Path) -> bool:
    return not path.exists() or not any(path.iterdir())


def test_unknown_format(tiny_run: TinyRun, tmp_path: Path, capsys) -> None:
    out = tmp_path / "out"
    _fails(capsys, cli_args(tiny_run, out, "--format", "pdf"), expect="unknown format pdf")
    assert _no_files(out)


def test_unknown_option_is_one_line(tiny_run: TinyRun, tmp_path: Path, capsys) -> None:
    _fails(capsys, cli_args(tiny_run, tmp_path / "out", "--bogus"), expect="unrecognized arguments")


@pytest.mark.parametrize("damage", ["garbage", "truncated", "missing"])
def test_corrupt_checkpoint(tiny_run: TinyRun, tmp_path: Path, capsys, damage: str) -> None:
    run = tmp_path / "run"
    run.mkdir()
    data = (tiny_run.run / "student.pt").read_bytes()
    if damage == "garbage":
        (run / "student.pt").write_bytes(b"not a checkpoint" * 100)
    elif damage == "truncated":
        (run / "student.pt").write_bytes(data[: len(data) // 2])
    bad = TinyRun(run, tiny_run.teacher, tiny_run.arch, tiny_run.student)
    out = tmp_path / "out"
    _fails(capsys, cli_args(bad, out, "--format", "onnx"),
           expect="no student checkpoint" if damage == "missing" else "student checkpoint")
    assert _no_files(out)


def test_other_architecture(tiny_run: TinyRun, tmp_path: Path, capsys) -> None:
    teacher = tmp_path / "cartoon.pth"
    torch.save(make_tiny_teacher("cartoongan").state_dict(), teacher)
    other = TinyRun(tiny_run.run, teacher, "cartoongan", tiny_run.student)
    out = tmp_path / "out"
    _fails(capsys, cli_args(other, out, "--format", "onnx"), expect="holds a cyclegan student, expected cartoongan")
    assert _no_files(out)


def test_teacher_checkpoint_given_as_run(tiny_run: TinyRun, tmp_path: Path, capsys) -> None:
    not_student = TinyRun(tiny_run.teacher, tiny_run.teacher, tiny_run.arch, tiny_run.student)
    _fails(capsys, cli_args(not_student, tmp_path / "out", "--format", "onnx"),
           expect="not a gs-compress student checkpoint")


def test_teacher_of_wrong_shape(tiny_run: TinyRun, tmp_path: Path, capsys) -> None:
    wrong = TinyRun(tiny_run.run, tiny_run.run / "student.pt", tiny_run.arch, tiny_run.student)
    _fails(capsys, cli_args(wrong, tmp_path / "out", "--format", "onnx"), expect="student.pt")


def test_unwritable_out_dir(tiny_run: TinyRun, tmp_path: Path, capsys) -> None:
    blocker = tmp_path / "a_file"
    blocker.write_text("x")
    _fails(capsys, cli_args(tiny_run, blocker / "out", "--format", "onnx"), expect="cannot write to output folder")
    assert blocker.read_text() == "x"


def test_missing_converter(tiny_run: TinyRun, tmp_path: Path, capsys, monkeypatch) -> None:
    import importlib.util

    real = importlib.util.find_spec
    monkeypatch.setattr(importlib.util, "find_spec", lambda name, *a: None if name == "tensorflow" else real(name, *a))
    out = tmp_path / "out"
    _fails(capsys, cli_args(tiny_run, out, "--format", "tflite"), expect="needs the Python module(s) tensorflow")
    assert _no_files(out)


def test_validation_failure_leaves_nothing(tiny_run: TinyRun, tmp_path: Path, capsys, monkeypatch) -> None:
    monkeypatch.setitem(validate.TOLERANCE_DB, "int8", 150.0)
    out = tmp_path / "out"
    _fails(capsys, cli_args(tiny_run, out, "--format", "onnx"), expect="student_int8_onnx failed validation")
    assert not out.exists()
    existing = tmp_path / "existing"
    existing.mkdir()
    (existing / "keep.txt").write_text("mine")
    _fails(capsys, cli_args(tiny_run, existing, "--format", "onnx"), expect="failed validation")
    assert [p.name for p in existing.iterdir()] == ["keep.txt"]


def test_android_dir_checked_first(tiny_run: TinyRun, tmp_path: Path, capsys) -> None:
    out = tmp_path / "out"
    _fails(capsys, cli_args(tiny_run, out, "--format", "onnx", "--android", str(tmp_path)),
           expect="not the Android demo project")
    assert _no_files(out)


def test_console_process_exit_code(tmp_path: Path) -> None:
    proc = subprocess.run([sys.executable, "-m", "export.cli", str(tmp_path), "--format", "onnx", "--quiet"],
                          capture_output=True, text=True, cwd=Path(__file__).parents[2])
    assert proc.returncode == 2
    assert proc.stderr.strip().count("\n") == 0 and "no student checkpoint" in proc.stderr


@pytest.mark.parametrize("size", ["0", "-8", "8", "30", "4100", "abc"])
def test_impossible_size_refused_before_any_work(tiny_run: TinyRun, tmp_path: Path, capsys, size: str) -> None:
    out = tmp_path / "out"
    start = time.perf_counter()
    _fails(capsys, [*cli_args(tiny_run, out, "--format", "onnx"), "--size", size], expect="--size")
    assert time.perf_counter() - start < 10
    assert not out.exists()


def _png(path: Path, seed: int, h: int = 72, w: int = 80) -> None:
    from PIL import Image

    Image.fromarray(np.random.default_rng(seed).integers(0, 256, (h, w, 3), dtype=np.uint8)).save(path)


def test_images_folder_without_usable_images(tiny_run: TinyRun, tmp_path: Path, capsys) -> None:
    out = tmp_path / "out"
    empty = tmp_path / "empty"
    empty.mkdir()
    _fails(capsys, cli_args(tiny_run, out, "--format", "onnx", "--images", str(empty)), expect="holds no image files")
    (empty / "a.jpg").write_bytes(b"")
    (empty / "b.png").write_bytes(b"\x89PNG\r\n\x1a\n cut short")
    assert main(cli_args(tiny_run, out, "--format", "onnx", "--images", str(empty))) == 2
    lines = capsys.readouterr().err.strip().splitlines()
    assert [line.split(":")[1].strip() for line in lines] == ["warning", "warning", "error"], lines
    assert "a.jpg" in lines[0] and "b.png" in lines[1] and "none of its 2 image files is usable" in lines[2]
    assert _no_files(out)


def test_corrupt_images_skipped_with_a_warning(tiny_run: TinyRun, tmp_path: Path, capsys) -> None:
    images = tmp_path / "images"
    images.mkdir()
    _png(images / "a.png", 0)
    (images / "b.jpg").write_bytes(b"\xff\xd8\xff garbage")
    _png(images / "c.png", 1)
    out = tmp_path / "out"
    assert main(cli_args(tiny_run, out, "--format", "onnx", "--images", str(images))) == 0
    warnings = [line for line in capsys.readouterr().err.splitlines() if "warning" in line]
    assert len(warnings) == 1 and warnings[0].startswith("gs-export: warning: skipping") and "b.jpg" in warnings[0]
    manifest = json.loads((out / "manifest.json").read_text())
    assert manifest["validation"]["images"] == 2


def _staging(out: Path) -> list[Path]:
    return sorted(out.glob(".gs-export-*"))


def test_killed_export_leaves_staging_that_the_next_run_removes(tiny_run: TinyRun, tmp_path: Path) -> None:
    out = tmp_path / "out"
    env = dict(os.environ, PYTHONPATH=str(ROOT), OMP_NUM_THREADS="1")
    proc = subprocess.Popen([sys.executable, "-m", "export.cli", *cli_args(tiny_run, out, "--format", "all")],
                            cwd=ROOT, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        deadline = time.monotonic() + 240
        while not any(p.iterdir() for p in _staging(out)) and proc.poll() is None and time.monotonic() < deadline:
            time.sleep(0.05)  # until the first artifact is being written into the staging folder
        assert proc.poll() is None, "gs-export ended before it could be killed mid-export"
        os.kill(proc.pid, signal.SIGKILL)
    finally:
        proc.kill()
        proc.wait()
    left = _staging(out)
    assert len(left) == 1 and left[0].name.startswith(f".gs-export-{proc.pid}-")
    assert main(cli_args(tiny_run, out, "--format", "onnx")) == 0
    assert _staging(out) == [] and (out / "manifest.json").is_file() and (out / "student_int8.onnx").is_file()


def test_staging_of_a_running_export_is_kept(tmp_path: Path) -> None:
    from export.pipeline import remove_stale_staging

    alive = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(60)"])
    dead = subprocess.Popen([sys.executable, "-c", "pass"])
    dead.wait()
    try:
        running = tmp_path / f".gs-export-{alive.pid}-abc"
        stale = tmp_path / f".gs-export-{dead.pid}-def"
        unnamed = tmp_path / ".gs-export-xyz"
        for d in (running, stale, unnamed):
            (d / "sub").mkdir(parents=True)
        assert sorted(remove_stale_staging(tmp_path)) == sorted([stale, unnamed])
        assert _staging(tmp_path) == [running]
    finally:
        alive.kill()
        alive.wait()
