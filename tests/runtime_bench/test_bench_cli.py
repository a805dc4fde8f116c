"""End-to-end gs-bench on a tiny real export: the JSON, compare verdicts, and bad input handling."""
from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

from runtime_bench.cli import main

from bench_helpers import copy_export, read_manifest, write_manifest

LATENCY_KEYS = {"mean", "std", "min", "p50", "p90", "p99", "n", "noise"}


def load(path: Path) -> dict:
    return json.loads(path.read_text())


def test_bench_json_has_all_fields(bench_run: Path, tiny_export: Path) -> None:
    doc = load(bench_run)
    manifest = read_manifest(tiny_export)
    assert doc["format"] == "gs-mobile/bench" and doc["version"] == 1
    env = doc["environment"]
    assert env["cpu_model"] and env["threads"] == 1 and env["logical_cores"] >= 1
    assert env["versions"]["onnxruntime"] and env["versions"]["ai-edge-litert"] and env["versions"]["torch"]
    assert doc["settings"]["runs"] == 100 and doc["settings"]["image_size"] == [32, 32]
    by_name = {r["name"]: r for r in doc["results"]}
    assert set(by_name) == {a["name"] for a in manifest["artifacts"]}
    for a in manifest["artifacts"]:
        r = by_name[a["name"]]
        assert r["sha256"] == a["sha256"] and r["bytes"] == a["bytes"]
        assert LATENCY_KEYS <= set(r["latency_ms"])
        lat = r["latency_ms"]
        assert 0 < lat["min"] <= lat["p50"] <= lat["p90"] <= lat["p99"] and lat["n"] == 100
        assert r["init_ms"] > 0 and r["first_ms"] > 0 and r["peak_rss_mb"] > 10
        assert r["runtime_info"]["threads"] == 1
    assert by_name["teacher_fp32_onnx"]["runtime_info"]["graph_optimization_level"] == "ORT_ENABLE_ALL"
    assert "XNNPACK" in by_name["student_int8_tflite"]["runtime_info"]["delegate"]
    # speedups: teacher/student in the same runtime and vs the torch teacher, from interleaved rounds
    s, t = by_name["student_int8_tflite"], by_name["teacher_fp32_tflite"]
    assert doc["settings"]["rounds"] == 60 and doc["interleaved"]["rounds"] == 60
    assert s["ratio_method"] == "interleaved rounds"
    same, vs_torch = s["interleaved"]["teacher_fp32_tflite [tflite]"], s["interleaved"]["teacher_fp32_torch [torch]"]
    assert same["rounds"] == 60 and same["min"] <= same["p50"] <= same["max"] and 0 <= same["noise"] < 1
    assert s["speedup_vs_teacher_same_runtime"] == pytest.approx(1 / same["p50"])
    assert s["ratio_vs_teacher"] == pytest.approx(same["p50"])
    assert s["speedup_vs_teacher_torch"] == pytest.approx(1 / vs_torch["p50"])
    medians = doc["interleaved"]["round_medians_ms"]
    assert np.median(np.divide(medians["student_int8_tflite [tflite]"], medians["teacher_fp32_tflite [tflite]"])) \
        == pytest.approx(same["p50"])
    assert t["speedup_vs_teacher_same_runtime"] is None and "interleaved" not in t
    # quality vs the torch teacher: its own conversions agree closely, the (different) student does not
    assert doc["quality_reference"] == "teacher_fp32_torch [torch]"
    assert by_name["teacher_fp32_torch"]["quality"]["is_reference"]
    for name in ("teacher_fp32_onnx", "teacher_fp32_tflite"):
        q = by_name[name]["quality"]
        assert q["identical"] or q["psnr_db"] > 45, q
        assert q["max_abs_diff"] < 1e-3
    q = by_name["student_int8_tflite"]["quality"]
    assert 5 < q["psnr_db"] < 45 and 0 < q["ssim"] < 1
    assert q["kid"] is None and "disabled" in q["reason"]
    for png in doc["files"].values():
        assert Path(png).stat().st_size > 1000


def _slower_student(doc: dict, factor: float, interleaved: bool = True) -> dict:
    """The same run with every student ``factor`` times slower (its interleaved ratios too)."""
    for r in doc["results"]:
        if r["role"] == "student":
            for k in ("mean", "min", "p50", "p90", "p99"):
                r["latency_ms"][k] *= factor
            for stats in r.get("interleaved", {}).values():
                for k in ("p50", "min", "max"):
                    stats[k] *= factor if interleaved else 1.0
    return doc


def test_compare_judges_interleaved_ratio_when_both_runs_have_it(bench_run: Path, tmp_path: Path) -> None:
    # students 25% slower in the separate measurements only: the interleaved ratios (same) decide
    only_p50 = tmp_path / "p50.json"
    only_p50.write_text(json.dumps(_slower_student(load(bench_run), 1.25, interleaved=False)))
    report = tmp_path / "r.md"
    assert main(["compare", str(bench_run), str(only_p50), "--report", str(report)]) == 0
    assert "(interleaved ratio)" in report.read_text()
    # a current run without interleaved rounds: both sides fall back to the p50 ratio, which regressed
    doc = _slower_student(load(bench_run), 1.25, interleaved=False)
    for r in doc["results"]:
        r.pop("interleaved", None)
    plain = tmp_path / "plain.json"
    plain.write_text(json.dumps(doc))
    assert main(["compare", str(bench_run), str(plain), "--report", str(report)]) == 1
    assert "(interleaved ratio)" not in report.read_text()


def test_compare_self_passes_and_slow_student_fails(bench_run: Path, tmp_path: Path, capsys) -> None:
    assert main(["compare", str(bench_run), str(bench_run), "--report", str(tmp_path / "same.md")]) == 0
    assert "no regression" in (tmp_path / "same.md").read_text()
    slow = tmp_path / "slow.json"
    slow.write_text(json.dumps(_slower_student(load(bench_run), 1.25)))
    report = tmp_path / "report.md"
    assert main(["compare", str(bench_run), str(slow), "--threshold", "10%", "--report", str(report)]) == 1
    md = report.read_text()
    assert "regression" in md and "+25.0%" in md and "↑" in md
    # a 25% slow-down is within a 30% threshold
    assert main(["compare", str(bench_run), str(slow), "--threshold", "30%"]) == 0
    # a faster student is never a regression
    fast = tmp_path / "fast.json"
    fast.write_text(json.dumps(_slower_student(load(bench_run), 0.7)))
    assert main(["compare", str(bench_run), str(fast)]) == 0
    capsys.readouterr()


def test_compare_ratio_ignores_uniformly_slower_machine(bench_run: Path, tmp_path: Path) -> None:
    doc = load(bench_run)
    for r in doc["results"]:  # everything 40% slower: ratios unchanged
        for k in ("mean", "min", "p50", "p90", "p99"):
            r["latency_ms"][k] *= 1.4
    slower = tmp_path / "machine.json"
    slower.write_text(json.dumps(doc))
    assert main(["compare", str(bench_run), str(slower)]) == 0
    assert main(["compare", str(bench_run), str(slower), "--absolute"]) == 1


def test_runtime_filter_and_own_images(tiny_export: Path, tmp_path: Path) -> None:
    from PIL import Image

    images = tmp_path / "imgs"
    images.mkdir()
    rng = np.random.default_rng(0)
    Image.fromarray(rng.integers(0, 256, (64, 100, 3), dtype=np.uint8)).save(images / "b.png")
    Image.fromarray(rng.integers(0, 256, (90, 70, 3), dtype=np.uint8)).save(images / "a.jpg")
    (images / "notes.txt").write_text("not an image")
    out = tmp_path / "b.json"
    assert main([str(tiny_export), "--runtime", "onnxruntime", "--runs", "3", "--warmup", "0", "--threads", "1",
                 "--json", str(out), "--no-kid", "--quiet", "--images", str(images)]) == 0
    doc = load(out)
    assert doc["settings"]["images"] == ["a.jpg", "b.png"]
    assert {r["runtime"] for r in doc["results"]} == {"onnxruntime"}
    assert {r["name"] for r in doc["results"]} == {"teacher_fp32_onnx", "student_fp32_onnx"}
    # no torch teacher measured in this run -> no speedup vs torch, but same-runtime speedup present
    s = next(r for r in doc["results"] if r["role"] == "student")
    assert s["speedup_vs_teacher_torch"] is None and s["speedup_vs_teacher_same_runtime"] > 0


def _damage_missing(d: Path) -> None:
    (d / "student_int8.tflite").unlink()


def _damage_sha(d: Path) -> None:
    p = d / "student_fp32.onnx"
    data = bytearray(p.read_bytes())
    data[-1] ^= 0xFF
    p.write_bytes(bytes(data))


def _damage_corrupt_consistent(d: Path) -> None:
    """Garbage artifact whose manifest entry was updated to match: the runtime must reject it."""
    import hashlib

    p = d / "student_int8.tflite"
    p.write_bytes(b"not a flatbuffer" * 10)
    m = read_manifest(d)
    for a in m["artifacts"]:
        if a["path"] == p.name:
            a["bytes"], a["sha256"] = p.stat().st_size, hashlib.sha256(p.read_bytes()).hexdigest()
    write_manifest(d, m)


def _damage_quant(d: Path) -> None:
    m = read_manifest(d)
    for a in m["artifacts"]:
        if a["precision"] == "int8":
            a["inputs"][0]["scale"] *= 2
    write_manifest(d, m)


def _damage_manifest(d: Path) -> None:
    (d / "manifest.json").write_text("{not json")


@pytest.mark.parametrize("damage,needle", [
    (_damage_missing, "missing"),
    (_damage_sha, "sha256"),
    (_damage_corrupt_consistent, "cannot load"),
    (_damage_quant, "manifest mismatch"),
    (_damage_manifest, "corrupt manifest"),
])
def test_bad_export_exits_2_without_json(tiny_export: Path, tmp_path: Path, capsys, damage, needle) -> None:
    d = copy_export(tiny_export, tmp_path / "export")
    damage(d)
    out = tmp_path / "out" / "bench.json"
    rc = main([str(d), "--runtime", "tflite", "--runs", "2", "--warmup", "0", "--threads", "1", "--json", str(out),
               "--no-kid", "--quiet"])
    err = capsys.readouterr().err.strip()
    assert rc == 2
    assert len(err.splitlines()) == 1 and err.startswith("gs-bench: error:") and needle in err, err
    assert not out.exists()
    assert not out.parent.exists() or not any(out.parent.iterdir())


@pytest.mark.parametrize("args,needle", [
    (["--runtime", "tensorrt"], "unknown runtime"),
    (["--target", "usb"], "unknown target"),
    (["--size", "abc"], "bad size"),
    (["--runs", "0"], "must be >= 1"),
])
def test_bad_arguments_exit_2(tiny_export: Path, tmp_path: Path, capsys, args, needle) -> None:
    out = tmp_path / "b.json"
    rc = main([str(tiny_export), "--json", str(out), "--quiet", *args])
    err = capsys.readouterr().err.strip()
    assert rc == 2 and len(err.splitlines()) == 1 and needle in err, err
    assert not out.exists()


def test_missing_export_dir_and_bad_compare_inputs(tmp_path: Path, bench_run: Path, capsys) -> None:
    assert main([str(tmp_path / "nope"), "--quiet"]) == 2
    bad = tmp_path / "bad.json"
    bad.write_text('{"format": "something else"}')
    assert main(["compare", str(bench_run), str(bad)]) == 2
    assert main(["compare", str(bench_run), str(tmp_path / "absent.json")]) == 2
    assert main(["compare", str(bench_run), str(bench_run), "--threshold", "ten"]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 4 and all(line.startswith("gs-bench") for line in err)


def test_help_texts(capsys) -> None:
    assert main(["--help"]) == 0
    assert "--runtime" in capsys.readouterr().out
    assert main(["compare", "--help"]) == 0
    assert "--absolute" in capsys.readouterr().out
