"""Generator registry (in the spirit of timm's `create_model`): name -> builder + checkpoint loader."""
from __future__ import annotations

from pathlib import Path
from typing import Callable

import torch
from torch import nn

from ..errors import CheckpointError
from ..safeload import load_plain
from .cartoongan import CartoonGANGenerator
from .cyclegan import ResnetGenerator
from .spec import GeneratorSpec, UnitSpec

TEACHER_REMEDY = "Pass a generator state dict saved with torch.save(model.state_dict(), PATH)."

_REGISTRY: dict[str, Callable[..., nn.Module]] = {
    "cyclegan": ResnetGenerator,
    "cartoongan": CartoonGANGenerator,
}

__all__ = ["GeneratorSpec", "UnitSpec", "available_archs", "create_generator", "load_generator",
           "load_state_into", "read_checkpoint"]


def available_archs() -> list[str]:
    return sorted(_REGISTRY)


def create_generator(arch: str, **kwargs: object) -> nn.Module:
    """Build a generator with random weights; kwargs go to the builder (e.g. n_blocks, ngf)."""
    if arch not in _REGISTRY:
        raise CheckpointError(f"unknown architecture '{arch}' (choose from {', '.join(available_archs())})")
    return _REGISTRY[arch](**kwargs)


def read_checkpoint(path: Path) -> dict[str, torch.Tensor]:
    """Read a state dict saved by the original code (plain dict, or wrapped in 'state_dict'/'model')."""
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
    state = create_generator(arch).canonical_keys(state) if arch == "cyclegan" else state
    if arch == "cyclegan":
        w = state.get("model.1.weight")
        blocks = {k.split(".")[1] for k in state if ".conv_block." in k}
        if w is None:
            return {}
        return {"ngf": int(w.shape[0]), "n_blocks": len(blocks)}
    w = state.get("conv01_1.weight")
    blocks = {k[4:6] for k in state if k.startswith("conv") and k[6:8] == "_1" and k[4:6].isdigit() and int(k[4:6]) >= 4}
    return {"ngf": int(w.shape[0]), "n_blocks": len(blocks)} if w is not None else {}


def load_generator(arch: str, path: Path) -> nn.Module:
    """Build `arch` sized after the checkpoint at `path` and load it strictly; eval mode."""
    state = read_checkpoint(path)
    model = create_generator(arch, **infer_config(arch, state))
    load_state_into(model, state, source=str(path))
    return model.eval()
