"""The committed standard-preset student: its budget and quality as recorded, and an INT8 TFLite export that keeps it."""
from __future__ import annotations

import json
from pathlib import Path

import pytest

from compress.checkpoint import load_student, read_student_checkpoint
from export.pipeline import ExportOptions, run_export

pytestmark = pytest.mark.slow
BASELINES = Path(__file__).resolve().parents[2] / "pipeline" / "baselines"
STUDENT, METRICS = BASELINES / "standard_student.pt", BASELINES / "standard_metrics.json"


def test_committed_standard_student_meets_the_budget_its_metrics_record() -> None:
    metrics = json.loads(METRICS.read_text())
    payload = read_student_checkpoint(STUDENT)  # weights_only load with every field checked
    assert metrics["config"]["preset"] == payload["config"]["preset"] == "standard"
    assert payload["metrics"]["quality"] == metrics["quality"], "student.pt and metrics.json come from different runs"
    # the budgets (1/9 MACs, 1/12 params) hold the GS student; the colour head fitted after it adds ~57k parameters
    student, _ = load_student(STUDENT)
    head = student.colour.params(student.trunk_kept())
    assert student.slim_params() == metrics["student_params"]
    assert metrics["macs_ratio"] >= 9 and metrics["student_params"] - head <= metrics["teacher_params"] / 12
    q = metrics["quality"]
    assert q["fakequant"]["psnr"] > q["identity_baseline"]["psnr"] + 3


def test_standard_student_int8_tflite_keeps_its_fake_quant_quality(tmp_path: Path) -> None:
    manifest = run_export(ExportOptions(run=STUDENT, formats=["tflite"], out=tmp_path / "export", size=128))
    fake_quant = manifest["validation"]["student_fakequant_psnr_vs_teacher"]
    int8 = next(a for a in manifest["artifacts"] if a["name"] == "student_int8_tflite")
    assert abs(int8["psnr_vs_teacher"] - fake_quant) <= 0.3, (int8["psnr_vs_teacher"], fake_quant)
