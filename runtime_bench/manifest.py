"""Read EXPORT_DIR/manifest.json and check it against the files before anything is measured."""
from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from gs_contract import sha256_file

from .errors import BenchError
from .runners import RUNTIMES, artifact_runtime

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


def read_json(path: Path, what: str, redo: str, missing: str) -> Any:
    """Parse a JSON file; BenchError naming the file, what is wrong with it and ``redo`` (what to do)."""
    try:
        return json.loads(Path(path).read_bytes().decode("utf-8"))
    except FileNotFoundError:
        raise BenchError(missing) from None
    except OSError as exc:
        raise BenchError(f"cannot read {path}: {exc.strerror or exc}") from None
    except UnicodeDecodeError as exc:
        raise BenchError(f"corrupt {what} {path}: not UTF-8 text (bad byte at offset {exc.start}); {redo}") from None
    except json.JSONDecodeError as exc:
        raise BenchError(f"corrupt {what} {path}: not valid JSON ({exc.msg} at line {exc.lineno}, "
                         f"column {exc.colno}); {redo}") from None


def load_manifest(export_dir: Path) -> dict[str, Any]:
    """Parse manifest.json; BenchError when absent, unreadable or not a gs-mobile export manifest."""
    path = Path(export_dir) / "manifest.json"
    redo = f"re-run gs-export to rewrite {Path(export_dir)}"
    if not Path(export_dir).is_dir():
        raise BenchError(f"export directory not found: {export_dir}")
    manifest = read_json(path, "manifest", redo, missing=f"no manifest.json in {export_dir}: give the folder "
                         f"gs-export wrote (gs-export RUN_DIR --out {export_dir})")
    if not isinstance(manifest, dict) or manifest.get("format") != MANIFEST_FORMAT:
        raise BenchError(f"{path} is not a {MANIFEST_FORMAT} manifest; {redo}")
    if not isinstance(manifest.get("artifacts"), list) or not manifest["artifacts"]:
        raise BenchError(f"{path} lists no artifacts; {redo}")
    for i, entry in enumerate(manifest["artifacts"]):
        if not isinstance(entry, dict):
            raise BenchError(f"corrupt manifest {path}: artifact #{i + 1} is not a JSON object; {redo}")
    return manifest


def manifest_size(export_dir: Path, manifest: dict[str, Any]) -> tuple[int, int]:
    """The export's (height, width) from ``image_size``; BenchError when missing or not two positive ints."""
    size = manifest.get("image_size")
    if (not isinstance(size, list) or len(size) != 2
            or not all(isinstance(v, int) and not isinstance(v, bool) and v > 0 for v in size)):
        raise BenchError(f"{Path(export_dir) / 'manifest.json'} has no valid image_size (expected [height, width], "
                         f"got {size!r}); re-run gs-export")
    return size[0], size[1]


def static_input_size(entry: dict[str, Any]) -> tuple[int, int] | None:
    """(height, width) of an artifact's first input as manifest.json records it; None when not static."""
    try:
        tensor = entry["inputs"][0]
        shape = [int(d) for d in tensor["shape"]]
    except (KeyError, IndexError, TypeError, ValueError):
        return None
    if len(shape) != 4 or min(shape) <= 0:
        return None
    return (shape[1], shape[2]) if tensor.get("layout") == "NHWC" else (shape[2], shape[3])


def check_size(export_dir: Path, manifest: dict[str, Any], size: tuple[int, int] | None) -> tuple[int, int]:
    """The input size to bench at: ``size`` (``--size``) or the manifest's, which every static artifact must take.

    BenchError when ``--size`` differs from the size the artifacts were exported at (they have fixed shapes).
    """
    exported = manifest_size(export_dir, manifest)
    if size is None or tuple(size) == exported:
        return exported
    fixed = [str(e.get("name")) for e in manifest["artifacts"] if static_input_size(e) not in (None, tuple(size))]
    if fixed:
        raise BenchError(f"--size {size[0]}x{size[1]} does not fit {export_dir}: {', '.join(fixed[:3])}"
                         f"{' ...' if len(fixed) > 3 else ''} take {exported[0]}x{exported[1]} inputs only; "
                         f"omit --size, or export at that size (gs-export --size {size[0]})")
    return size[0], size[1]


def inside_export(export_dir: Path, entry: dict[str, Any]) -> Path:
    """The artifact's file; BenchError when its manifest path (or a symlink on it) leads out of EXPORT_DIR."""
    root = Path(export_dir).resolve()
    path = Path(export_dir) / str(entry["path"])
    try:
        resolved = path.resolve()
    except (OSError, ValueError):  # a symlink loop, a NUL byte in the path
        resolved = root
    if resolved == root or not resolved.is_relative_to(root):
        raise BenchError(f"manifest.json in {export_dir}: artifact {entry['name']} path {entry['path']!r} leads "
                         f"outside the export folder; artifacts must lie inside it (re-run gs-export)")
    return path


def verify_artifact(export_dir: Path, entry: dict[str, Any]) -> Path:
    """Check that the artifact file exists and matches the manifest's bytes and sha256."""
    for key in ("name", "path", "format"):
        if key not in entry:
            raise BenchError(f"manifest.json in {export_dir}: artifact entry {entry.get('name', entry)!r} has no "
                             f"{key!r}; re-run gs-export")
    path = inside_export(export_dir, entry)
    if not path.exists():
        raise BenchError(f"artifact {entry['name']} missing: {path}; re-run gs-export")
    if path.is_dir():  # e.g. .mlpackage: not run here, no single-file hash
        return path
    if entry.get("bytes") is not None and path.stat().st_size != entry["bytes"]:
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
        rt = artifact_runtime(entry)
        if rt not in RUNTIMES:
            skipped.append({"name": entry["name"], "reason": f"format {entry['format']} is not runnable here"})
        elif runtime in ("all", rt):
            chosen.append(Artifact(entry=entry, path=path, runtime=rt))
    if not chosen:
        raise BenchError(f"no artifact in {export_dir} runs in runtime {runtime!r}")
    return chosen, skipped
