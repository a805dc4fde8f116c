"""Fixtures for the gs-bench tests: a tiny real export (built once per session) and one bench run."""
from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

HERE = Path(__file__).resolve().parent
REPO = HERE.parents[1]
for p in (REPO, HERE):  # the package under test, and bench_helpers (whatever pytest's import mode)
    if str(p) not in sys.path:
        sys.path.insert(0, str(p))

from bench_helpers import SIZE  # noqa: E402


@pytest.fixture(scope="session")
def tiny_export(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """EXPORT_DIR with TorchScript/ONNX/TFLite (fp32 + int8) teacher and student and a manifest."""
    out = tmp_path_factory.mktemp("export")
    env = dict(os.environ, OMP_NUM_THREADS="1", TF_NUM_INTRAOP_THREADS="1", TF_NUM_INTEROP_THREADS="1")
    proc = subprocess.run([sys.executable, str(HERE / "tiny_export.py"), str(out), "--size", str(SIZE)],
                          capture_output=True, text=True, env=env, timeout=300)
    assert proc.returncode == 0, proc.stderr[-3000:]
    return out


@pytest.fixture(scope="session")
def bench_run(tiny_export: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """One real local bench run of the tiny export (all runtimes); returns the JSON path."""
    from runtime_bench.cli import main

    out = tmp_path_factory.mktemp("bench") / "bench.json"
    rc = main([str(tiny_export), "--threads", "1", "--warmup", "3", "--runs", "100", "--json", str(out),
               "--no-kid", "--quiet"])
    assert rc == 0
    return out
