"""Channel groups of the student: GS sparsity (proximal L1), MAC-budget pruning and compaction.

The student's `groups()` table is the dependency graph: each group names the units that produce
its channels and the units that read them (the residual trunk is one group across every add).
Everything here works on that table, never on per-architecture code.
"""
from __future__ import annotations

from dataclasses import replace
from typing import Callable

import torch

from .colour import ColourHead
from .quant import ActQuant
from .student import TRUNK, StudentGenerator, StudentUnit
from .zoo.spec import GeneratorSpec, UnitSpec

MIN_CHANNELS = 4


def cost_per_channel(student: StudentGenerator, measure: Callable[[], float]) -> dict[str, float]:
    """How much `measure()` (MACs, parameters) drops when one channel of each group dies."""
    base = measure()
    costs = {}
    for name in student.groups():
        alive = student.alive_of(name)
        idx = alive.nonzero().flatten()
        if len(idx) <= 1:
            costs[name] = 0.0
            continue
        alive[idx[0]] = 0
        costs[name] = float(base - measure())
        alive[idx[0]] = 1
    return costs


def mac_cost_per_channel(student: StudentGenerator, height: int, width: int) -> dict[str, float]:
    """MACs one channel of each group costs (as output of its producers and input of its consumers)."""
    return cost_per_channel(student, lambda: student.macs(height, width))


@torch.no_grad()
def proximal_step(student: StudentGenerator, lr: float, rho: float, weights: dict[str, float] | None = None) -> None:
    """GS sparsity: gamma <- sign(gamma) * max(|gamma| - rho * w_g * lr, 0); zeros become dead channels.

    The trunk gate is kept non-negative (it multiplies ReLU outputs, so it must commute with them).
    """
    for name in student.groups():
        scale, alive = student.scale_of(name), student.alive_of(name)
        thr = rho * lr * (weights or {}).get(name, 1.0)
        shrunk = scale.abs().sub(thr).clamp_min(0)
        scale.copy_(shrunk if name == TRUNK else scale.sign() * shrunk)
        scale.mul_(alive)
        keep_min_alive(scale, alive)


def keep_min_alive(scale: torch.Tensor, alive: torch.Tensor, minimum: int = MIN_CHANNELS) -> None:
    """Mark zeroed channels dead, but never fewer than `minimum` alive (largest |scale| survive)."""
    candidate = (scale != 0).float() * alive
    if candidate.sum() < minimum:
        keep = (scale.abs() + alive * 1e-12).topk(min(minimum, int(alive.sum()))).indices
        candidate[keep] = 1
        dead_kept = keep[scale[keep] == 0]
        scale[dead_kept] = 1e-3
    alive.copy_(candidate)
    scale.mul_(alive)


def channel_scores(student: StudentGenerator, reference: dict[str, float]) -> dict[str, torch.Tensor]:
    """Importance of each channel: |gamma| relative to its group's mean |gamma| at the start."""
    return {name: student.scale_of(name).detach().abs() / max(reference[name], 1e-12) for name in student.groups()}


def initial_reference(student: StudentGenerator) -> dict[str, float]:
    return {name: float(student.scale_of(name).detach().abs().mean()) for name in student.groups()}


@torch.no_grad()
def prune_to_budget(student: StudentGenerator, target_macs: float, reference: dict[str, float],
                    height: int, width: int, target_params: float | None = None) -> int:
    """Kill the least important channels (global ranking) until MACs <= target (and params <= target).

    Per-channel costs shrink as neighbouring groups shrink, so the estimates are refreshed in
    rounds until the exact counts meet the budgets (or every group is at its minimum).
    Returns the number of channels pruned.
    """
    def over(macs: float, params: float) -> bool:
        return macs > target_macs or (target_params is not None and params > target_params)

    pruned = 0
    while over(macs := student.macs(height, width), params := student.slim_params()):
        scores = channel_scores(student, reference)
        mac_cost = mac_cost_per_channel(student, height, width)
        param_cost = cost_per_channel(student, student.slim_params)
        candidates = sorted((float(scores[g][c]), g, c)
                            for g in scores for c in student.alive_of(g).nonzero().flatten().tolist())
        before = pruned
        for _score, group, c in candidates:
            if not over(macs, params) or pruned - before >= 64:
                break
            alive = student.alive_of(group)
            if int(alive.sum()) <= MIN_CHANNELS:
                continue
            alive[c] = 0
            student.scale_of(group)[c] = 0
            macs -= mac_cost[group]
            params -= param_cost[group]
            pruned += 1
        if pruned == before:
            break
    return pruned


def budget_schedule(step: int, start: int, end: int, full: float, target: float) -> float:
    """Cubic decay of the MAC budget from `full` at `start` to `target` at `end` (Zhu & Gupta 2017)."""
    if step <= start:
        return full
    if step >= end:
        return target
    frac = (step - start) / max(end - start, 1)
    return target + (full - target) * (1 - frac) ** 3


# ---------- compaction: physically drop dead channels from the student during training ----------
def _slice_unit(old: StudentUnit, new: StudentUnit, out_idx: torch.Tensor, in_idx: torch.Tensor) -> None:
    conv_out = out_idx
    if old.spec.kind == "up":
        conv_out = (out_idx[:, None] * 4 + torch.arange(4)).flatten()
    new.weight.data.copy_(old.weight.data[conv_out][:, in_idx])
    new.bias.data.copy_(old.bias.data[conv_out])
    new.source.copy_(old.source[out_idx.to(old.source.device)])
    if old.image_norm is not None:
        _copy_quant(old.conv_quant, new.conv_quant)  # the norm's ramps are constants, equal in both
        for q_old, q_new in zip(old.image_norm.quantisers(), new.image_norm.quantisers()):
            _copy_quant(q_old, q_new)
        new.image_norm.quantise = old.image_norm.quantise
    for name in ("gamma", "beta", "mu", "sigma", "alive"):
        if hasattr(old, name) and getattr(old, name) is not None:
            getattr(new, name).data.copy_(getattr(old, name).data[out_idx])
    _copy_quant(old.out_quant, new.out_quant)
    if old.pre_quant is not None:
        _copy_quant(old.pre_quant, new.pre_quant)
    new.quantise = old.quantise


def _copy_quant(old: ActQuant, new: ActQuant) -> None:
    """Range buffers and the (non-persistent) switches of an activation quantiser: on/off, observing,
    and the fraction of the observed range its grid covers."""
    new.load_state_dict(old.state_dict())
    new.enabled, new.observing, new.range_fraction = old.enabled, old.observing, old.range_fraction


@torch.no_grad()
def compact(student: StudentGenerator) -> StudentGenerator:
    """A smaller StudentGenerator holding only alive channels; same function, fewer MACs to train."""
    groups = student.groups()
    alive = {g: student.alive_of(g).cpu() for g in groups}  # index arithmetic on the CPU, any training device
    out_idx = {p: alive[g].nonzero().flatten() for g, grp in groups.items() for p in grp.producers}
    in_idx = {c: alive[g].nonzero().flatten() for g, grp in groups.items() for c in grp.consumers}
    spec = student.gen_spec

    def resize(u: UnitSpec) -> UnitSpec:
        cin = len(in_idx[u.name]) if u.name in in_idx else u.in_ch
        cout = len(out_idx[u.name]) if u.name in out_idx else u.out_ch
        return replace(u, in_ch=cin, out_ch=cout)

    new_spec = GeneratorSpec(spec.arch, tuple(resize(u) for u in spec.stem),
                             tuple((resize(a), resize(b)) for a, b in spec.blocks),
                             tuple(resize(u) for u in spec.tail), spec.input_bgr, dict(spec.extra))
    new = StudentGenerator(new_spec)
    for u in spec.units():
        cin_full = torch.arange(u.in_ch)
        cout_full = torch.arange(u.out_ch)
        _slice_unit(student.unit(u.name), new.unit(u.name), out_idx.get(u.name, cout_full),
                    in_idx.get(u.name, cin_full))
    trunk = alive[TRUNK].nonzero().flatten()
    new.trunk_gate.data.copy_(student.trunk_gate.data[trunk.to(student.trunk_gate.device)])
    _copy_quant(student.input_quant, new.input_quant)
    for q_old, q_new in zip(student.add_quants, new.add_quants):
        _copy_quant(q_old, q_new)
    if student.colour is not None:
        _slice_colour(student.colour, new.attach_colour_head(student.colour.hidden), alive[TRUNK])
    new.train(student.training)
    return new


@torch.no_grad()
def _slice_colour(old: ColourHead, new: ColourHead, trunk_alive: torch.Tensor) -> None:
    """Copy a colour head, keeping only the features of alive trunk channels."""
    cols = ColourHead.feature_columns(trunk_alive)
    new.w1.copy_(old.w1[:, cols])
    new.f_mu.copy_(old.f_mu[cols])
    new.f_sd.copy_(old.f_sd[cols])
    for name in ("b1", "wg", "bg", "wt", "bt"):
        getattr(new, name).copy_(getattr(old, name))
    for q_old, q_new in zip(old.quantisers(), new.quantisers()):
        _copy_quant(q_old, q_new)
    new.quantise = old.quantise


def layer_report(student: StudentGenerator, original: dict[str, tuple[int, int]], height: int, width: int) -> list[dict]:
    """Per unit: kept/original output channels and MACs (for logs and metrics.json)."""
    from .macs import count_spec_macs

    counts = student.channel_counts()
    macs = count_spec_macs(student.gen_spec, counts, height, width, up_kernel=2)
    return [{"unit": u.name, "out_channels": counts[u.name][1], "original_out_channels": original[u.name][1],
             "in_channels": counts[u.name][0], "macs": macs[u.name]} for u in student.gen_spec.units()]


def log_budget(macs: float) -> str:
    return f"{macs / 2 ** 30:.2f}G" if macs >= 2 ** 27 else f"{macs / 1e6:.1f}M"

