"""Where artifacts run: this machine, an ARM board over ssh, an Android phone over adb, qemu-aarch64.

Each target measures one artifact at a time and returns the worker's result dict (see
``remote_runner``) plus the float NCHW outputs (None where they stay on the device).
"""
from __future__ import annotations

import json
import os
import re
import shlex
import shutil
import subprocess
import sys
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Sequence
from urllib.parse import urlparse

import numpy as np

from . import arm
from .errors import BenchError
from .manifest import Artifact
from .runners import RUNTIMES

PACKAGE_DIR = Path(__file__).resolve().parent
#: the files a remote board needs to run ``python3 -m runtime_bench.remote_runner``.
REMOTE_FILES = ("__init__.py", "errors.py", "runners.py", "stats.py", "remote_runner.py")


class Skip(Exception):
    """This target cannot run this artifact; the reason goes into the JSON's ``skipped`` list."""


@dataclass(frozen=True)
class Settings:
    """Measurement settings shared by every target."""

    threads: int = 2
    warmup: int = 5
    runs: int = 50
    size: tuple[int, int] | None = None
    timeout_s: float = 900.0
    rounds: int = 0  # interleaved student/teacher rounds in one process (runtime_bench.paired); 0: none


def worker_args(artifact_json: str, model: str, inputs: str, out_dir: str, s: Settings) -> list[str]:
    """Arguments of ``python -m runtime_bench.remote_runner`` for one artifact."""
    args = ["-m", "runtime_bench.remote_runner", "--artifact-json", artifact_json, "--model", model,
            "--inputs", inputs, "--out-dir", out_dir, "--threads", str(s.threads),
            "--warmup", str(s.warmup), "--runs", str(s.runs)]
    if s.size:
        args += ["--size", str(s.size[0]), str(s.size[1])]
    return args


def read_worker_result(out_dir: Path, name: str, proc: subprocess.CompletedProcess[str] | None) -> dict[str, Any]:
    """Load result.json written by a worker; BenchError with one line on failure."""
    try:
        result = json.loads((out_dir / "result.json").read_text())
    except (OSError, json.JSONDecodeError):
        tail = (proc.stderr or "").strip().splitlines()[-1:] if proc is not None else []
        raise BenchError(f"worker for {name} crashed (exit {proc.returncode if proc else '?'})"
                         f"{': ' + tail[0] if tail else ''}") from None
    if not result.get("ok"):
        raise BenchError(f"{name}: {result.get('error', 'unknown worker error')}")
    return result


def read_worker_output(out_dir: Path, name: str, proc: subprocess.CompletedProcess[str] | None) -> tuple[dict[str, Any], np.ndarray]:
    """Load result.json and outputs.npy written by a per-artifact worker."""
    return read_worker_result(out_dir, name, proc), np.load(out_dir / "outputs.npy")


def _run(cmd: Sequence[str], timeout: float, what: str, **kw: Any) -> subprocess.CompletedProcess[str]:
    """subprocess.run with text output; a missing program or a timeout becomes a BenchError."""
    try:
        streams = {} if {"stdout", "stderr"} & set(kw) else {"capture_output": True}
        return subprocess.run(list(cmd), text=True, timeout=timeout, **streams, **kw)
    except FileNotFoundError as exc:
        raise BenchError(f"{what}: program {cmd[0]!r} not found on PATH") from exc
    except subprocess.TimeoutExpired as exc:
        raise BenchError(f"{what}: timed out after {timeout:.0f} s") from exc


def _last_line(proc: subprocess.CompletedProcess[str]) -> str:
    lines = ((proc.stderr or "") + "\n" + (proc.stdout or "")).strip().splitlines()
    return lines[-1].strip() if lines else f"exit code {proc.returncode}"


class Target:
    """Base target: ``prepare`` once, ``measure`` per artifact, ``close`` at the end."""

    name = "local"
    timings_meaningful = True
    runtimes: tuple[str, ...] = RUNTIMES

    def prepare(self, work: Path) -> None:
        """Check the target is reachable and stage what every artifact needs."""

    def measure(self, art: Artifact, inputs: Path, work: Path, s: Settings) -> tuple[dict[str, Any], np.ndarray | None]:
        raise NotImplementedError

    def measure_paired(self, spec: dict[str, Any], inputs: Path, work: Path, s: Settings,
                       progress: bool = False) -> dict[str, Any]:
        """Interleaved rounds of several artifacts in one process (runtime_bench.paired)."""
        raise Skip(f"interleaved rounds run on the local target only, not on {self.name}")

    def close(self) -> None:
        """Release remote resources."""

    def check_runtime(self, art: Artifact) -> None:
        if art.runtime not in self.runtimes:
            raise Skip(f"target {self.name} does not run {art.runtime}")

    @staticmethod
    def write_artifact_json(art: Artifact, work: Path) -> Path:
        p = work / f"{art.name}.artifact.json"
        p.write_text(json.dumps(art.entry))
        return p


class LocalTarget(Target):
    """A fresh Python subprocess per artifact on this machine."""

    @staticmethod
    def _python(args: Sequence[str], s: Settings, what: str, stderr_to_terminal: bool = False) -> subprocess.CompletedProcess[str]:
        """Run ``python ARGS`` with this package importable (its stderr shown, e.g. a progress bar, if asked)."""
        env = dict(os.environ, PYTHONPATH=os.pathsep.join(
            [str(PACKAGE_DIR.parent), *filter(None, [os.environ.get("PYTHONPATH")])]))
        if stderr_to_terminal:
            return _run([sys.executable, *args], s.timeout_s, what, env=env, stdout=subprocess.PIPE)
        return _run([sys.executable, *args], s.timeout_s, what, env=env)

    def measure(self, art: Artifact, inputs: Path, work: Path, s: Settings) -> tuple[dict[str, Any], np.ndarray | None]:
        out = work / f"{art.name}.out"
        args = worker_args(str(self.write_artifact_json(art, work)), str(art.path), str(inputs), str(out), s)
        return read_worker_output(out, art.name, self._python(args, s, f"measuring {art.name}"))

    def measure_paired(self, spec: dict[str, Any], inputs: Path, work: Path, s: Settings,
                       progress: bool = False) -> dict[str, Any]:
        out = work / "paired.out"
        spec_path = work / "paired.spec.json"
        spec_path.write_text(json.dumps(spec))
        args = ["-m", "runtime_bench.paired", "--spec", str(spec_path), "--inputs", str(inputs),
                "--out-dir", str(out), "--threads", str(s.threads), "--warmup", str(s.warmup),
                "--rounds", str(s.rounds)]
        if s.size:
            args += ["--size", str(s.size[0]), str(s.size[1])]
        if progress:
            args.append("--progress")
        proc = self._python(args, s, "interleaved rounds", stderr_to_terminal=progress)
        return read_worker_result(out, "interleaved rounds", proc)


def stage_package(dest: Path) -> Path:
    """Copy the minimal runtime_bench package (REMOTE_FILES) into ``dest/runtime_bench``, and the
    ``gs_contract`` package its runners import into ``dest/gs_contract``; returns ``dest/runtime_bench``."""
    pkg = dest / "runtime_bench"
    pkg.mkdir(parents=True, exist_ok=True)
    for f in REMOTE_FILES:
        shutil.copy2(PACKAGE_DIR / f, pkg / f)
    (dest / "gs_contract").mkdir(exist_ok=True)
    shutil.copy2(PACKAGE_DIR.parent / "gs_contract" / "__init__.py", dest / "gs_contract" / "__init__.py")
    return pkg


class SshTarget(Target):
    """``ssh://user@host[:port]``: copy the runner and artifacts with scp, run with the board's python3."""

    runtimes = ("tflite", "onnxruntime")

    def __init__(self, url: str, timeout_s: float = 60.0) -> None:
        u = urlparse(url)
        if u.scheme != "ssh" or not u.hostname:
            raise BenchError(f"bad ssh target {url!r} (expected ssh://user@host[:port])")
        self.name = url
        self.dest = f"{u.username}@{u.hostname}" if u.username else u.hostname
        self.port = u.port
        self.timeout_s = timeout_s
        self.remote_dir: str | None = None

    def _ssh_cmd(self, remote: str) -> list[str]:
        port = ["-p", str(self.port)] if self.port else []
        return ["ssh", "-o", "BatchMode=yes", "-o", "ConnectTimeout=10", *port, self.dest, remote]

    def _scp(self, sources: Sequence[str], dest: str, what: str) -> None:
        port = ["-P", str(self.port)] if self.port else []
        proc = _run(["scp", "-q", "-r", "-o", "BatchMode=yes", *port, *sources, dest], self.timeout_s, what)
        if proc.returncode != 0:
            raise BenchError(f"{what} failed: {_last_line(proc)}")

    def _ssh(self, remote: str, what: str, timeout: float | None = None) -> subprocess.CompletedProcess[str]:
        proc = _run(self._ssh_cmd(remote), timeout or self.timeout_s, what)
        if proc.returncode != 0:
            raise BenchError(f"{what} failed: {_last_line(proc)}")
        return proc

    def prepare(self, work: Path) -> None:
        self._ssh("python3 -c 'import numpy'", f"ssh target {self.dest} not reachable or has no python3+numpy;"
                                               f" check")
        self.remote_dir = self._ssh("mktemp -d /tmp/gs-bench.XXXXXX", "creating a remote directory").stdout.strip()
        staged = stage_package(work / "remote")
        self._scp([str(staged), str(staged.parent / "gs_contract")], f"{self.dest}:{self.remote_dir}/",
                  "copying runtime_bench to the board")
        self._inputs_sent = False

    def measure(self, art: Artifact, inputs: Path, work: Path, s: Settings) -> tuple[dict[str, Any], np.ndarray | None]:
        self.check_runtime(art)
        rd = self.remote_dir
        assert rd is not None, "prepare() first"
        sources = [str(art.path), str(self.write_artifact_json(art, work))]
        if not self._inputs_sent:
            sources.append(str(inputs))
        self._scp(sources, f"{self.dest}:{rd}/", f"copying {art.name} to the board")
        self._inputs_sent = True
        out_name = f"{art.name}.out"
        args = worker_args(f"{art.name}.artifact.json", art.path.name, inputs.name, out_name, s)
        remote = f"cd {shlex.quote(rd)} && python3 " + " ".join(shlex.quote(a) for a in args)
        proc = _run(self._ssh_cmd(remote), s.timeout_s, f"measuring {art.name} on {self.dest}")
        local_out = work / out_name
        shutil.rmtree(local_out, ignore_errors=True)
        self._scp([f"{self.dest}:{rd}/{out_name}"], str(work), f"fetching results of {art.name}")
        return read_worker_output(local_out, art.name, proc)

    def close(self) -> None:
        if self.remote_dir:
            _run(self._ssh_cmd(f"rm -rf {shlex.quote(self.remote_dir)}"), self.timeout_s, "cleaning up")
            self.remote_dir = None


# --- adb ------------------------------------------------------------------------------------------
DEVICE_DIR = "/data/local/tmp/gs-bench"
DEVICE_BINARY = "/data/local/tmp/benchmark_model"
APP_PACKAGE = "com.gsmobile.demo"
APP_ACTIVITY = f"{APP_PACKAGE}/.MainActivity"
APP_RESULT = f"/sdcard/Android/data/{APP_PACKAGE}/files/benchmark.json"

_NUM = r"[-+]?\d+(?:\.\d+)?(?:[eE][-+]?\d+)?"


def parse_benchmark_model(text: str) -> dict[str, Any]:
    """Parse the upstream TFLite ``benchmark_model`` log into a worker-style result (ms, MB).

    Uses the last ``count=... first=... avg=... std=...`` line (the measured runs, not warm-up),
    the ``Inference timings in us: Init: ..., First inference: ...`` summary and the memory line.
    """
    stats_line = None
    for line in text.splitlines():
        if re.search(r"\bcount=\d+", line) and "avg=" in line:
            stats_line = line
    m_sum = re.search(rf"Inference timings in us: Init: ({_NUM}), First inference: ({_NUM}), "
                      rf"Warmup \(avg\): ({_NUM}), Inference \(avg\): ({_NUM})", text)
    if stats_line is None or m_sum is None:
        lines = text.strip().splitlines()
        raise BenchError("could not parse benchmark_model output"
                         f"{': ' + lines[-1].strip() if lines else ' (empty)'}")
    kv = {k: float(v) for k, v in re.findall(rf"(\w+)=({_NUM})", stats_line)}
    us = 1e-3
    n = int(kv.get("count", 0))
    mean = kv["avg"] * us
    std = kv.get("std", 0.0) * us
    p50 = kv["median"] * us if "median" in kv else None
    centre = p50 if p50 else mean
    lat = {"n": n, "mean": mean, "std": std, "min": kv.get("min", 0) * us if "min" in kv else None,
           "max": kv["max"] * us if "max" in kv else None, "p50": p50 if p50 is not None else mean,
           "p50_is_mean": p50 is None, "p90": None, "p99": None,
           "p5": kv["p5"] * us if "p5" in kv else None, "p95": kv["p95"] * us if "p95" in kv else None,
           "noise": 1.96 * 1.2533 * std / max(n, 1) ** 0.5 / centre if centre else 1.0}
    mem = None
    for pat in (rf"Overall peak memory footprint \(MB\) via periodic monitoring: ({_NUM})",
                rf"(?:Peak memory footprint|Memory footprint delta from the start of the tool) \(MB\): "
                rf"init={_NUM} overall=({_NUM})"):
        m = re.search(pat, text)
        if m:
            mem = float(m.group(1))
            break
    return {"ok": True, "init_ms": float(m_sum.group(1)) * us, "first_ms": float(m_sum.group(2)) * us,
            "latency_ms": lat, "peak_rss_mb": mem, "rss_before_load_mb": None}


def parse_app_result(text: str) -> dict[str, Any]:
    """Parse the demo app's benchmark.json ({"model","runs","threads","init_ms","first_ms",
    "p50_ms","p90_ms","mean_ms"}) into a worker-style result."""
    try:
        d = json.loads(text)
        lat = {"n": int(d["runs"]), "mean": float(d["mean_ms"]), "std": None, "min": None, "max": None,
               "p50": float(d["p50_ms"]), "p90": float(d["p90_ms"]), "p99": None,
               "noise": max(0.0, float(d["p90_ms"]) / float(d["p50_ms"]) - 1.0) / max(int(d["runs"]), 1) ** 0.5}
        return {"ok": True, "model": str(d["model"]), "threads": int(d["threads"]),
                "init_ms": float(d["init_ms"]), "first_ms": float(d["first_ms"]), "latency_ms": lat,
                "peak_rss_mb": None, "rss_before_load_mb": None}
    except (json.JSONDecodeError, KeyError, TypeError, ValueError, ZeroDivisionError) as exc:
        raise BenchError(f"bad benchmark.json from the demo app: {exc}") from exc


class AdbTarget(Target):
    """``adb[:SERIAL]``: .tflite files on an Android phone via ``benchmark_model`` or the demo app."""

    runtimes = ("tflite",)

    def __init__(self, serial: str | None, benchmark_binary: Path | None, timeout_s: float = 120.0,
                 poll_s: float = 1.0) -> None:
        self.serial = serial or None
        self.name = f"adb:{serial}" if serial else "adb"
        self.benchmark_binary = benchmark_binary
        self.timeout_s = timeout_s
        self.poll_s = poll_s
        self.mode: str | None = None
        self._app_result: dict[str, Any] | None = None

    def adb(self, *args: str, what: str = "adb", check: bool = True, timeout: float | None = None) -> subprocess.CompletedProcess[str]:
        cmd = ["adb", *(["-s", self.serial] if self.serial else []), *args]
        proc = _run(cmd, timeout or self.timeout_s, what)
        if check and proc.returncode != 0:
            raise BenchError(f"{what} failed: {_last_line(proc)}")
        return proc

    def prepare(self, work: Path) -> None:
        state = self.adb("get-state", what="adb get-state", check=False)
        if state.returncode != 0 or state.stdout.strip() != "device":
            raise BenchError(f"adb: no device reachable{' with serial ' + self.serial if self.serial else ''}"
                             f" ({_last_line(state)})")
        self.adb("shell", "mkdir", "-p", DEVICE_DIR, what="creating the device directory")
        if self.benchmark_binary is not None:
            if not Path(self.benchmark_binary).is_file():
                raise BenchError(f"benchmark binary not found: {self.benchmark_binary}")
            self.binary = f"{DEVICE_DIR}/benchmark_model"
            self.adb("push", str(self.benchmark_binary), self.binary, what="pushing benchmark_model")
            self.adb("shell", "chmod", "755", self.binary, what="chmod benchmark_model")
            self.mode = "benchmark_model"
        elif self.adb("shell", f"test -x {DEVICE_BINARY} && echo yes", check=False).stdout.strip() == "yes":
            self.binary, self.mode = DEVICE_BINARY, "benchmark_model"
        elif "package:" in self.adb("shell", "pm", "path", APP_PACKAGE, check=False).stdout:
            self.mode = "app"
        else:
            raise BenchError(f"adb: no benchmark_model at {DEVICE_BINARY} and the demo app {APP_PACKAGE} "
                             "is not installed; pass --benchmark-binary PATH (an Android build of "
                             "tensorflow/lite/tools/benchmark:benchmark_model)")

    def measure(self, art: Artifact, inputs: Path, work: Path, s: Settings) -> tuple[dict[str, Any], np.ndarray | None]:
        self.check_runtime(art)
        if self.mode == "app":
            return self._measure_app(art, s), None
        remote = f"{DEVICE_DIR}/{art.path.name}"
        self.adb("push", str(art.path), remote, what=f"pushing {art.name}")
        proc = self.adb("shell", self.binary, f"--graph={remote}", f"--num_threads={s.threads}",
                        f"--warmup_runs={s.warmup}", f"--num_runs={s.runs}", "--use_xnnpack=true",
                        what=f"benchmark_model on {art.name}", timeout=s.timeout_s)
        result = parse_benchmark_model(proc.stdout + "\n" + proc.stderr)
        result["runtime_info"] = {"runtime": "tflite", "tool": "benchmark_model", "threads": s.threads,
                                  "delegate": "XNNPACK (--use_xnnpack=true)", "device": self.name}
        return result, None

    def _measure_app(self, art: Artifact, s: Settings) -> dict[str, Any]:
        if self._app_result is None:
            self.adb("shell", "rm", "-f", APP_RESULT, check=False)
            self.adb("shell", "am", "start", "-n", APP_ACTIVITY, "--es", "mode", "benchmark",
                     "--ei", "runs", str(s.runs), "--ei", "threads", str(s.threads), what="starting the demo app")
            deadline = time.monotonic() + s.timeout_s
            while True:
                proc = self.adb("shell", "cat", APP_RESULT, check=False)
                if proc.returncode == 0 and proc.stdout.strip().startswith("{"):
                    self._app_result = parse_app_result(proc.stdout)
                    break
                if time.monotonic() > deadline:
                    raise BenchError(f"demo app wrote no {APP_RESULT} within {s.timeout_s:.0f} s")
                time.sleep(self.poll_s)
        model = Path(self._app_result["model"]).name
        if model not in (art.path.name, art.name):
            raise Skip(f"the demo app benchmarks only its bundled model {model}")
        result = dict(self._app_result)
        result["runtime_info"] = {"runtime": "tflite", "tool": f"{APP_PACKAGE} benchmark mode",
                                  "threads": result.pop("threads"), "device": self.name}
        return result


def make_target(spec: str, benchmark_binary: Path | None = None, qemu_rootfs: Path | None = None,
                arm_cpu: str = arm.DEFAULT_CORE) -> Target:
    """Target from its command-line form: local, adb[:SERIAL], ssh://user@host[:port], qemu-aarch64."""
    if spec in ("", "local"):
        return LocalTarget()
    if spec == "adb" or spec.startswith("adb:"):
        return AdbTarget(spec[4:] or None, benchmark_binary)
    if spec.startswith("ssh://"):
        return SshTarget(spec)
    if spec == "qemu-aarch64":
        from .qemu_target import QemuTarget

        return QemuTarget(qemu_rootfs, arm_cpu)
    raise BenchError(f"unknown target {spec!r} (local, adb[:SERIAL], ssh://user@host[:port], qemu-aarch64)")
