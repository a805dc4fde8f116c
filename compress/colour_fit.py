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


# the head's pixel loss to the teacher: L1, or the squared error PSNR measures
LOSSES = {"l1": F.l1_loss, "mse": F.mse_loss}


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
                    freeze_at: float = 0.9, window: int = 64, show: bool = False, hidden: int = HIDDEN,
                    weight_decay: float = 0.0, heads: int = 1) -> dict:
    """Attach a colour head to `student` and train it; returns {"steps", "views", "heads", "loss_start",
    "loss_end"} (mean L1 over the first and the last tenth of the steps, averaged over the heads).

    The head sees each view's pooled statistics whole; the loss is taken on a random `window`-pixel
    square of the output (an unbiased estimate at a quarter of the cost for 128 px views). Fake
    quantisation is on from `qat_from` of the steps (ranges are observed from the start) and the
    ranges freeze at `freeze_at`: the full-resolution fake-quant ops dominate a step's time.
    With `heads` > 1 that many heads are fitted (seeds seed, seed + 1, ...) and merged into one head
    computing their mean grade (ColourHead.merge), whose activation ranges are then observed on the
    views: the heads' errors on unseen photos partly cancel (docs/RESULTS.md).
    """
    was_training = student.training
    student.eval()
    pooled, pres = head_inputs(student, inputs)
    fits = fit_heads(student, pooled, pres, targets, steps, heads, seed=seed, batch=batch, lr=lr, qat_from=qat_from,
                     freeze_at=freeze_at, window=window, show=show, hidden=hidden, weight_decay=weight_decay)
    student.train(was_training)
    return {"steps": steps, "views": len(pres), "heads": heads,
            **{k: sum(f[k] for f in fits) / heads for k in ("loss_start", "loss_end")}}


def fit_heads(student: StudentGenerator, pooled: torch.Tensor, pres: torch.Tensor, targets: torch.Tensor,
              steps: int, heads: int, seed: int = 0, **settings: object) -> list[dict]:
    """`heads` heads fitted by train_head (seeds seed, seed + 1, ...) on precomputed head_inputs and
    attached to `student` as one merged head (its ranges observed afresh); each head's train_head record."""
    fits, fitted = [], []
    for k in range(heads):
        fits.append(train_head(student, pooled, pres, targets, steps, seed=seed + k, **settings))
        fitted.append(student.colour)
    if heads > 1:
        student.colour = ColourHead.merge(fitted)
        observe_head_ranges(student, pooled, pres)
    return fits


@torch.no_grad()
def observe_head_ranges(student: StudentGenerator, pooled: torch.Tensor, pres: torch.Tensor, batch: int = 32) -> None:
    """Observe the activation ranges of the student's head afresh on (pooled, pres) (EMA over batches)."""
    head = student.colour
    for q in head.quantisers():
        q.initialised.fill_(False)
    head.train()
    freeze_ranges(head, False)
    momenta = [q.momentum for q in head.quantisers()]
    for q in head.quantisers():
        q.momentum = 0.1
    for i in range(0, len(pres), batch):
        graded(head, pooled[i:i + batch], pres[i:i + batch], student.trunk_alive)
    for q, m in zip(head.quantisers(), momenta):
        q.momentum = m
    freeze_ranges(head, True)
    head.eval()


def train_head(student: StudentGenerator, pooled: torch.Tensor, pres: torch.Tensor, targets: torch.Tensor,
               steps: int, batch: int = 32, lr: float = 1e-3, seed: int = 0, qat_from: float = 0.7,
               freeze_at: float = 0.9, window: int = 64, show: bool = False, hidden: int = HIDDEN,
               weight_decay: float = 0.0, head: ColourHead | None = None, loss: str = "l1",
               feature_noise: float = 0.0) -> dict:
    """`fit_colour_head`'s loop on precomputed `head_inputs` (pooled, pres) of the frozen student in eval
    mode; `weight_decay` is AdamW's decoupled decay of the head's weights; `feature_noise` adds Gaussian
    noise of that many feature standard deviations to the pooled features of each training batch (a
    smoother head for photos whose statistics lie outside the views'). With `head` given, that head
    is trained on `pooled` as they are (every column, whatever features they hold) and not attached:
    experiments use it to try other pooled features."""
    from tqdm import tqdm

    torch.manual_seed(seed)
    alive = None if head is not None else student.trunk_alive
    head = head if head is not None else student.attach_colour_head(hidden)
    head.calibrate(pooled)
    head.train()
    out_quant = student.unit(student.gen_spec.tail[-1].name).out_quant
    opt = torch.optim.AdamW(head.parameters(), lr=lr, weight_decay=weight_decay)
    gen = torch.Generator().manual_seed(seed)
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
        features = pooled[idx]
        if feature_noise:
            features = features + feature_noise * head.f_sd.view(1, -1, 1, 1) * torch.randn(
                features.shape, generator=gen)
        out = graded(head, features, pres[idx, :, y0:y0 + window, x0:x0 + window], alive,
                     out_quant if quantise else None)
        err = LOSSES[loss](out, targets[idx, :, y0:y0 + window, x0:x0 + window].float())
        opt.zero_grad(set_to_none=True)
        err.backward()
        opt.step()
        losses.append(float(err.detach()))
    head.eval()
    tenth = max(1, steps // 10)
    return {"steps": steps, "loss_start": sum(losses[:tenth]) / tenth, "loss_end": sum(losses[-tenth:]) / tenth}


def graded(head: ColourHead, pooled: torch.Tensor, pres: torch.Tensor, trunk_alive: torch.Tensor | None,
           out_quant: torch.nn.Module | None = None) -> torch.Tensor:
    """The student's output from its head pre-activations `pres` graded by `head` on `pooled` features
    (the output quantiser applied when given), as StudentGenerator.forward computes it."""
    gain, shift = head.modulation_of_pooled(pooled, trunk_alive)
    out = torch.tanh(head.grade(pres.float(), gain, shift))
    return out_quant(out) if out_quant is not None else out
