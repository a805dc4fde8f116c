"""compare: verdicts on synthetic bench documents with controlled latencies and noise."""
from __future__ import annotations

import pytest

from runtime_bench.compare import compare, parse_threshold, to_markdown
from runtime_bench.errors import BenchError


def result(name: str, runtime: str, role: str, p50: float, noise: float = 0.01) -> dict:
    return {"name": name, "runtime": runtime, "role": role, "precision": "fp32",
            "latency_ms": {"p50": p50, "noise": noise}}


def doc(student: float, teacher: float, s_noise: float = 0.01, t_noise: float = 0.01, cpu: str = "x") -> dict:
    return {"format": "gs-mobile/bench", "environment": {"cpu_model": cpu, "threads": 2},
            "results": [result("student_int8_tflite", "tflite", "student", student, s_noise),
                        result("teacher_fp32_tflite", "tflite", "teacher", teacher, t_noise)]}


def verdict(c, name="student_int8_tflite") -> str:
    return next(r.verdict for r in c.rows if r.name == name)


def test_threshold_and_ratio() -> None:
    base = doc(10.0, 200.0)
    assert verdict(compare(base, doc(10.0, 200.0))) == "ok"
    assert verdict(compare(base, doc(11.5, 200.0))) == "regression"       # +15% > 10%
    assert verdict(compare(base, doc(10.8, 200.0))) == "ok"               # +8%
    assert verdict(compare(base, doc(11.5, 230.0))) == "ok"               # machine 15% slower: ratio same
    assert verdict(compare(base, doc(8.0, 200.0))) == "improved"
    assert verdict(compare(base, doc(11.5, 230.0), absolute=True)) == "regression"
    assert verdict(compare(base, doc(11.5, 200.0), threshold=0.2)) == "ok"
    assert verdict(compare(base, base), "teacher_fp32_tflite") == "reference"


def test_noise_band_suppresses_flag() -> None:
    noisy_base, noisy_cur = doc(10.0, 200.0, s_noise=0.12), doc(11.5, 200.0, s_noise=0.12)
    c = compare(noisy_base, noisy_cur)
    assert verdict(c) == "ok"  # +15% but the two bands add up to > 24%
    row = c.rows[0]
    assert row.noise == pytest.approx(2 * (0.12**2 + 0.01**2) ** 0.5)
    assert verdict(compare(noisy_base, doc(13.0, 200.0, s_noise=0.12))) == "regression"  # +30%


def test_missing_teacher_falls_back_to_ms_and_notes() -> None:
    base = {"format": "gs-mobile/bench", "results": [result("s", "onnxruntime", "student", 5.0)]}
    cur = {"format": "gs-mobile/bench", "results": [result("s", "onnxruntime", "student", 6.0),
                                                      result("new", "tflite", "student", 1.0)]}
    c = compare(base, cur)
    assert verdict(c, "s") == "regression" and c.rows[0].judged == "ms"
    assert any("only in the current" in n for n in c.notes)
    assert any("no teacher" in n for n in c.notes)


def test_markdown_cells() -> None:
    c = compare(doc(11.9, 200.0), doc(12.4, 200.0), threshold=0.1)
    md = to_markdown(c)
    assert "12.4 ms (vs 11.9, +4.2%)" in md and "## tflite" in md and "no regression" in md
    c = compare(doc(10.0, 200.0, cpu="a"), doc(13.0, 200.0, cpu="b"), absolute=True)
    md = to_markdown(c)
    assert "13.0 ms (vs 10.0, +30.0%) ↑" in md and "regression" in md and "environments differ" in md
    assert "0.065 (vs 0.05, +30.0%) ↑" in to_markdown(compare(doc(10.0, 200.0), doc(13.0, 200.0)))
    assert "↓" in to_markdown(compare(doc(10.0, 200.0), doc(7.0, 200.0)))


def test_parse_threshold() -> None:
    assert parse_threshold("10%") == pytest.approx(0.1)
    assert parse_threshold("0.25") == pytest.approx(0.25)
    for bad in ("ten", "-5%", "0"):
        with pytest.raises(BenchError):
            parse_threshold(bad)
