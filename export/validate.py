"""Run every artifact on validation photos and compare with the torch student and the teacher.

Validation photos: `--images DIR` (`gs_contract.photos.read_image_folder`: decoded as gs-compress
decodes `--data`, unusable files skipped with a warning) or scikit-image's bundled sample photos,
centre-cropped and resized exactly as the Android app does (`export.android_assets`).

PSNR is `gs_contract.psnr` (mean over the validation images of per-image PSNR in 8-bit pixel units,
each capped at 100 dB). An artifact is compared with its *reference*: the torch
fake-quant student for INT8 artifacts, the fp32 masked student for fp32 student artifacts, the torch
teacher for teacher artifacts. Tolerances (measured on tiny random students: INT8 TFLite / ONNX vs
the fake-quant student 43-50 dB, which differs only by int32 bias rounding and fixed-point
requantisation; fp32 artifacts match torch to ~3e-6 max abs, > 100 dB):
  INT8 >= 30 dB, fp32 >= 45 dB.  Below that the export fails.
Teacher artifacts are run on the first 2 photos only (time budget; they are an fp32 equivalence check).
Structural checks (each format's own, in `export.formats`, then the common ones): an INT8 TFLite
has every op int8 (no float CONV_2D, no float op besides the I/O QUANTIZE/DEQUANTIZE) and no
normalisation ops; an INT8 ONNX has every Conv on QDQ; a Core ML
package has int8 conv weights, no instance norm and the expected I/O shapes. Every student
artifact's MACs (counted from its own graph) must equal the student's, every teacher's the teacher's.
Core ML cannot predict on Linux: its PSNR fields are null; a W8A8 package must have one int8
`quantize` op per student activation quantiser.
"""
from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch

from gs_contract import pixels_to_real, psnr
from gs_contract.photos import read_image_folder

from .android_assets import center_crop_resize
from .artifact_info import NORM_OPS
from .errors import ExportError
from .formats import FORMATS, ArtifactSpec

TOLERANCE_DB = {"int8": 30.0, "fp32": 45.0}
TEACHER_IMAGES = 2  # teacher artifacts (an fp32 equivalence check, 6x the student's MACs) run on the first 2
SAMPLE_PHOTOS = ("astronaut", "chelsea", "coffee", "rocket")


def load_images(size: int, images_dir: Path | None = None, limit: int = 8) -> torch.Tensor:
    """Validation batch [N, 3, size, size] in [-1, 1] (the app's crop/resize and pixel mapping)."""
    if images_dir is not None:
        try:
            photos = [image for _, image in read_image_folder(images_dir, limit, "gs-export")]
        except ValueError as exc:
            raise ExportError(str(exc)) from None
    else:
        import skimage.data

        photos = [getattr(skimage.data, name)() for name in SAMPLE_PHOTOS]
    batch = np.stack([pixels_to_real(center_crop_resize(p, size, size)) for p in photos])
    return torch.from_numpy(batch).permute(0, 3, 1, 2).float().contiguous()


@dataclass
class References:
    """Torch outputs on the validation batch, and the MACs each role must have."""

    images: torch.Tensor
    outputs: dict[str, np.ndarray]  # student_fakequant, student_fp32, teacher_fp32
    macs: dict[str, int]            # student, teacher
    params: dict[str, int]          # student (slim), teacher
    quantisers: int                 # activation quantisers of the student


def reference_of(spec: ArtifactSpec) -> str:
    if spec.role == "teacher":
        return "teacher_fp32"
    return "student_fp32" if spec.precision == "fp32" else "student_fakequant"


def structural_checks(spec: ArtifactSpec, info: dict, size: int, quantisers: int) -> list[str]:
    """Problems with an artifact's graph (empty when it is as the design requires): the format's own
    checks (`Format.checks`), then those of every format (folded norms, I/O shapes)."""
    problems = FORMATS[spec.format].checks(spec, info, quantisers)
    if spec.role == "student" and any(k.split("/")[0] in NORM_OPS for k in info.get("op_histogram", {})):
        problems.append("normalisation ops in a student artifact (norms must be folded)")
    for t in info["inputs"] + info["outputs"]:
        want = [1, size, size, 3] if t["layout"] == "NHWC" else [1, 3, size, size]
        if t["shape"] != want:
            problems.append(f"{t['name']} has shape {t['shape']}, expected {want}")
    return problems


def declared_info(spec: ArtifactSpec, refs: References, size: int) -> dict:
    """Facts of an artifact whose format reads none from its graph: the torch graph's, float NCHW I/O."""
    tensor = {"shape": [1, 3, size, size], "dtype": "float32", "layout": "NCHW", "scale": None, "zero_point": None}
    return {"op_histogram": {}, "float_ops": None, "macs": refs.macs[spec.role], "params": refs.params[spec.role],
            "inputs": [{"name": "input", **tensor}], "outputs": [{"name": "output", **tensor}]}


def validate_artifact(spec: ArtifactSpec, path: Path, refs: References, size: int) -> dict:
    """Facts + PSNRs of one artifact; raises ExportError when it fails a check or drifts."""
    fmt = FORMATS[spec.format]
    info = fmt.info(path) if fmt.info is not None else declared_info(spec, refs, size)
    problems = structural_checks(spec, info, size, refs.quantisers)
    if info["macs"] != refs.macs[spec.role]:
        problems.append(f"graph MACs {info['macs']} != {spec.role} MACs {refs.macs[spec.role]}")
    reference = reference_of(spec)
    result = {**info, "reference": reference, "tolerance_db": TOLERANCE_DB.get(spec.precision),
              "psnr_vs_reference": None, "psnr_vs_student_fakequant": None, "psnr_vs_teacher": None}
    if fmt.run is not None:
        n = TEACHER_IMAGES if spec.role == "teacher" else len(refs.images)
        out = fmt.run(path, refs.images[:n])
        result["validation_images"] = n
        result["psnr_vs_reference"] = round(psnr(out, refs.outputs[reference][:n]), 3)
        result["psnr_vs_student_fakequant"] = round(psnr(out, refs.outputs["student_fakequant"][:n]), 3)
        result["psnr_vs_teacher"] = round(psnr(out, refs.outputs["teacher_fp32"][:n]), 3)
        if result["psnr_vs_reference"] < TOLERANCE_DB[spec.precision]:
            problems.append(f"PSNR vs {reference} {result['psnr_vs_reference']:.1f} dB "
                            f"< {TOLERANCE_DB[spec.precision]:.0f} dB")
    if problems:
        raise ExportError(f"{spec.name} failed validation: {'; '.join(problems)}")
    return result
