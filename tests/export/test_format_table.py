"""The format table is the one place a format is defined: the CLI, the pipeline, validation and the
manifest all read it, and options a format cannot use are refused."""
from __future__ import annotations

import json
from pathlib import Path

import pytest

from export import formats
from export.cli import main
from export.formats import ExportContext, Format, Variant
from tests.export.helpers import TinyRun, cli_args

#: the artifact names and files docs/CONTRACTS.md (EXPORT_DIR) fixes, in manifest order
CONTRACT_ARTIFACTS = [
    ("student_int8_tflite", "student_int8.tflite"), ("student_fp32_tflite", "student_fp32.tflite"),
    ("teacher_fp32_tflite", "teacher_fp32.tflite"), ("student_int8_onnx", "student_int8.onnx"),
    ("student_fp32_onnx", "student_fp32.onnx"), ("teacher_fp32_onnx", "teacher_fp32.onnx"),
    ("student_w8_mlpackage", "student_w8.mlpackage"), ("student_w8a8_mlpackage", "student_w8a8.mlpackage"),
    ("teacher_fp32_torchscript", "teacher_fp32.pt")]


def test_table_names_the_contract_artifacts() -> None:
    assert [(a.name, a.filename) for a in formats.artifacts()] == CONTRACT_ARTIFACTS


def _write_tiny_file(_ctx: ExportContext, path: Path) -> None:
    path.write_bytes(b"dummy model")


DUMMY = Format("dummy", ".dummy", "dummy", (Variant("student", "fp32", _write_tiny_file),),
               modules=(), runtime=None, options=("io",))


def test_a_new_format_is_one_table_entry(tiny_run: TinyRun, tmp_path: Path, monkeypatch, capsys) -> None:
    """A dummy format (its exporter writes a tiny file; no graph facts or runner, so its validation is
    the structural checks on its declared I/O) registered in the table alone is exported, validated
    and listed; an option it declares is accepted."""
    monkeypatch.setitem(formats.FORMATS, "dummy", DUMMY)
    out = tmp_path / "out"
    assert main(cli_args(tiny_run, out, "--format", "dummy", "--io", "uint8")) == 0
    assert "student_fp32.dummy" in capsys.readouterr().out
    manifest = json.loads((out / "manifest.json").read_text())
    [entry] = manifest["artifacts"]
    assert (entry["name"], entry["path"], entry["format"], entry["runtime"]) == \
        ("student_fp32_dummy", "student_fp32.dummy", "dummy", None)
    assert (out / "student_fp32.dummy").read_bytes() == b"dummy model"
    assert entry["macs"] == manifest["student"]["macs"]


def test_unknown_format_lists_the_table(tiny_run: TinyRun, tmp_path: Path, monkeypatch, capsys) -> None:
    monkeypatch.setitem(formats.FORMATS, "dummy", DUMMY)
    assert main(cli_args(tiny_run, tmp_path / "out", "--format", "pdf")) == 2
    assert "choose from tflite, onnx, coreml, torchscript, dummy, all" in capsys.readouterr().err


@pytest.mark.parametrize("fmt, option", [("onnx", ["--io", "uint8"]), ("onnx,coreml", ["--io", "float"]),
                                         ("torchscript", ["--android", "APP"])])
def test_option_of_another_format_refused(tiny_run: TinyRun, tmp_path: Path, capsys, fmt: str,
                                          option: list[str]) -> None:
    app = tmp_path / "app"
    (app / "app" / "src" / "main").mkdir(parents=True)
    option = [str(app) if v == "APP" else v for v in option]
    out = tmp_path / "out"
    assert main(cli_args(tiny_run, out, "--format", fmt, *option)) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert err == [f"gs-export: error: {option[0]} applies to tflite only"]
    assert not out.exists()
