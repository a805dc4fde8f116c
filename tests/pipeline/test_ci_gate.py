"""CI step: the committed default student's aarch64 instruction counts are compared with the committed baseline."""
from __future__ import annotations

import json
from pathlib import Path

import pytest

from pipeline import ci_gate
from runtime_bench import arm

WHY = arm.why_unavailable()
pytestmark = [pytest.mark.slow, pytest.mark.skipif(WHY is not None, reason=f"aarch64 count unavailable: {WHY}")]
ROOT = Path(__file__).resolve().parents[2]


def test_default_student_has_no_regression_against_the_committed_baseline() -> None:
    assert ci_gate.STUDENT.is_file() and ci_gate.BASELINE_JSON.is_file(), "baseline files must be committed"
    baseline = json.loads(ci_gate.BASELINE_JSON.read_text())
    assert any(r.get("instructions_per_inference") for r in baseline["results"]), "baseline lacks instruction counts"
    report_dir = ROOT / "ci-artifacts"
    rc = ci_gate.gate(report_dir)
    report = (report_dir / "bench_report.md").read_text()
    assert "student_int8_tflite" in report and "ARM cost on neoverse-n1" in report
    assert rc == 0, report
