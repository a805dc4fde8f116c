"""The README demo at tiny scale: real teacher, real photos, every stage, every artifact, one report."""
from __future__ import annotations

import json
from pathlib import Path

import pytest

from pipeline.demo import main as demo_main

pytestmark = pytest.mark.slow


@pytest.fixture(scope="module")
def demo_out(tmp_path_factory: pytest.TempPathFactory) -> Path:
    out = tmp_path_factory.mktemp("demo")
    assert demo_main(["--out", str(out), "--preset", "tiny", "--size", "64", "--runs", "3"]) == 0
    return out


def test_every_stage_wrote_its_files(demo_out: Path) -> None:
    for rel in ("preview/teacher_preview.png", "run/student.pt", "run/metrics.json", "run/samples.png",
                "export/manifest.json", "bench.json", "report.html", "report.md"):
        assert (demo_out / rel).is_file(), rel
    manifest = json.loads((demo_out / "export" / "manifest.json").read_text())
    for art in manifest["artifacts"]:
        assert (demo_out / "export" / art["path"]).exists(), art["path"]
    names = {a["name"] for a in manifest["artifacts"]}
    assert {"student_int8_tflite", "student_fp32_tflite", "teacher_fp32_tflite"} <= names


def test_numbers_are_consistent_across_stages(demo_out: Path) -> None:
    metrics = json.loads((demo_out / "run" / "metrics.json").read_text())
    manifest = json.loads((demo_out / "export" / "manifest.json").read_text())
    bench = json.loads((demo_out / "bench.json").read_text())
    assert manifest["student"]["macs"] == metrics["student_macs"]
    assert manifest["teacher"]["macs"] == metrics["teacher_macs"]
    by_name = {a["name"]: a for a in manifest["artifacts"]}
    int8 = by_name["student_int8_tflite"]
    assert int8["float_ops"] == 0 or all("CONV" not in k or k.endswith("int8") for k in int8["op_histogram"])
    bench_by = {(e["name"], e["runtime"]): e for e in bench["results"]}
    e = bench_by[("student_int8_tflite", "tflite")]
    assert e["bytes"] == int8["bytes"] and e["sha256"] == int8["sha256"] and e["macs"] == int8["macs"]
    assert e["speedup_vs_teacher_same_runtime"] > 1.0
    html = (demo_out / "report.html").read_text()
    assert "student_int8_tflite" in html


def test_rerun_reuses_finished_stages(demo_out: Path, capsys: pytest.CaptureFixture) -> None:
    assert demo_main(["--out", str(demo_out), "--preset", "tiny", "--size", "64", "--runs", "3"]) == 0
    counted_arm = (demo_out / "bench_arm.json").exists()  # the qemu stage runs where the sysroot exists
    assert capsys.readouterr().out.count("reusing") == (6 if counted_arm else 5)


def test_arm_cost_reaches_the_report(demo_out: Path) -> None:
    from runtime_bench.arm import why_unavailable

    if (why := why_unavailable()) is not None:
        pytest.skip(f"aarch64 count unavailable: {why}")
    doc = json.loads((demo_out / "bench_arm.json").read_text())
    assert all(r["correctness"]["pass"] for r in doc["results"])
    assert "ARM cost on neoverse-n1" in (demo_out / "report.md").read_text()
