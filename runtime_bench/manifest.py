"""Read EXPORT_DIR/manifest.json and check it against the files before anything is measured."""
from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from .errors import BenchError
from .runners import FORMAT_RUNTIME, RUNTIMES
from .stats import sha256_file

MANIFEST_FORMAT = "gs-mobile/export"


@dataclass(frozen=True)
class Artifact:
    """One runnable artifact: its manifest entry, its file and the runtime that runs it."""

    entry: dict[str, Any]
    path: Path
    runtime: str

    @property
    def name(self) -> str:
        return str(self.entry["name"])

    @property
    def role(self) -> str:
        return str(self.entry.get("role", "student"))

    @property
    def precision(self) -> str:
        return str(self.entry.get("precision", "fp32"))


def load_manifest(export_dir: Path) -> dict[str, Any]:
    """Parse manifest.json; BenchError when absent, not JSON or not a gs-mobile export manifest."""
    path = Path(export_dir) / "manifest.json"
    if not Path(export_dir).is_dir():
        raise BenchError(f"export directory not found: {export_dir}")
    try:
        manifest = json.loads(path.read_text())
    except FileNotFoundError as exc:
        raise BenchError(f"no manifest.json in {export_dir}") from exc
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise BenchError(f"corrupt manifest {path}: {exc}") from exc
    if not isinstance(manifest, dict) or manifest.get("format") != MANIFEST_FORMAT:
        raise BenchError(f"{path} is not a {MANIFEST_FORMAT} manifest")
    if not isinstance(manifest.get("artifacts"), list) or not manifest["artifacts"]:
        raise BenchError(f"{path} lists no artifacts")
    return manifest


def verify_artifact(export_dir: Path, entry: dict[str, Any]) -> Path:
    """Check that the artifact file exists and matches the manifest's bytes and sha256."""
    for key in ("name", "path", "format"):
        if key not in entry:
            raise BenchError(f"manifest artifact entry without {key!r}: {entry.get('name', entry)}")
    path = Path(export_dir) / entry["path"]
    if not path.exists():
        raise BenchError(f"artifact {entry['name']} missing: {path}")
    if path.is_dir():  # e.g. .mlpackage: not run here, no single-file hash
        return path
    if "bytes" in entry and entry["bytes"] is not None and path.stat().st_size != int(entry["bytes"]):
        raise BenchError(f"manifest mismatch for {entry['name']}: {path.stat().st_size} bytes on disk, "
                         f"{entry['bytes']} in manifest.json")
    if entry.get("sha256") and sha256_file(path) != entry["sha256"]:
        raise BenchError(f"manifest mismatch for {entry['name']}: sha256 of {path.name} differs from manifest.json")
    return path


def select_artifacts(export_dir: Path, manifest: dict[str, Any], runtime: str) -> tuple[list[Artifact], list[dict[str, str]]]:
    """Verify every artifact and pick those runnable in ``runtime`` ('all' or one of RUNTIMES).

    Returns (runnable artifacts, skipped entries with a reason).
    """
    if runtime != "all" and runtime not in RUNTIMES:
        raise BenchError(f"unknown runtime {runtime!r} (choose from {', '.join(RUNTIMES)}, all)")
    chosen: list[Artifact] = []
    skipped: list[dict[str, str]] = []
    for entry in manifest["artifacts"]:
        path = verify_artifact(export_dir, entry)
        rt = FORMAT_RUNTIME.get(str(entry["format"]))
        if rt is None:
            skipped.append({"name": entry["name"], "reason": f"format {entry['format']} is not runnable here"})
        elif runtime in ("all", rt):
            chosen.append(Artifact(entry=entry, path=path, runtime=rt))
    if not chosen:
        raise BenchError(f"no artifact in {export_dir} runs in runtime {runtime!r}")
    return chosen, skipped
