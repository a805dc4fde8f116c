"""Generator registry (in the spirit of timm's `create_model`): name -> generator class + checkpoint loader.

A registered class implements `spec.Generator`; everything architecture-specific (key layout,
config inference, norm modules, colour order) is asked of it, so adding an architecture is one zoo
module and one line in `_REGISTRY`. Entries are "module:Class" paths imported on first use, so
listing the architectures (the CLIs' --arch choices) does not import torch.
"""
from __future__ import annotations

import importlib
from pathlib import Path
from typing import TYPE_CHECKING

from ..errors import CheckpointError
from .spec import Generator, GeneratorSpec, UnitSpec

if TYPE_CHECKING:
    import torch
    from torch import nn

TEACHER_REMEDY = "Pass a generator state dict saved with torch.save(model.state_dict(), PATH)."

_REGISTRY: dict[str, str | type[Generator]] = {
    "cyclegan": "compress.zoo.cyclegan:ResnetGenerator",
    "cartoongan": "compress.zoo.cartoongan:CartoonGANGenerator",
}

__all__ = ["Generator", "GeneratorSpec", "UnitSpec", "available_archs", "create_generator", "generator_class",
           "infer_config", "load_generator", "load_state_into", "read_checkpoint", "register_arch"]


def available_archs() -> list[str]:
    return sorted(_REGISTRY)


def register_arch(name: str, generator: str | type[Generator]) -> None:
    """Make `name` buildable and loadable: a Generator class, or its "module:Class" path."""
    _REGISTRY[name] = generator


def generator_class(arch: str) -> type[Generator]:
    """The class registered as `arch` (its module imported now if it is given as a path)."""
    if arch not in _REGISTRY:
        raise CheckpointError(f"unknown architecture '{arch}' (choose from {', '.join(available_archs())})")
    entry = _REGISTRY[arch]
    if isinstance(entry, str):
        module, _, name = entry.partition(":")
        entry = getattr(importlib.import_module(module), name)
    return entry


def create_generator(arch: str, **kwargs: object) -> nn.Module:
    """Build a generator with random weights; kwargs go to its constructor (e.g. n_blocks, ngf)."""
    return generator_class(arch)(**kwargs)


def read_checkpoint(path: Path) -> dict[str, torch.Tensor]:
    """Read a state dict saved by the original code (plain dict, or wrapped in 'state_dict'/'model')."""
    import torch  # here, so that importing the registry stays torch-free

    from ..safeload import load_plain

    path = Path(path)
    if not path.is_file():
        raise CheckpointError(f"checkpoint not found: {path}")
    obj = load_plain(path, "teacher checkpoint", TEACHER_REMEDY)
    for key in ("state_dict", "model", "generator"):
        if isinstance(obj, dict) and isinstance(obj.get(key), dict):
            obj = obj[key]
    if not isinstance(obj, dict) or not all(isinstance(v, torch.Tensor) for v in obj.values()):
        raise CheckpointError(f"{path} does not hold a generator state dict. {TEACHER_REMEDY}")
    return {k.removeprefix("module."): v for k, v in obj.items()}


def load_state_into(model: nn.Module, state: dict[str, torch.Tensor], source: str = "checkpoint") -> None:
    """Strictly load `state`, explaining missing / unexpected keys and shape mismatches in one line."""
    canon = getattr(model, "canonical_keys", dict)(state)
    own = model.state_dict()
    missing = sorted(set(own) - set(canon))
    unexpected = sorted(set(canon) - set(own))
    shapes = [f"{k} {tuple(canon[k].shape)} vs {tuple(v.shape)}" for k, v in own.items()
              if k in canon and canon[k].shape != v.shape]
    problems = []
    if missing:
        problems.append(f"{len(missing)} missing keys (e.g. {', '.join(missing[:3])})")
    if unexpected:
        problems.append(f"{len(unexpected)} unexpected keys (e.g. {', '.join(unexpected[:3])})")
    if shapes:
        problems.append(f"{len(shapes)} shape mismatches (e.g. {'; '.join(shapes[:2])})")
    if problems:
        spec = model.spec() if hasattr(model, "spec") else getattr(model, "gen_spec", None)  # teacher / student
        name = spec.arch if spec else type(model).__name__
        raise CheckpointError(f"{source} does not fit a {name} generator: " + "; ".join(problems))
    model.load_state_dict(canon, strict=True)


def infer_config(arch: str, state: dict[str, torch.Tensor]) -> dict[str, int]:
    """Read width and block count from an original checkpoint, so any size loads."""
    return generator_class(arch).infer_config(state)


def load_generator(arch: str, path: Path) -> nn.Module:
    """Build `arch` sized after the checkpoint at `path` and load it strictly; eval mode."""
    state = read_checkpoint(path)
    model = create_generator(arch, **infer_config(arch, state))
    load_state_into(model, state, source=str(path))
    return model.eval()
