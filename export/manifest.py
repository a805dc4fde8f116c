"""manifest.json (docs/CONTRACTS.md, "EXPORT_DIR"): everything later stages and the app need."""
from __future__ import annotations

import hashlib
from datetime import datetime, timezone
from pathlib import Path
from typing import TYPE_CHECKING

from gs_contract import sha256_file, write_json_atomic

if TYPE_CHECKING:
    from .formats import ArtifactSpec

MANIFEST_FORMAT = "gs-mobile/export"
MAC_CONVENTION = ("multiply-accumulates of conv layers, counted at each layer's output resolution, "
                  "1 MAC = 1 multiply-add, for one image at image_size")
ARTIFACT_KEYS = ("name", "path", "format", "runtime", "role", "precision", "bytes", "sha256", "params", "macs",
                 "inputs", "outputs", "psnr_vs_student_fakequant", "psnr_vs_teacher", "float_ops", "op_histogram")


def path_bytes(path: Path) -> int:
    """Size of a file, or of all files under a directory (an .mlpackage)."""
    if path.is_dir():
        return sum(p.stat().st_size for p in path.rglob("*") if p.is_file())
    return path.stat().st_size


def path_sha256(path: Path) -> str:
    """sha256 of a file; of a directory: sha256 over its sorted 'relative/path sha256' lines."""
    if not path.is_dir():
        return sha256_file(path)
    lines = [f"{p.relative_to(path).as_posix()} {sha256_file(p)}\n" for p in sorted(path.rglob("*")) if p.is_file()]
    return hashlib.sha256("".join(lines).encode()).hexdigest()


def artifact_entry(spec: ArtifactSpec, runtime: str | None, path: Path, facts: dict) -> dict:
    """One manifest artifact: the contract's keys first, then the extra validation facts.

    `runtime` is the gs-bench runtime that runs the artifact (null: gs-bench skips it).
    """
    entry = {"name": spec.name, "path": spec.filename, "format": spec.format, "runtime": runtime, "role": spec.role,
             "precision": spec.precision, "bytes": path_bytes(path), "sha256": path_sha256(path)}
    entry.update({k: facts.get(k) for k in ARTIFACT_KEYS if k not in entry})
    entry.update({k: v for k, v in facts.items() if k not in entry})
    return entry


def build_manifest(*, student_path: Path, size: int, teacher: dict, student: dict, artifacts: list[dict],
                   validation: dict) -> dict:
    by_name = {a["name"]: a for a in artifacts}
    int8_tflite = by_name.get("student_int8_tflite")
    ratios = {
        "size_teacher_ckpt_over_student_int8_tflite":
            round(teacher["checkpoint_bytes"] / int8_tflite["bytes"], 3) if int8_tflite else None,
        "macs_teacher_over_student": round(teacher["macs"] / student["macs"], 3) if student["macs"] else None,
    }
    return {
        "format": MANIFEST_FORMAT, "version": 1,
        "created": datetime.now(timezone.utc).isoformat(timespec="seconds"),
        "student_checkpoint": {"path": str(Path(student_path).resolve()), "sha256": sha256_file(student_path)},
        "image_size": [size, size],
        "mac_convention": MAC_CONVENTION,
        "teacher": teacher, "student": student, "ratios": ratios, "artifacts": artifacts,
        "validation": validation,
    }


def write_manifest(out_dir: Path, manifest: dict) -> Path:
    """Atomically write EXPORT_DIR/manifest.json."""
    path = Path(out_dir) / "manifest.json"
    write_json_atomic(path, manifest)
    return path
