"""Bad input: one line on stderr, exit code 2, no file left behind."""
from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest
import torch

from export import validate
from export.cli import main
from tests.tiny import make_tiny_teacher

from tests.export.helpers import TinyRun, cli_args


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
