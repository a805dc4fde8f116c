"""The measurement run: verify the export, measure each artifact on a target, derive speedups and quality."""
from __future__ import annotations

import datetime as _dt
import sys
import tempfile
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

import numpy as np

from gs_contract import sha256_file

from . import quality
from .errors import BenchError
from .instructions import RESULT_KEYS as INSTR_KEYS, InstrSettings, measure_instructions
from .manifest import Artifact, check_size, load_manifest, select_artifacts
from .stats import environment
from .targets import LocalTarget, Settings, Skip, Target

BENCH_FORMAT = "gs-mobile/bench"
BENCH_VERSION = 1
#: order in which a teacher output is preferred as the quality reference.
REFERENCE_RUNTIMES = ("torch", "onnxruntime", "tflite")


@dataclass
class Measured:
    """One artifact's raw measurement."""

    art: Artifact
    result: dict[str, Any]
    outputs: np.ndarray | None


@dataclass
class BenchRun:
    """Everything a bench run produced: the JSON document and the arrays for the image grid."""

    doc: dict[str, Any]
    inputs: np.ndarray
    outputs: dict[str, np.ndarray]


def _teacher_for(measured: list[Measured], runtime: str) -> Measured | None:
    cands = [m for m in measured if m.art.role == "teacher" and m.art.runtime == runtime]
    cands.sort(key=lambda m: m.art.precision != "fp32")
    return cands[0] if cands else None


def _label(m: Measured) -> str:
    return f"{m.art.name} [{m.art.runtime}]"


def _pairs(measured: list[Measured]) -> dict[str, list[str]]:
    """Student label -> labels of the teachers its ratio is taken against (same runtime, torch)."""
    torch_teacher = _teacher_for(measured, "torch")
    pairs: dict[str, list[str]] = {}
    for m in measured:
        if m.art.role == "teacher":
            continue
        teachers = [t for t in (_teacher_for(measured, m.art.runtime), torch_teacher) if t is not None]
        if teachers:
            pairs[_label(m)] = list(dict.fromkeys(_label(t) for t in teachers))
    return pairs


def _interleaved(measured: list[Measured], inputs: Path, work: Path, settings: Settings,
                 target: Target, progress: bool) -> dict[str, Any] | None:
    """Run the students and their teachers in interleaved rounds (runtime_bench.paired), if asked."""
    pairs = _pairs(measured)
    if settings.rounds <= 0 or not pairs or not target.timings_meaningful:
        return None
    involved = set(pairs) | {t for teachers in pairs.values() for t in teachers}
    order = sorted((m for m in measured if _label(m) in involved),
                   key=lambda m: (m.art.runtime != "torch", m.art.runtime, m.art.role != "teacher"))
    spec = {"artifacts": [{"label": _label(m), "artifact": m.art.entry, "model": str(m.art.path),
                           "est_ms": m.result["latency_ms"]["p50"]} for m in order], "pairs": pairs}
    try:
        return target.measure_paired(spec, inputs, work, settings, progress)
    except Skip as why:
        return {"ok": False, "skipped": str(why)}


def _interleaved_stats(m: Measured, paired: dict[str, Any] | None) -> dict[str, Any]:
    """Teacher label -> stats of m's interleaved ratio to it ({} when no rounds ran for m)."""
    return ((paired or {}).get("ratios") or {}).get(_label(m), {})


def _ratio(m: Measured, teacher: Measured, paired: dict[str, Any] | None) -> tuple[float, str]:
    """p50 ratio m/teacher: from interleaved rounds when they ran, else from the separate measurements."""
    if stats := _interleaved_stats(m, paired).get(_label(teacher)):
        return float(stats["p50"]), "interleaved rounds"
    return m.result["latency_ms"]["p50"] / teacher.result["latency_ms"]["p50"], "separate processes"


def _entry(m: Measured, teacher_same: Measured | None, teacher_torch: Measured | None, target: Target,
           paired: dict[str, Any] | None = None) -> dict[str, Any]:
    lat = m.result["latency_ms"]
    e = m.art.entry
    entry: dict[str, Any] = {
        "name": m.art.name, "path": e["path"], "format": e["format"], "runtime": m.art.runtime,
        "role": m.art.role, "precision": m.art.precision, "bytes": e.get("bytes") or m.art.path.stat().st_size,
        "sha256": e.get("sha256") or sha256_file(m.art.path), "params": e.get("params"), "macs": e.get("macs"),
        "target": target.name, "timings_meaningful": target.timings_meaningful,
        "init_ms": m.result.get("init_ms"), "first_ms": m.result.get("first_ms"), "latency_ms": lat,
        "peak_rss_mb": m.result.get("peak_rss_mb"), "rss_before_load_mb": m.result.get("rss_before_load_mb"),
        "runtime_info": m.result.get("runtime_info", {}), "host": m.result.get("host"),
        "ratio_vs_teacher": None, "speedup_vs_teacher_same_runtime": None, "speedup_vs_teacher_torch": None,
        **{k: m.result[k] for k in INSTR_KEYS if k in m.result},
    }
    if teacher_same is not None and teacher_same is not m:
        ratio, entry["ratio_method"] = _ratio(m, teacher_same, paired)
        entry["ratio_vs_teacher"] = ratio
        entry["speedup_vs_teacher_same_runtime"] = 1.0 / ratio
    if teacher_torch is not None and teacher_torch is not m:
        entry["speedup_vs_teacher_torch"] = 1.0 / _ratio(m, teacher_torch, paired)[0]
    counted = teacher_same if teacher_same is not None and teacher_same is not m else None
    if counted is not None and m.result.get("instructions_per_inference") and \
            counted.result.get("instructions_per_inference"):
        entry["instruction_ratio_vs_teacher"] = (counted.result["instructions_per_inference"]
                                                 / m.result["instructions_per_inference"])
    if ratios := _interleaved_stats(m, paired):
        entry["interleaved"] = ratios
    return entry


def _quality(measured: list[Measured], kid: bool, threads: int) -> tuple[dict[str, dict[str, Any]], str | None]:
    """Per-label quality vs the reference teacher output (PSNR/SSIM/KID)."""
    ref = next((t for rt in REFERENCE_RUNTIMES if (t := _teacher_for(measured, rt)) and t.outputs is not None), None)
    out: dict[str, dict[str, Any]] = {}
    if ref is None:
        for m in measured:
            out[_label(m)] = {"reference": None, "reason": "no teacher output to compare with"
                              if all(x.outputs is not None for x in measured) else "outputs stay on the target"}
        return out, None
    extractor, reason = quality.load_extractor(kid, threads)
    with_outputs = {_label(m): m.outputs for m in measured if m.outputs is not None and m is not ref}
    dist = quality.distribution_scores(ref.outputs, with_outputs, extractor, reason)
    for m in measured:
        key = _label(m)
        if m is ref:
            out[key] = {"reference": _label(ref), "is_reference": True}
        elif m.outputs is None:
            out[key] = {"reference": _label(ref), "reason": "outputs stay on the target"}
        else:
            psnr, ssim = quality.psnr_ssim(ref.outputs, m.outputs)
            out[key] = {"reference": _label(ref), "psnr_db": None if np.isinf(psnr) else psnr,
                        "identical": bool(np.isinf(psnr)), "ssim": ssim,
                        "max_abs_diff": float(np.abs(ref.outputs - m.outputs).max()), **dist[key]}
    return out, _label(ref)


def correctness(x86: np.ndarray, emulated: np.ndarray, entry: dict[str, Any]) -> dict[str, Any]:
    """Outputs of the aarch64 build vs x86 on the images both ran: within one output quantum (int8)
    or 1e-3 (float). XNNPACK's INT8 kernels on a valid core model are bit-identical to x86; a wrong
    kernel path (QEMU 7.2's SME on plain ``max``) is off by hundreds of quanta."""
    scale = (entry.get("outputs") or [{}])[0].get("scale")
    tol = 1.01 * float(scale) if scale else 1e-3
    x86 = x86[:len(emulated)]
    diff = float(np.abs(x86 - emulated).max())
    out = {"max_abs_diff_vs_x86": diff, "tolerance": tol, "pass": diff <= tol, "images": len(emulated),
           "bit_identical": bool(np.array_equal(x86, emulated))}
    if scale:
        out["max_steps_vs_x86"] = int(round(diff / float(scale)))
    return out


def _count(art: Artifact, inputs: Path, work: Path, settings: Settings, instr: InstrSettings) -> dict[str, Any]:
    """Instruction counts of one artifact on this machine (the ``--instructions`` fields)."""
    return measure_instructions(Target.write_artifact_json(art, work), art.path, inputs, work, art.name, instr,
                                settings.size)


def run_bench(export_dir: Path, runtime: str, settings: Settings, target: Target, images_dir: Path | None = None,
              max_images: int = 8, kid: bool = True, progress: bool = True,
              instructions: InstrSettings | None = None) -> BenchRun:
    """Verify the export, measure every selected artifact on ``target`` and assemble the JSON document.

    With ``instructions``, each measured artifact also gets its instructions per inference under
    callgrind on this machine (runtime_bench.instructions).
    """
    from tqdm import tqdm

    export_dir = Path(export_dir)
    manifest = load_manifest(export_dir)
    size = check_size(export_dir, manifest, settings.size)
    images, names = quality.load_images(images_dir, size, max_images)
    artifacts, skipped = select_artifacts(export_dir, manifest, runtime)
    measured: list[Measured] = []
    checks: dict[str, dict[str, Any]] = {}
    paired: dict[str, Any] | None = None
    with tempfile.TemporaryDirectory(prefix="gs-bench-") as tmp:
        work = Path(tmp)
        inputs = work / "inputs.npy"
        np.save(inputs, images)
        try:
            target.prepare(work)
            for art in tqdm(artifacts, desc=f"gs-bench {target.name}", unit="artifact", file=sys.stderr,
                            disable=not progress):
                try:
                    result, outputs = target.measure(art, inputs, work, settings)
                except Skip as why:
                    skipped.append({"name": art.name, "runtime": art.runtime, "reason": str(why)})
                    continue
                if instructions is not None and art.role in instructions.roles:
                    result.update(_count(art, inputs, work, settings, instructions))
                measured.append(Measured(art, result, outputs))
                if not target.timings_meaningful and outputs is not None:
                    _, x86 = LocalTarget().measure(art, inputs, work, Settings(settings.threads, 0, 1, settings.size,
                                                                                settings.timeout_s))
                    checks[_label(measured[-1])] = correctness(x86, outputs, art.entry)
            paired = _interleaved(measured, inputs, work, settings, target, progress)
        finally:
            target.close()
    if not measured:
        raise BenchError(f"target {target.name} ran none of the selected artifacts")
    torch_teacher = _teacher_for(measured, "torch")
    results = [_entry(m, _teacher_for(measured, m.art.runtime), torch_teacher, target, paired) for m in measured]
    qual, ref_label = _quality(measured, kid and target.timings_meaningful, settings.threads)
    for m, r in zip(measured, results):
        r["quality"] = qual[_label(m)]
        if _label(m) in checks:
            r["correctness"] = checks[_label(m)]
    doc = {
        "format": BENCH_FORMAT, "version": BENCH_VERSION,
        "created": _dt.datetime.now(_dt.timezone.utc).isoformat(timespec="seconds"),
        "export_dir": str(export_dir), "manifest_sha256": sha256_file(export_dir / "manifest.json"),
        "target": target.name, "timings_meaningful": target.timings_meaningful,
        "settings": {"runtime": runtime, "threads": settings.threads, "warmup": settings.warmup,
                     "runs": settings.runs, "rounds": settings.rounds, "image_size": list(size), "images": names,
                     "instructions": None if instructions is None else asdict(instructions)},
        "environment": environment(settings.threads), "quality_reference": ref_label,
        "teacher": manifest.get("teacher"), "student": {k: v for k, v in (manifest.get("student") or {}).items()
                                                        if k != "channels"},
        "results": results, "skipped": skipped,
        "interleaved": None if paired is None else {k: v for k, v in paired.items() if k != "ratios"},
    }
    if target.name != "local":
        doc["environment"]["note"] = "host environment; the artifacts ran on the target"
    outputs = {_label(m): m.outputs for m in measured if m.outputs is not None}
    shown = min((len(o) for o in outputs.values()), default=len(images))  # qemu runs the first image only
    return BenchRun(doc=doc, inputs=images[:shown], outputs=outputs)
