"""Offline build check: a signed APK from the app's real sources with the real INT8 student inside.

Marked `android` (slow, ~40 s; needs the Debian Android tools and, once, the bullseye
android-23/dx packages: tools/build_offline.sh exits 77 and the test is SKIPPED with the
reason when they cannot be obtained).
"""
from __future__ import annotations

import os
import re
import subprocess
from pathlib import Path

import pytest

from export.android_assets import install_into_app

pytestmark = pytest.mark.android
SKIP_EXIT = 77


def run(*cmd: str, timeout: int = 120) -> str:
    proc = subprocess.run(cmd, capture_output=True, text=True, timeout=timeout)
    assert proc.returncode == 0, f"{' '.join(cmd)} failed:\n{proc.stdout}\n{proc.stderr}"
    return proc.stdout + proc.stderr


@pytest.fixture(scope="module")
def student_export(tmp_path_factory) -> dict:
    """The real default student (committed quick-preset result) exported by gs-export at 256x256."""
    from export.cli import main as export_main
    from pipeline.ci_gate import STUDENT

    out = tmp_path_factory.mktemp("student_export")
    assert export_main([str(STUDENT), "--format", "tflite", "--size", "256", "--out", str(out), "--quiet"]) == 0
    return {"dir": out, "blob": (out / "student_int8.tflite").read_bytes()}


@pytest.fixture(scope="module")
def built_apk(student_export, tmp_path_factory, app_copy_factory) -> tuple[Path, dict]:
    """Install the real student export into a copy of the app and build it offline."""
    app = app_copy_factory(tmp_path_factory.mktemp("app"))
    install_into_app(student_export["dir"], app)
    out = app / "build" / "offline"
    proc = subprocess.run(["bash", str(app / "tools" / "build_offline.sh"), str(app), str(out)],
                          capture_output=True, text=True, timeout=900, env=os.environ.copy())
    if proc.returncode == SKIP_EXIT:
        pytest.skip("offline APK build prerequisites unavailable: " + proc.stderr.strip().splitlines()[-1])
    assert proc.returncode == 0, f"build_offline.sh failed ({proc.returncode}):\n{proc.stdout}\n{proc.stderr}"
    apk = Path(proc.stdout.strip().splitlines()[-1])
    assert apk.is_file()
    return apk, student_export


def test_apk_signature_verifies(built_apk):
    assert "Verified using v2 scheme (APK Signature Scheme v2): true" in run("apksigner", "verify", "-v", str(built_apk[0]))


def test_apk_badging_names_package_and_launchable_activity(built_apk):
    badging = run("aapt", "dump", "badging", str(built_apk[0]))
    assert "package: name='com.gsmobile.demo'" in badging
    assert "launchable-activity: name='com.gsmobile.demo.MainActivity'" in badging


def test_model_is_stored_uncompressed_with_manifest(built_apk):
    apk, export = built_apk
    listing = run("unzip", "-lv", str(apk))
    rows = {line.split()[-1]: line.split() for line in listing.splitlines() if re.search(r"\sassets/", line)}
    model = rows["assets/model.tflite"]
    assert model[1] == "Stored" and int(model[0]) == len(export["blob"])
    assert {"assets/manifest.json", "assets/sample.jpg"} <= set(rows)
    assert "classes.dex" in listing
    dexed = apk.parent / "obj"  # what dx turned into classes.dex (with kotlin-stdlib.jar)
    assert (dexed / "com" / "gsmobile" / "demo" / "MainActivity.class").is_file()
    assert not (dexed / "org" / "tensorflow").exists()  # the compile-only stub is not packaged


def test_fetch_reports_skip_when_bullseye_is_unreachable(tmp_path):
    """Unreachable mirror + empty cache: exit 77 with the reason, nothing half-installed."""
    script = Path(__file__).resolve().parents[2] / "android_demo" / "tools" / "fetch_sdk_bits.sh"
    env = dict(os.environ, GS_DEBIAN_MIRROR="http://127.0.0.1:9/debian")
    proc = subprocess.run(["bash", str(script), str(tmp_path / "cache")], capture_output=True, text=True,
                          timeout=120, env=env)
    assert proc.returncode == SKIP_EXIT, proc.stderr
    assert "SKIP" in proc.stderr and "bullseye" in proc.stderr
    assert not (tmp_path / "cache" / "root").exists()
