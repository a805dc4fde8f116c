"""The app's Preprocessing.kt compiled with kotlinc, byte-compared with the Python twin.

Marked `android`: needs kotlinc (Debian package `kotlin`); skipped with the reason when absent.
"""
from __future__ import annotations

import json
import shutil
import subprocess
from pathlib import Path

import numpy as np
import pytest

from export import android_assets as aa

pytestmark = pytest.mark.android
HERE = Path(__file__).resolve().parent
SRC_W, SRC_H, DST_W, DST_H = 400, 512, 72, 40  # portrait photo into a landscape model: crops rows
CASES = {  # name: TensorSpec dtype, scale, zero point
    "int8": ("int8", float(np.float32(2 / 255)), 0),
    "int8_ties": ("int8", 2 / 255, 0),  # x / scale lands on .5 up to rounding noise
    "int8_zp": ("int8", float(np.float32(0.0078125)), -3),
    "uint8": ("uint8", float(np.float32(2 / 255)), 128),
    "float32": ("float32", None, None),
}


@pytest.fixture(scope="module")
def harness_jar(tmp_path_factory, kotlin_src) -> Path:
    if shutil.which("kotlinc") is None or shutil.which("java") is None:
        pytest.skip("kotlinc/java not installed (apt-get install kotlin default-jdk-headless)")
    jar = tmp_path_factory.mktemp("kotlin") / "harness.jar"
    sources = [kotlin_src / "Preprocessing.kt", kotlin_src / "Stats.kt", HERE / "PreprocessingHarness.kt"]
    proc = subprocess.run(["kotlinc", "-include-runtime", "-d", str(jar), *map(str, sources)],
                          capture_output=True, text=True, timeout=600)
    assert proc.returncode == 0, proc.stderr
    return jar


@pytest.fixture(scope="module")
def kotlin_run(harness_jar, tmp_path_factory, photo) -> tuple[Path, np.ndarray, dict]:
    """Run the harness once on the photo; returns (output dir, source image, output tensors)."""
    out = tmp_path_factory.mktemp("kotlin_out")
    src = np.ascontiguousarray(photo[:SRC_H, :SRC_W])
    (out / "in.rgb").write_bytes(src.tobytes())
    rng = np.random.default_rng(0)
    tensors = {}
    for name, (dtype, _, _) in CASES.items():
        shape = (1, DST_H, DST_W, 3)
        t = (rng.uniform(-1.2, 1.2, shape).astype("<f4") if dtype == "float32"
             else rng.integers(0, 256, shape, dtype=np.uint8).view(aa.NUMPY_DTYPES[dtype]))
        tensors[name] = t
        (out / f"{name}.out.bin").write_bytes(t.tobytes())
    cases = [f"{n},{d},{s if s is not None else 'null'},{z if z is not None else 'null'}"
             for n, (d, s, z) in CASES.items()]
    cmd = ["java", "-cp", str(harness_jar), "com.gsmobile.demo.PreprocessingHarnessKt", str(out / "in.rgb"),
           str(SRC_W), str(SRC_H), str(DST_W), str(DST_H), str(out), *cases]
    proc = subprocess.run(cmd, capture_output=True, text=True, timeout=300)
    assert proc.returncode == 0, proc.stderr
    return out, src, tensors


def read_rgb(path: Path) -> np.ndarray:
    return np.frombuffer(path.read_bytes(), np.uint8).reshape(DST_H, DST_W, 3)


def test_resize_is_bit_identical(kotlin_run):
    out, src, _ = kotlin_run
    assert np.array_equal(read_rgb(out / "resized.rgb"), aa.center_crop_resize(src, DST_H, DST_W))


@pytest.mark.parametrize("name", list(CASES))
def test_encode_and_decode_are_bit_identical(kotlin_run, name):
    out, src, tensors = kotlin_run
    dtype, scale, zp = CASES[name]
    spec = aa.TensorSpec((1, DST_H, DST_W, 3), dtype, scale, zp)
    resized = aa.center_crop_resize(src, DST_H, DST_W)
    assert (out / f"{name}.encoded.bin").read_bytes() == aa.encode(resized, spec).astype(
        "<f4" if dtype == "float32" else spec.dtype).tobytes()
    assert np.array_equal(read_rgb(out / f"{name}.decoded.rgb"), aa.decode(tensors[name], spec))


def test_benchmark_json_has_the_agreed_keys(kotlin_run):
    doc = json.loads((kotlin_run[0] / "bench.json").read_text())
    assert set(doc) == {"model", "runs", "threads", "init_ms", "first_ms", "p50_ms", "p90_ms", "mean_ms"}
    runs = np.array([5.0, 1.0, 3.0, 2.0, 4.0, 10.0, 7.5])
    assert doc["model"] == 'model "q"' and doc["runs"] == 7 and doc["threads"] == 2
    assert doc["init_ms"] == 1.5 and doc["first_ms"] == 3.25
    assert doc["p50_ms"] == pytest.approx(np.percentile(runs, 50), abs=1e-3)
    assert doc["p90_ms"] == pytest.approx(np.percentile(runs, 90), abs=1e-3)
    assert doc["mean_ms"] == pytest.approx(runs.mean(), abs=1e-3)
