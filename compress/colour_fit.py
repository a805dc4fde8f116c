"""Fit the colour head of a trained student on teacher-labelled views (the last gs-compress phase).

The GS-trained student is frozen; its trunk statistics and head pre-activations are computed once
for every view, then only the small head trains (pixel L1 to the teacher, fake-quantised as
exported). Deterministic for a given seed, so a resumed run refits the same head.
"""
from __future__ import annotations

import math

import torch
import torch.nn.functional as F

from .colour import ColourHead
from .quant import freeze_ranges
from .student import StudentGenerator


@torch.no_grad()
def head_inputs(student: StudentGenerator, inputs: torch.Tensor, batch: int = 16
                ) -> tuple[torch.Tensor, torch.Tensor]:
    """Pooled trunk features [N, 2C, 1, 1] and quantised head pre-activations [N, 3, H, W]."""
    pooled, pres = [], []
    for i in range(0, len(inputs), batch):
        trunk = student.encode(inputs[i:i + batch].float())
        pooled.append(ColourHead.pooled(trunk))
        captured: list[torch.Tensor] = []

        def keep(pre: torch.Tensor) -> torch.Tensor:
            captured.append(pre)
            return pre

        student.decode(trunk, keep)
        pres.append(captured[0].half())
    return torch.cat(pooled), torch.cat(pres)


def fit_colour_head(student: StudentGenerator, inputs: torch.Tensor, targets: torch.Tensor, steps: int,
                    batch: int = 32, lr: float = 1e-3, seed: int = 0, freeze_at: float = 0.85,
                    show: bool = False) -> dict:
    """Attach a colour head to `student` and train it; returns {"loss_start", "loss_end"}."""
    from tqdm import tqdm

    was_training = student.training
    student.eval()
    pooled, pres = head_inputs(student, inputs)
    torch.manual_seed(seed)
    head = student.attach_colour_head()
    head.calibrate(pooled)
    head.train()
    out_quant = student.unit(student.gen_spec.tail[-1].name).out_quant
    opt = torch.optim.Adam(head.parameters(), lr=lr)
    gen = torch.Generator().manual_seed(seed)
    alive = student.trunk_alive
    losses = []
    for step in tqdm(range(steps), desc="colour head", unit="step", disable=not show, dynamic_ncols=True):
        freeze_ranges(head, step >= int(freeze_at * steps))
        for g in opt.param_groups:  # cosine decay: the last steps average out batch noise
            g["lr"] = lr * 0.5 * (1 + math.cos(math.pi * step / max(steps, 1)))
        idx = torch.randint(len(pres), (min(batch, len(pres)),), generator=gen)
        gain, shift = head.modulation_of_pooled(pooled[idx], alive)
        out = out_quant(torch.tanh(head.grade(pres[idx].float(), gain, shift)))
        loss = F.l1_loss(out, targets[idx].float())
        opt.zero_grad(set_to_none=True)
        loss.backward()
        opt.step()
        losses.append(float(loss.detach()))
    head.eval()
    student.train(was_training)
    window = max(1, steps // 10)
    return {"steps": steps, "views": len(pres), "loss_start": sum(losses[:window]) / window,
            "loss_end": sum(losses[-window:]) / window}
