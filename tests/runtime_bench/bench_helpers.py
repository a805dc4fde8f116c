"""Helpers shared by the gs-bench tests (a uniquely named module, so no clash with other test dirs)."""
from __future__ import annotations

import json
import shutil
from pathlib import Path

SIZE = 32  # input size of the tiny export


def copy_export(src: Path, dst: Path) -> Path:
    """A private copy of the export that a test may damage."""
    shutil.copytree(src, dst)
    return dst


def read_manifest(export_dir: Path) -> dict:
    return json.loads((export_dir / "manifest.json").read_text())


def write_manifest(export_dir: Path, manifest: dict) -> None:
    (export_dir / "manifest.json").write_text(json.dumps(manifest))
