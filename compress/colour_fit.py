"""Fit the colour head of a trained student on teacher-labelled views (the last gs-compress phase).

The GS-trained student is frozen; its trunk statistics and head pre-activations are computed once
for every view, then only the small head trains (pixel L1 to the teacher, fake-quantised as
exported). Deterministic for a given seed, so a resumed run refits the same head.
"""
from __future__ import annotations

import math

import torch
import torch.nn.functional as F

from .colour import HIDDEN, ColourHead
from .quant import freeze_ranges, set_quantisation
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
                    batch: int = 32, lr: float = 1e-3, seed: int = 0, qat_from: float = 0.7,
                    freeze_at: float = 0.9, window: int = 64, show: bool = False, hidden: int = HIDDEN) -> dict:
    """Attach a colour head to `student` and train it; returns {"steps", "views", "loss_start", "loss_end"}
    (mean L1 over the first and the last tenth of the steps).

    The head sees each view's pooled statistics whole; the loss is taken on a random `window`-pixel
    square of the output (an unbiased estimate at a quarter of the cost for 128 px views). Fake
    quantisation is on from `qat_from` of the steps (ranges are observed from the start) and the
    ranges freeze at `freeze_at`: the full-resolution fake-quant ops dominate a step's time.
    """
    from tqdm import tqdm

    was_training = student.training
    student.eval()
    pooled, pres = head_inputs(student, inputs)
    torch.manual_seed(seed)
    head = student.attach_colour_head(hidden)
    head.calibrate(pooled)
    head.train()
    out_quant = student.unit(student.gen_spec.tail[-1].name).out_quant
    opt = torch.optim.Adam(head.parameters(), lr=lr)
    gen = torch.Generator().manual_seed(seed)
    alive = student.trunk_alive
    size = pres.shape[-1]
    window = min(window, size)
    losses = []
    for step in tqdm(range(steps), desc="colour head", unit="step", disable=not show, dynamic_ncols=True):
        quantise = step >= int(qat_from * steps)
        set_quantisation(head, quantise)
        freeze_ranges(head, step >= int(freeze_at * steps))
        for g in opt.param_groups:  # cosine decay: the last steps average out batch noise
            g["lr"] = lr * 0.5 * (1 + math.cos(math.pi * step / max(steps, 1)))
        idx = torch.randint(len(pres), (min(batch, len(pres)),), generator=gen)
        y0, x0 = torch.randint(size - window + 1, (2,), generator=gen).tolist()
        gain, shift = head.modulation_of_pooled(pooled[idx], alive)
        pre = pres[idx, :, y0:y0 + window, x0:x0 + window].float()
        out = torch.tanh(head.grade(pre, gain, shift))
        out = out_quant(out) if quantise else out
        loss = F.l1_loss(out, targets[idx, :, y0:y0 + window, x0:x0 + window].float())
        opt.zero_grad(set_to_none=True)
        loss.backward()
        opt.step()
        losses.append(float(loss.detach()))
    head.eval()
    student.train(was_training)
    tenth = max(1, steps // 10)
    return {"steps": steps, "views": len(pres), "loss_start": sum(losses[:tenth]) / tenth,
            "loss_end": sum(losses[-tenth:]) / tenth}
