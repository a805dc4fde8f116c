"""Helpers of the gs-export tests: a tiny RUN_DIR and the CLI arguments for it."""
from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import torch

from compress.checkpoint import save_student
from compress.student import StudentGenerator
from tests.tiny import make_tiny_student, make_tiny_teacher

SIZE = 32


@dataclass
class TinyRun:
    run: Path            # RUN_DIR with student.pt
    teacher: Path        # the tiny teacher's checkpoint (original key layout)
    arch: str
    student: StudentGenerator


def make_tiny_run(root: Path, arch: str = "cyclegan", norm: str = "fixed") -> TinyRun:
    """RUN_DIR + teacher checkpoint of a tiny, 40%-pruned, calibrated student (`norm`: its normalisation)."""
    root.mkdir(parents=True, exist_ok=True)
    teacher = root / f"teacher_{arch}.pth"
    torch.save(make_tiny_teacher(arch).state_dict(), teacher)
    student = make_tiny_student(arch, norm=norm)
    run = root / "run"
    run.mkdir(exist_ok=True)
    save_student(run / "student.pt", student, teacher={"source": str(teacher), "sha256": "", "arch": arch},
                 step=0, config={"image_size": SIZE})
    return TinyRun(run, teacher, arch, student)


def cli_args(run: TinyRun, out: Path, *extra: str) -> list[str]:
    return [str(run.run), "--out", str(out), "--size", str(SIZE), "--teacher", str(run.teacher),
            "--arch", run.arch, "--quiet", *extra]
