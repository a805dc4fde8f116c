"""Layer-wise least-squares start for the fixed-norm student: can the teacher's activations alone set it?

    python -m compress.experiments.layerwise_ls [--keep 1.0] [--views 24] [--threads 2]

The student (teacher topology, folded fixed norm, fp32) is fitted unit by unit in execution order:
each unit's input is the *student's* own activation of the earlier units; its target is the teacher's
post-InstanceNorm pre-activation on the same views (the pre-tanh conv output for the head); its folded
conv weight and bias are the ridge least-squares solution over random output positions. With
`--keep F` every channel group keeps the fraction F of its channels with the most teacher activation
energy (after ReLU; the residual trunk by the energy of the trunk entering the decoder), and each
consumer is refitted on the kept inputs (ThiNet-style). No training: PSNR vs the teacher on the
default val photos at 256 px shows where such a start stands.

`--norm instance` keeps the teacher's per-image InstanceNorm (float; not exportable as is) instead of
the folded fixed norm: each conv is then fitted to the teacher's pre-norm conv output, and the norm
with the teacher's affine follows. This separates what pruning + refit cost from what the fixed
normalisation costs.
"""
from __future__ import annotations

import argparse
import time
from typing import Callable

import numpy as np
import torch
import torch.nn.functional as F

from ..data import CropDataset, build_default_photos, val_batch
from ..evaluate import psnr, run_batched
from ..quant import set_quantisation
from ..student import TRUNK, StudentGenerator, student_from_teacher
from ..teachers import load_teacher
from ..zoo.spec import UnitSpec

ROWS = 60000      # sampled output positions per unit
RIDGE = 1e-4      # ridge weight relative to the mean diagonal of X^T X


NORMS = ("fixed", "instance")


@torch.no_grad()
def teacher_targets(teacher: torch.nn.Module, images: torch.Tensor
                    ) -> tuple[dict[str, torch.Tensor], dict[str, torch.Tensor], torch.Tensor]:
    """Per unit, the teacher's post-norm pre-activation and its conv output (the same where there is
    no norm), and the trunk tensor entering the decoder."""
    acts: dict[str, torch.Tensor] = {}
    convs: dict[str, torch.Tensor] = {}
    trunk: list[torch.Tensor] = []
    mods = teacher.unit_modules()
    hooks = [(norm if norm is not None else conv).register_forward_hook(
        lambda _m, _i, out, name=name: acts.__setitem__(name, out.detach())) for name, (conv, norm) in mods.items()]
    hooks += [conv.register_forward_hook(lambda _m, _i, out, name=name: convs.__setitem__(name, out.detach()))
              for name, (conv, _norm) in mods.items()]
    hooks.append(mods[teacher.spec().tail[0].name][0].register_forward_pre_hook(lambda _m, a: trunk.append(a[0])))
    try:
        teacher(images)
    finally:
        for h in hooks:
            h.remove()
    return acts, convs, trunk[0]


def top_energy(act: torch.Tensor, keep: float) -> torch.Tensor:
    """Sorted indices of the max(4, round(keep * C)) channels of `act` with the largest mean square."""
    k = max(4, round(act.shape[1] * keep))
    return act.pow(2).mean((0, 2, 3)).topk(k).indices.sort().values


def im2col_rows(x: torch.Tensor, u: UnitSpec, rows: int, gen: torch.Generator) -> tuple[torch.Tensor, torch.Tensor]:
    """Conv input patches [R, Cin*k*k] at random output positions (per image), and their flat indices."""
    if u.kind == "up":
        xp, k, s = F.pad(x, (0, 1, 0, 1)), 2, 1
    else:
        xp, k, s = F.pad(x, (u.pad,) * 4, mode="reflect" if u.pad_mode == "reflect" else "constant"), u.kernel, u.stride
    positions = ((xp.shape[2] - k) // s + 1) * ((xp.shape[3] - k) // s + 1)
    per = min(rows // len(x), positions)
    patches, index = [], []
    for i in range(len(x)):
        pos = torch.randint(positions, (per,), generator=gen)
        patches.append(F.unfold(xp[i:i + 1], k, stride=s)[0][:, pos].T)
        index.append(i * positions + pos)
    return torch.cat(patches), torch.cat(index)


@torch.no_grad()
def fit_unit(student: StudentGenerator, u: UnitSpec, x: torch.Tensor, target: torch.Tensor,
             gen: torch.Generator, fold_norm: bool = True) -> float:
    """Ridge-fit unit `u`'s conv (alive outputs, alive inputs) to `target`; returns the relative error.
    With `fold_norm` the fitted conv is the folded one and the unit's norm becomes the identity."""
    unit = student.unit(u.name)
    in_alive = student.input_alive().get(u.name)
    cin = torch.arange(u.in_ch) if in_alive is None else in_alive.nonzero().flatten()
    taps = unit.weight.shape[2] * unit.weight.shape[3]
    patches, index = im2col_rows(x, u, ROWS, gen)
    columns = torch.zeros(u.in_ch, dtype=torch.bool)
    columns[cin] = True
    design = torch.cat([patches[:, columns.repeat_interleave(taps)], torch.ones(len(patches), 1)], 1).double()
    if u.kind == "up":
        target = F.pixel_unshuffle(target, 2)  # sub-pixel conv channels, pixel_shuffle order
    outs = unit.alive.nonzero().flatten()
    if u.kind == "up":
        outs = (outs[:, None] * 4 + torch.arange(4)).flatten()
    y = target.permute(0, 2, 3, 1).reshape(-1, target.shape[1])[index][:, outs].double()
    gram = design.T @ design
    coef = torch.linalg.solve(gram + RIDGE * gram.diagonal().mean() * torch.eye(len(gram), dtype=gram.dtype),
                              design.T @ y)
    weight = torch.zeros_like(unit.weight)
    weight[outs[:, None], cin[None, :]] = coef[:-1].T.float().reshape(len(outs), len(cin), *unit.weight.shape[2:])
    bias = torch.zeros_like(unit.bias)
    bias[outs] = coef[-1].float()
    unit.weight.copy_(weight)
    unit.bias.copy_(bias)
    if u.norm and fold_norm:  # the fitted conv is the folded one: identity norm
        for name, value in (("gamma", 1.0), ("beta", 0.0), ("mu", 0.0), ("sigma", 1.0)):
            getattr(unit, name).fill_(value)
    return float(((design @ coef - y) ** 2).mean() / y.var())


def instance_runner(student: StudentGenerator) -> Callable[[UnitSpec, torch.Tensor], torch.Tensor]:
    """run(unit, x) with the teacher's per-image InstanceNorm after each normalised conv (float),
    dead channels zeroed."""
    def run(u: UnitSpec, x: torch.Tensor) -> torch.Tensor:
        unit = student.unit(u.name)
        y = unit.conv(x, unit.weight, unit.bias)
        if u.norm:
            y = F.instance_norm(y) * unit.gamma[None, :, None, None] + unit.beta[None, :, None, None]
        y = y * (student.trunk_alive if unit.in_trunk else unit.alive)[None, :, None, None]
        return torch.relu(y) if u.act == "relu" else torch.tanh(y) if u.act == "tanh" else y

    return run


def forward(student: StudentGenerator, x: torch.Tensor,
            run: Callable[[UnitSpec, torch.Tensor], torch.Tensor]) -> torch.Tensor:
    """The generator's dataflow (stem -> residual blocks -> tail) with `run` for each unit."""
    spec = student.gen_spec
    y = student.input_quant(x)
    for u in spec.stem:
        y = run(u, y)
    for a, b in spec.blocks:
        y = y + run(b, run(a, y))
    for u in spec.tail:
        y = run(u, y)
    return y


@torch.no_grad()
def layerwise_student(teacher: torch.nn.Module, views: torch.Tensor, keep: float, norm: str = "fixed",
                      seed: int = 0, log: bool = True
                      ) -> tuple[StudentGenerator, Callable[[UnitSpec, torch.Tensor], torch.Tensor]]:
    """The student pruned to `keep` of each group's channels and fitted unit by unit; returns it with
    the per-unit runner its forward pass uses (`forward(student, x, run)`)."""
    acts, convs, trunk = teacher_targets(teacher, views)
    student = student_from_teacher(teacher).eval()
    set_quantisation(student, False)
    student.trunk_gate.fill_(1.0)
    for name, group in student.groups().items():
        alive = student.alive_of(name)
        alive.zero_()
        alive[top_energy(trunk if name == TRUNK else torch.relu(acts[group.producers[0]]), keep)] = 1
    fixed = norm == "fixed"
    # masks and gate are fixed from here; weights are read at each call
    run = student._runner() if fixed else instance_runner(student)
    gen = torch.Generator().manual_seed(seed)

    def fit_then_run(u: UnitSpec, x: torch.Tensor) -> torch.Tensor:
        err = fit_unit(student, u, x, (acts if fixed else convs)[u.name], gen, fold_norm=fixed)
        if log:
            print(f"  {u.name:10s} relative error {err:.4f}", flush=True)
        return run(u, x)

    forward(student, views, fit_then_run)
    return student, run


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(prog="python -m compress.experiments.layerwise_ls", description=__doc__.split("\n\n")[0])
    p.add_argument("--keep", type=float, default=1.0, help="fraction of each group's channels kept (default 1.0)")
    p.add_argument("--views", type=int, default=24, help="256 px random views of the train photos (default 24)")
    p.add_argument("--norm", choices=NORMS, default="fixed",
                   help="fixed: the folded fixed norm (exportable); instance: the teacher's per-image norm (float)")
    p.add_argument("--threads", type=int, default=2)
    a = p.parse_args(argv)
    torch.set_num_threads(a.threads)
    t0 = time.time()
    teacher = load_teacher("default").model.eval()
    photos = build_default_photos()
    crops = CropDataset(photos.subset("train"), crop=256, seed=0, length=a.views)
    views = torch.stack([crops[i] for i in range(a.views)])
    val = val_batch(photos.subset("val"), 256)
    target = run_batched(teacher, val)
    student, run = layerwise_student(teacher, views, a.keep, a.norm)
    scores = psnr(torch.cat([forward(student, val[i:i + 4], run) for i in range(0, len(val), 4)]), target)
    print(f"{a.norm} norm, keep {a.keep}, {a.views} views: {student.macs(256, 256) / 2 ** 30:.2f}G MACs, "
          f"{student.slim_params() / 1e6:.3f}M params; val PSNR vs teacher {np.mean(scores):.2f} dB "
          f"(worst {np.min(scores):.2f}; identity {np.mean(psnr(val, target)):.2f}) in {time.time() - t0:.0f} s")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
