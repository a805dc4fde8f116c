"""Targets: benchmark_model parsing, a fake adb, a fake ssh/scp that run locally, qemu without rootfs."""
from __future__ import annotations

import json
import os
import stat
import sys
from pathlib import Path

import pytest

from runtime_bench.cli import main
from runtime_bench.errors import BenchError
from runtime_bench.targets import parse_app_result, parse_benchmark_model

NEW_LOG = """INFO: Initialized session in 5.579ms.
INFO: Running benchmark for at least 1 iterations and at least 0.5 seconds but terminate if exceeding 150 seconds.
INFO: count=1 curr=1357602 p5=1357602 median=1357602 p95=1357602

INFO: Running benchmark for at least 50 iterations and at least 1 seconds but terminate if exceeding 150 seconds.
INFO: count=50 first=1249964 curr=1240143 min=1238588 max=1252566 avg=1.24027e+06 std=2565 p5=1238753 median=1239807 p95=1247415

INFO: Inference timings in us: Init: 5579, First inference: 1357602, Warmup (avg): 1.3576e+06, Inference (avg): 1.24027e+06
INFO: Memory footprint delta from the start of the tool (MB): init=6.36328 overall=109.832
"""
OLD_LOG = """count=50 first=249042 curr=250889 min=247067 max=254474 avg=249684 std=1442
Inference timings in us: Init: 16242, First inference: 360262, Warmup (avg): 304586, Inference (avg): 249684
Peak memory footprint (MB): init=4.92969 overall=138.809
"""


def test_parse_benchmark_model_with_percentiles() -> None:
    r = parse_benchmark_model(NEW_LOG)
    lat = r["latency_ms"]
    assert lat["n"] == 50  # the measured runs, not the warm-up line
    assert lat["mean"] == pytest.approx(1240.27) and lat["p50"] == pytest.approx(1239.807)
    assert lat["min"] == pytest.approx(1238.588) and lat["p95"] == pytest.approx(1247.415)
    assert lat["std"] == pytest.approx(2.565) and not lat["p50_is_mean"]
    assert r["init_ms"] == pytest.approx(5.579) and r["first_ms"] == pytest.approx(1357.602)
    assert r["peak_rss_mb"] == pytest.approx(109.832)


def test_parse_benchmark_model_old_format_and_garbage() -> None:
    r = parse_benchmark_model(OLD_LOG)
    assert r["latency_ms"]["p50"] == pytest.approx(249.684) and r["latency_ms"]["p50_is_mean"]
    assert r["peak_rss_mb"] == pytest.approx(138.809)
    with pytest.raises(BenchError, match="could not parse"):
        parse_benchmark_model("ERROR: Could not open '/data/local/tmp/x.tflite'.\n")


def test_parse_app_result() -> None:
    r = parse_app_result('{"model": "student_int8.tflite", "runs": 20, "threads": 4, "init_ms": 30.5, '
                         '"first_ms": 12.0, "p50_ms": 8.0, "p90_ms": 9.0, "mean_ms": 8.2}')
    assert r["latency_ms"]["p50"] == 8.0 and r["latency_ms"]["p90"] == 9.0 and r["threads"] == 4
    with pytest.raises(BenchError):
        parse_app_result('{"model": "x"}')


def _script(path: Path, body: str) -> None:
    path.write_text(f"#!{sys.executable}\n" + body)
    path.chmod(path.stat().st_mode | stat.S_IEXEC)


FAKE_ADB = r'''
import json, os, shutil, sys
from pathlib import Path
d = Path(os.environ["FAKE_DIR"])
args = sys.argv[1:]
with open(d / "adb.log", "a") as f:
    f.write(json.dumps(args) + "\n")
if args[:1] == ["-s"]:
    args = args[2:]
env = os.environ.get
if args == ["get-state"]:
    if env("FAKE_ADB_STATE", "device") != "device":
        sys.exit("error: no devices/emulators found")
    print("device"); sys.exit(0)
if args[0] == "push":
    (d / "pushed").mkdir(exist_ok=True)
    shutil.copy(args[1], d / "pushed" / Path(args[2]).name)
    print("1 file pushed"); sys.exit(0)
if args[0] == "shell":
    cmd = " ".join(args[1:])
    if args[1] in ("mkdir", "chmod", "rm"):
        sys.exit(0)
    if "test -x" in cmd:
        sys.exit(0 if env("FAKE_ADB_BINARY") == "1" and print("yes") is None else 1)
    if args[1:3] == ["pm", "path"]:
        print("package:/data/app/com.gsmobile.demo/base.apk" if env("FAKE_ADB_APP") == "1" else "")
        sys.exit(0)
    if args[1].endswith("benchmark_model"):
        graph = next(a for a in args if a.startswith("--graph="))
        us = 20000 if "teacher" in graph else 2000
        print("INFO: count=3 first=%d curr=%d min=%d max=%d avg=%d std=50 p5=%d median=%d p95=%d" % ((us,) * 8))
        print("INFO: count=30 first=%d curr=%d min=%d max=%d avg=%d std=100 p5=%d median=%d p95=%d"
              % (us, us, us - 100, us + 300, us + 10, us - 50, us, us + 200))
        print("INFO: Inference timings in us: Init: 4000, First inference: %d, Warmup (avg): %d, Inference (avg): %d"
              % (us * 2, us, us + 10))
        print("INFO: Overall peak memory footprint (MB) via periodic monitoring: 42.5")
        sys.exit(0)
    if args[1:3] == ["am", "start"]:
        (d / "app_started").write_text(cmd)
        print("Starting: Intent { cmp=com.gsmobile.demo/.MainActivity }"); sys.exit(0)
    if args[1] == "cat":
        if (d / "app_started").exists():
            print(json.dumps({"model": "student_int8.tflite", "runs": 7, "threads": 2, "init_ms": 31.0,
                              "first_ms": 9.5, "p50_ms": 4.0, "p90_ms": 4.4, "mean_ms": 4.1}))
            sys.exit(0)
        sys.exit("cat: No such file or directory")
sys.exit("fake adb: unexpected " + " ".join(args))
'''


@pytest.fixture()
def fake_bin(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    d = tmp_path / "fakebin"
    d.mkdir()
    monkeypatch.setenv("PATH", f"{d}{os.pathsep}{os.environ['PATH']}")
    monkeypatch.setenv("FAKE_DIR", str(tmp_path))
    return d


def _adb_log(tmp_path: Path) -> list[list[str]]:
    return [json.loads(line) for line in (tmp_path / "adb.log").read_text().splitlines()]


def _bench(export: Path, out: Path, *extra: str) -> int:
    return main([str(export), "--threads", "2", "--warmup", "1", "--runs", "7", "--json", str(out),
                 "--no-kid", "--quiet", *extra])


def test_adb_benchmark_model_on_device(tiny_export: Path, tmp_path: Path, fake_bin: Path, monkeypatch) -> None:
    _script(fake_bin / "adb", FAKE_ADB)
    monkeypatch.setenv("FAKE_ADB_BINARY", "1")
    out = tmp_path / "adb.json"
    assert _bench(tiny_export, out, "--target", "adb:SER123") == 0
    doc = json.loads(out.read_text())
    assert doc["target"] == "adb:SER123"
    res = {r["name"]: r for r in doc["results"]}
    assert set(res) == {"teacher_fp32_tflite", "student_fp32_tflite", "student_int8_tflite"}
    s = res["student_int8_tflite"]
    assert s["latency_ms"]["p50"] == pytest.approx(2.0) and s["latency_ms"]["n"] == 30
    assert s["init_ms"] == pytest.approx(4.0) and s["first_ms"] == pytest.approx(4.0)
    assert s["peak_rss_mb"] == pytest.approx(42.5)
    assert s["speedup_vs_teacher_same_runtime"] == pytest.approx(10.0)
    assert s["ratio_method"] == "separate processes" and "interleaved" not in s
    assert doc["interleaved"] == {"ok": False, "skipped": "interleaved rounds run on the local target only, "
                                                          "not on adb:SER123"}
    assert s["quality"]["reason"] == "outputs stay on the target"
    assert {x["runtime"] for x in doc["skipped"]} == {"onnxruntime", "torch"}
    log = _adb_log(tmp_path)
    assert all(call[:2] == ["-s", "SER123"] for call in log)
    runs = [c for c in log if any(a.startswith("--graph=") for a in c)]
    assert len(runs) == 3 and all("--num_threads=2" in c and "--num_runs=7" in c and "--use_xnnpack=true" in c
                                  for c in runs)
    assert sorted(p.name for p in (tmp_path / "pushed").iterdir()) == [
        "student_fp32.tflite", "student_int8.tflite", "teacher_fp32.tflite"]


def test_adb_pushes_given_binary(tiny_export: Path, tmp_path: Path, fake_bin: Path) -> None:
    _script(fake_bin / "adb", FAKE_ADB)
    binary = tmp_path / "benchmark_model"
    binary.write_bytes(b"\x7fELF fake")
    assert _bench(tiny_export, tmp_path / "b.json", "--target", "adb", "--runtime", "tflite",
                  "--benchmark-binary", str(binary)) == 0
    log = _adb_log(tmp_path)
    assert ["shell", "chmod", "755", "/data/local/tmp/gs-bench/benchmark_model"] in log
    assert (tmp_path / "pushed" / "benchmark_model").read_bytes() == b"\x7fELF fake"


def test_adb_falls_back_to_demo_app(tiny_export: Path, tmp_path: Path, fake_bin: Path, monkeypatch) -> None:
    _script(fake_bin / "adb", FAKE_ADB)
    monkeypatch.setenv("FAKE_ADB_APP", "1")
    out = tmp_path / "app.json"
    assert _bench(tiny_export, out, "--target", "adb", "--runtime", "tflite") == 0
    doc = json.loads(out.read_text())
    assert [r["name"] for r in doc["results"]] == ["student_int8_tflite"]
    r = doc["results"][0]
    assert r["latency_ms"]["p50"] == 4.0 and r["init_ms"] == 31.0 and r["runtime_info"]["threads"] == 2
    started = (tmp_path / "app_started").read_text()
    assert "-n com.gsmobile.demo/.MainActivity --es mode benchmark --ei runs 7 --ei threads 2" in started
    assert {s["name"] for s in doc["skipped"]} == {"teacher_fp32_tflite", "student_fp32_tflite"}


@pytest.mark.parametrize("env,needle", [({"FAKE_ADB_STATE": "offline"}, "no device reachable"),
                                        ({}, "is not installed")])
def test_adb_errors_exit_2(tiny_export: Path, tmp_path: Path, fake_bin: Path, monkeypatch, capsys,
                           env, needle) -> None:
    _script(fake_bin / "adb", FAKE_ADB)
    for k, v in env.items():
        monkeypatch.setenv(k, v)
    out = tmp_path / "x.json"
    assert _bench(tiny_export, out, "--target", "adb", "--runtime", "tflite") == 2
    err = capsys.readouterr().err.strip()
    assert len(err.splitlines()) == 1 and needle in err, err
    assert not out.exists()


FAKE_SSH = r'''
import json, os, subprocess, sys
args = sys.argv[1:]
with open(os.path.join(os.environ["FAKE_DIR"], "ssh.log"), "a") as f:
    f.write(json.dumps(args) + "\n")
if os.environ.get("FAKE_SSH_FAIL"):
    sys.exit("ssh: connect to host board port 22: Connection refused")
while args[0].startswith("-"):
    args = args[2:] if args[0] in ("-o", "-p") else args[1:]
host, remote = args[0], " ".join(args[1:])
sys.exit(subprocess.run(["bash", "-c", remote]).returncode)
'''
FAKE_SCP = r'''
import os, shutil, sys
args = sys.argv[1:]
paths = []
i = 0
while i < len(args):
    if args[i] in ("-o", "-P"):
        i += 2
        continue
    if not args[i].startswith("-"):
        paths.append(args[i].split(":", 1)[1] if ":" in args[i] else args[i])
    i += 1
*srcs, dst = paths
for s in srcs:
    target = os.path.join(dst, os.path.basename(s.rstrip("/"))) if os.path.isdir(dst) else dst
    (shutil.copytree if os.path.isdir(s) else shutil.copy)(s, target)
'''


def test_ssh_target_runs_remote_runner(tiny_export: Path, tmp_path: Path, fake_bin: Path) -> None:
    _script(fake_bin / "ssh", FAKE_SSH)
    _script(fake_bin / "scp", FAKE_SCP)
    board_python = fake_bin / "python3"  # the "board's" python3 (numpy + ai-edge-litert)
    board_python.write_text(f'#!/bin/sh\nexec "{sys.executable}" "$@"\n')
    board_python.chmod(0o755)
    out = tmp_path / "ssh.json"
    assert _bench(tiny_export, out, "--target", "ssh://pi@board:2222", "--runtime", "tflite") == 0
    doc = json.loads(out.read_text())
    assert doc["target"] == "ssh://pi@board:2222"
    res = {r["name"]: r for r in doc["results"]}
    assert len(res) == 3 and res["student_int8_tflite"]["latency_ms"]["n"] == 7
    assert res["teacher_fp32_tflite"]["quality"]["is_reference"]
    assert res["student_int8_tflite"]["quality"]["psnr_db"] > 5  # outputs came back over scp
    assert res["student_int8_tflite"]["host"]["cpu_model"]  # recorded by the board's runner
    calls = [json.loads(line) for line in (tmp_path / "ssh.log").read_text().splitlines()]
    assert all("-p" in c and "2222" in c and "pi@board" in c for c in calls)
    assert any("runtime_bench.remote_runner" in c[-1] for c in calls)
    assert calls[-1][-1].startswith("rm -rf /tmp/gs-bench.")  # cleaned up


def test_ssh_unreachable_exits_2(tiny_export: Path, tmp_path: Path, fake_bin: Path, monkeypatch, capsys) -> None:
    _script(fake_bin / "ssh", FAKE_SSH)
    monkeypatch.setenv("FAKE_SSH_FAIL", "1")
    out = tmp_path / "x.json"
    assert _bench(tiny_export, out, "--target", "ssh://pi@board") == 2
    err = capsys.readouterr().err.strip()
    assert len(err.splitlines()) == 1 and "not reachable" in err and "Connection refused" in err, err
    assert not out.exists()


def test_qemu_without_rootfs_exits_2(tiny_export: Path, tmp_path: Path, capsys) -> None:
    out = tmp_path / "x.json"
    assert _bench(tiny_export, out, "--target", "qemu-aarch64", "--qemu-rootfs", str(tmp_path / "none")) == 2
    err = capsys.readouterr().err.strip()
    assert len(err.splitlines()) == 1 and "no aarch64 sysroot" in err and "setup.sh" in err, err
    assert not out.exists()


def test_qemu_correctness_tolerance() -> None:
    import numpy as np

    from runtime_bench.bench import correctness

    x86 = np.zeros((1, 3, 4, 4), np.float32)
    int8 = {"outputs": [{"scale": 1 / 128, "zero_point": 0}]}
    assert correctness(x86, x86 + 1 / 128, int8)["pass"]  # one quantum apart: allowed
    assert not correctness(x86, x86 + 2 / 128, int8)["pass"]
    fp32 = {"outputs": [{"scale": None, "zero_point": None}]}
    assert correctness(x86, x86 + 5e-4, fp32)["pass"] and not correctness(x86, x86 + 5e-3, fp32)["pass"]
