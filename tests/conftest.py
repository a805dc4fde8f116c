"""Shared fixtures: tiny generators and students built in the tests (no network, seconds)."""
from __future__ import annotations

from pathlib import Path

import pytest
import torch

from compress.checkpoint import save_student
from tests.tiny import make_tiny_student, make_tiny_teacher

torch.set_num_threads(1)

__all__ = ["make_tiny_student", "make_tiny_teacher"]


@pytest.fixture(params=["cyclegan", "cartoongan"])
def tiny_student_ckpt(request: pytest.FixtureRequest, tmp_path: Path) -> Path:
    """A student checkpoint file (both architectures) in the gs-compress format."""
    student = make_tiny_student(request.param)
    path = tmp_path / "student.pt"
    save_student(path, student, teacher={"source": "tiny", "sha256": "0" * 64, "arch": request.param},
                 step=0, config={"image_size": 32})
    return path
