"""The gs-export stage: student checkpoint -> slim graphs -> artifacts -> validation -> manifest.

All artifacts are first written into a hidden staging folder inside the output folder and only
moved to their final names once every one of them has passed validation; on any error the staging
folder is removed, so a failed export leaves no file behind (and an output folder it created is
removed again). The staging folder's name holds the exporting process's pid: a folder left by a
killed export (its process gone) is removed by the next export into the same output folder.
"""
from __future__ import annotations

import os
import shutil
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable

import torch

from compress.checkpoint import load_student
from compress.macs import count_module_macs, count_params
from compress.quant import set_quantisation
from compress.student import StudentGenerator
from compress.teachers import Teacher, load_teacher
from gs_contract import PSNR_CONVENTION, psnr

from .errors import ExportError
from .formats import FORMATS, ArtifactSpec, ExportContext, select
from .graph import ExportGraph, GraphModule
from .manifest import artifact_entry, build_manifest, write_manifest
from .slim import channel_table, slim_graph, teacher_graph
from .validate import TOLERANCE_DB, References, load_images, validate_artifact

STAGING_PREFIX = ".gs-export-"
SLIM_TOLERANCE = 1e-3  # max abs, slim fp32 graph vs masked fp32 student, on the val photos


@dataclass
class ExportOptions:
    run: Path
    formats: list[str]
    out: Path | None = None
    size: int = 256
    io: str = "int8"
    teacher: Path | None = None
    arch: str | None = None
    images: Path | None = None
    progress: Callable[[str], None] = field(default=lambda _msg: None)


def student_checkpoint(run: Path) -> Path:
    """RUN_DIR/student.pt (or the checkpoint file itself)."""
    run = Path(run)
    path = run / "student.pt" if run.is_dir() else run
    if not path.is_file():
        raise ExportError(f"no student checkpoint at {path} (expected RUN_DIR/student.pt from gs-compress)")
    return path


def resolve_teacher(payload: dict, path: Path | None, arch: str | None) -> Teacher:
    """The teacher recorded in the checkpoint, or `--teacher PATH --arch`; same architecture as the student."""
    record = payload.get("teacher") or {}
    if path is not None:
        teacher = load_teacher(str(path), arch or record.get("arch") or payload["arch"])
    else:
        source = str(record.get("source", "default"))
        if source != "default" and not Path(source).is_file():
            raise ExportError(f"the teacher recorded in the student checkpoint ({source}) is not a file here; "
                              f"pass --teacher PATH --arch ARCH")
        teacher = load_teacher(source, record.get("arch") or payload["arch"])
        if record.get("sha256") and record["sha256"] != teacher.sha256:
            raise ExportError(f"teacher {teacher.path} does not match the sha256 recorded in the student checkpoint")
    if teacher.arch != payload["arch"]:
        raise ExportError(f"the teacher is a {teacher.arch} generator but the student is {payload['arch']}")
    return teacher


def teacher_forward(model: torch.nn.Module, x: torch.Tensor) -> torch.Tensor:
    """The original teacher module on RGB input, returning RGB (a bare BGR zoo model, `bgr_io`, is
    flipped around; `load_teacher` already wraps BGR teachers in `RGBAdapter`)."""
    bgr = model.bgr_io
    with torch.no_grad():
        y = model(x.flip(1) if bgr else x)
    return y.flip(1) if bgr else y


def references(student: StudentGenerator, slim: ExportGraph, teacher: Teacher, teacher_g: ExportGraph,
               images: torch.Tensor, size: int) -> tuple[References, float]:
    """Torch outputs the artifacts are judged against, and the slim-vs-masked fp32 max abs diff."""
    with torch.no_grad():
        fake_quant = student(images)
        set_quantisation(student, False)
        try:
            fp32 = student(images)
        finally:
            set_quantisation(student, True)
        slim_diff = float((GraphModule(slim)(images) - fp32).abs().max())
    outputs = {"student_fakequant": fake_quant.numpy(), "student_fp32": fp32.numpy(),
               "teacher_fp32": teacher_forward(teacher.model, images).numpy()}
    macs = {"student": student.macs(size, size), "teacher": count_module_macs(teacher.model, size, size)}
    params = {"student": slim.params(), "teacher": teacher_g.params()}
    return References(images, outputs, macs, params, len(slim.act_quantisers())), slim_diff


def _process_alive(pid: int) -> bool:
    """Whether a process with this pid exists (one of another user counts)."""
    if pid == os.getpid():
        return False  # this process makes one staging folder per export and removes it
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


def remove_stale_staging(out: Path) -> list[Path]:
    """Remove the staging folders in `out` whose exporting process is gone; returns them.

    A folder whose name carries no pid cannot be attributed to a running export and counts as
    stale. A reused pid keeps a stale folder until that unrelated process ends (harmless).
    """
    stale = []
    for d in Path(out).glob(STAGING_PREFIX + "*"):
        pid = d.name[len(STAGING_PREFIX):].split("-")[0]
        if d.is_dir() and not (pid.isdigit() and _process_alive(int(pid))):
            shutil.rmtree(d, ignore_errors=True)
            stale.append(d)
    return stale


def _staging_dir(out: Path) -> tuple[Path, bool]:
    """Create (if needed) the output folder and a staging folder in it; (staging, created_out)."""
    created = not out.exists()
    try:
        out.mkdir(parents=True, exist_ok=True)
        remove_stale_staging(out)
        return Path(tempfile.mkdtemp(prefix=f"{STAGING_PREFIX}{os.getpid()}-", dir=out)), created
    except OSError as exc:
        raise ExportError(f"cannot write to output folder {out}: {exc.strerror or exc}") from None


def _commit(staged: Path, final: Path) -> None:
    if final.is_dir():
        shutil.rmtree(final)
    elif final.exists():
        final.unlink()
    os.replace(staged, final)


def run_export(opts: ExportOptions) -> dict:
    """Export, validate and commit the artifacts; returns the manifest."""
    specs = select(opts.formats)
    ckpt = student_checkpoint(opts.run)
    opts.progress("loading student and teacher")
    student, payload = load_student(ckpt, expect_arch=opts.arch)
    teacher = resolve_teacher(payload, opts.teacher, opts.arch)
    slim = slim_graph(student)
    if any(s.precision == "int8" for s in specs) and not slim.quantisable:
        raise ExportError("the student has activation quantisers without a range (was it calibrated/trained?)")
    ctx = ExportContext(slim, teacher_graph(teacher.model), opts.size, opts.io)
    opts.progress("computing torch references")
    refs, slim_diff = references(student, slim, teacher, ctx.teacher, load_images(opts.size, opts.images), opts.size)
    if slim_diff > SLIM_TOLERANCE:
        raise ExportError(f"slim model differs from the masked student by {slim_diff:.2e} (> {SLIM_TOLERANCE})")

    out = Path(opts.out) if opts.out else ckpt.parent / "export"
    staging, created_out = _staging_dir(out)
    try:
        entries = [_export_one(spec, ctx, staging, refs, opts) for spec in specs]
        for spec in specs:
            _commit(staging / spec.filename, out / spec.filename)
    except BaseException:
        shutil.rmtree(staging, ignore_errors=True)
        if created_out:
            shutil.rmtree(out, ignore_errors=True)
        raise
    shutil.rmtree(staging, ignore_errors=True)
    manifest = build_manifest(
        student_path=ckpt, size=opts.size,
        teacher={"arch": teacher.arch, "source": teacher.source, "params": count_params(teacher.model),
                 "macs": refs.macs["teacher"], "checkpoint_bytes": teacher.checkpoint_bytes, "sha256": teacher.sha256},
        student={"params": slim.params(), "macs": refs.macs["student"], "channels": channel_table(student, teacher.model.spec()),
                 "step": payload.get("step")},
        artifacts=entries,
        validation=_validation_summary(refs, slim_diff, opts))
    write_manifest(out, manifest)
    manifest["_dir"] = str(out)
    return manifest


def _export_one(spec: ArtifactSpec, ctx: ExportContext, staging: Path, refs: References,
                opts: ExportOptions) -> dict:
    path = staging / spec.filename
    opts.progress(f"exporting {spec.filename}")
    start = time.perf_counter()
    try:
        spec.export(ctx, path)
    except ExportError:
        raise
    except Exception as exc:  # converters raise anything; report it as one line
        msg = str(exc).strip().splitlines()[0][:200] if str(exc).strip() else ""
        raise ExportError(f"{spec.name}: conversion failed: {type(exc).__name__}: {msg}") from exc
    converted = time.perf_counter()
    opts.progress(f"validating {spec.filename}")
    facts = validate_artifact(spec, path, refs, opts.size)
    facts["seconds"] = {"export": round(converted - start, 2), "validate": round(time.perf_counter() - converted, 2)}
    fmt = FORMATS[spec.format]
    facts.update(fmt.facts(spec, ctx))
    return artifact_entry(spec, fmt.runtime, path, facts)


def _validation_summary(refs: References, slim_diff: float, opts: ExportOptions) -> dict:
    o = refs.outputs
    return {
        "images": int(refs.images.shape[0]),
        "image_source": str(opts.images) if opts.images else "scikit-image sample photos",
        "psnr": PSNR_CONVENTION,
        "tolerance_db": TOLERANCE_DB,
        "student_fakequant_psnr_vs_teacher": round(psnr(o["student_fakequant"], o["teacher_fp32"]), 3),
        "student_fp32_psnr_vs_teacher": round(psnr(o["student_fp32"], o["teacher_fp32"]), 3),
        "slim_vs_masked_fp32_max_abs": slim_diff,
    }
