"""How far a student's colour head is from its own ceiling, and what limits it.

    python -m compress.experiments.head_probe [--student pipeline/baselines/standard_student.pt]
        [--refit 64:4800 128:1600 256:400 256:400:6 256:400:11] [--seed 0] [--head-seeds 1]
        [--extra-images DIR] [--hidden 64] [--threads 2]

Oracle rows (no training): on each default val photo (256 px) the few numbers of one per-image grade
are fitted by L-BFGS to the teacher's output (mean squared error), the student's trunk frozen and
fake-quantised:
  gain/shift on the pre-activation   tanh(pre * g + t), g, t per channel: the colour head's own form
  3x4 map on the pre-activation      tanh(M pre + t): a full colour matrix in the same place
  3x4 map on the input               clip(M x + t): a colour grade of the photo, no network at all
The learned head predicts its gain/shift from the pooled trunk; the gap between its row and the first
oracle row is what that prediction loses.

Refit rows (`--refit S:N[:K] ...`): the student's head is fitted again, as gs-compress fits it
(compress.colour_fit, same steps), on N teacher-labelled views of S px (compress.data.jittered_views:
crops of the train photos, 70% colour-jittered), from the first K train photos (default: all 22).
Teacher labelling cost grows with S^2 N, so 64:4800, 128:1600 and 256:400 cost about the same. Each
row gives the val PSNR and the PSNR on 200 of the views the head was fitted on (under-fitting shows
as both low, over-fitting as a gap); rows with fewer photos K show how the head's generalisation to
new photos grows with the number of distinct photos. `--head-seeds K` fits K heads per row and
evaluates their merge (`ColourHead.merge`: an ensemble that is itself one wider head). `--bank-mix P`
refits on the label bank's views instead (compress.bank.make_view: photometric changes and a
fraction P of two-photo mixes, blends or halves): do synthetic scenes stand in for more photos?
`--extra-images DIR` adds every image of a folder (searched recursively) to the refit rows' photos, so
one row's views are drawn from the first K train photos and those images alike: do other photos, or
images that are not photos, teach the head the grade of the val photos? Each refit row also fits the
oracle gain/shift on 200 of its views (what a head could reach on them); `--hidden H` refits heads of
H hidden units (gs-compress: 64): does a wider head fit its own views, and does that carry to val?
"""
from __future__ import annotations

import argparse
import copy
import time
from pathlib import Path
from typing import Callable

import numpy as np
import torch

from ..bank import ViewRecipe, make_view
from ..checkpoint import load_student
from ..colour import HIDDEN, ColourHead
from ..colour_fit import fit_colour_head, head_inputs
from ..config import TrainConfig
from ..data import build_default_photos, jittered_views, load_photo_folder, val_batch
from ..errors import GsError
from ..evaluate import psnr, run_batched
from ..quant import set_quantisation
from ..student import StudentGenerator
from ..teachers import load_teacher

DEFAULT_STUDENT = Path(__file__).resolve().parents[2] / "pipeline" / "baselines" / "standard_student.pt"
Grade = Callable[[torch.Tensor], torch.Tensor]  # per-image parameters [B, ...] -> graded images


def affine(images: torch.Tensor) -> Grade:
    """Per-image 3x4 colour maps [B, 3, 4] applied to `images` [B, 3, H, W]."""
    return lambda p: torch.einsum("bck,bkhw->bchw", p[:, :, :3], images) + p[:, :, 3:, None]


def identity_maps(n: int) -> torch.Tensor:
    """[n, 3, 4] identity colour maps."""
    return torch.cat([torch.eye(3), torch.zeros(3, 1)], 1).expand(n, 3, 4).clone()


def fit_grade(grade: Grade, init: torch.Tensor, target: torch.Tensor, iters: int = 400) -> torch.Tensor:
    """The graded images after L-BFGS on the per-image parameters (images do not interact: the summed
    squared error separates per image)."""
    p = init.clone().requires_grad_(True)
    opt = torch.optim.LBFGS([p], max_iter=iters, line_search_fn="strong_wolfe")

    def closure() -> torch.Tensor:
        opt.zero_grad()
        loss = ((grade(p) - target) ** 2).mean()
        loss.backward()
        return loss

    opt.step(closure)
    with torch.no_grad():
        return grade(p)


def oracle_gain_shift(pre: torch.Tensor, target: torch.Tensor) -> list[float]:
    """Per-image PSNR of tanh(pre * g + t) with the per-channel g, t fitted to `target` (the colour
    head's own form, its numbers chosen by an oracle)."""
    n = len(pre)
    gain_shift = torch.cat([torch.ones(n, 3), torch.zeros(n, 3)], 1)
    return psnr(fit_grade(lambda p: torch.tanh(pre * p[:, :3, None, None] + p[:, 3:, None, None]),
                          gain_shift, target), target)


def oracle_rows(student: StudentGenerator, val: torch.Tensor, target: torch.Tensor) -> dict[str, list[float]]:
    """Per-photo val PSNR of the student with and without its head, and of each oracle grade."""
    with torch.no_grad():
        rows = {"identity (the input)": psnr(val, target),
                "student with its learned head": psnr(run_batched(student, val), target)}
        head, student.colour = student.colour, None
        rows["student without head"] = psnr(run_batched(student, val), target)
        _, pre = head_inputs(student, val)
        student.colour = head
    pre, n = pre.float(), len(val)
    rows["oracle gain/shift on the pre-activation"] = oracle_gain_shift(pre, target)
    rows["oracle 3x4 map on the pre-activation"] = psnr(fit_grade(
        lambda p: torch.tanh(affine(pre)(p)), identity_maps(n), target), target)
    rows["oracle 3x4 map on the input"] = psnr(fit_grade(
        lambda p: affine(val)(p).clamp(-1, 1), identity_maps(n), target), target)
    return rows


def labelled_views(teacher: torch.nn.Module, photos: list, size: int, n: int, seed: int = 0,
                   bank_mix: float | None = None) -> tuple[torch.Tensor, torch.Tensor]:
    """`n` views of `size` px of `photos` and the teacher's outputs for them: jittered crops, or with
    `bank_mix` the label bank's views (compress.bank.make_view) with that fraction of two-photo mixes."""
    if bank_mix is None:
        views = jittered_views(photos, n, size, seed, TrainConfig.jitter_zoom)
    else:
        recipe = ViewRecipe(size=size, seed=seed, p_mix=bank_mix)
        views = torch.stack([make_view(photos, recipe, i) for i in range(n)])
    with torch.no_grad():
        return views, run_batched(teacher, views, batch=8)


def refit_head(student: StudentGenerator, views: torch.Tensor, labels: torch.Tensor, seed: int,
               hidden: int = HIDDEN) -> StudentGenerator:
    """A copy of `student` with a head of `hidden` units fitted as gs-compress fits it (same steps)."""
    refit = copy.deepcopy(student)
    refit.colour = None
    fit_colour_head(refit, views, labels, steps=3000, seed=seed, hidden=hidden)
    return refit.eval()


def mean_db(model: torch.nn.Module, images: torch.Tensor, target: torch.Tensor) -> float:
    with torch.no_grad():
        return float(np.mean(psnr(run_batched(model, images), target)))


def fp32_head_db(student: StudentGenerator, head: ColourHead, val: torch.Tensor, target: torch.Tensor) -> float:
    """Val PSNR of `student` (its trunk fake-quantised) with `head` in float."""
    graded = copy.deepcopy(student)
    graded.colour = copy.deepcopy(head)
    set_quantisation(graded.colour, False)
    return mean_db(graded, val, target)


def refit_spec(text: str) -> tuple[int, int, int | None]:
    """'S:N' or 'S:N:K' -> (S, N, K or None = every train photo)."""
    try:
        values = [int(v) for v in text.split(":")]
        if len(values) not in (2, 3) or min(values) < 1:
            raise ValueError
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not SIZE:VIEWS[:PHOTOS], e.g. 64:4800 or 256:400:11") from None
    return values[0], values[1], (values[2] if len(values) == 3 else None)


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(prog="python -m compress.experiments.head_probe", description=__doc__.split("\n\n")[0])
    p.add_argument("--student", type=Path, default=DEFAULT_STUDENT, help="a student.pt with a colour head")
    p.add_argument("--refit", type=refit_spec, nargs="*", default=[], metavar="S:N[:K]",
                   help="refit the head on N views of S px from the first K train photos (default all)")
    p.add_argument("--seed", type=int, default=0, help="seed of the refit views and of the first head")
    p.add_argument("--head-seeds", type=int, default=1,
                   help="fit this many heads per refit row (seeds SEED..SEED+K-1) and report their merge")
    p.add_argument("--bank-mix", type=float, default=None, metavar="P",
                   help="refit on the label bank's views with this fraction of two-photo mixes instead of "
                        "jittered crops")
    p.add_argument("--extra-images", type=Path, default=None, metavar="DIR",
                   help="add every image in DIR to the refit rows' train photos (after the first K)")
    p.add_argument("--hidden", type=int, default=HIDDEN,
                   help=f"hidden units of the refitted heads (gs-compress: {HIDDEN})")
    p.add_argument("--threads", type=int, default=2)
    a = p.parse_args(argv)
    if a.head_seeds < 1 or a.hidden < 1:
        p.error(f"--head-seeds {a.head_seeds} --hidden {a.hidden}: both must be at least 1")
    try:
        student, _ = load_student(a.student)
        extra = [] if a.extra_images is None else load_photo_folder(a.extra_images).images
    except GsError as exc:
        p.error(str(exc))
    student.eval()
    torch.set_num_threads(a.threads)
    teacher = load_teacher("default").model.eval()
    photos = build_default_photos()
    val = val_batch(photos.subset("val"), 256)
    with torch.no_grad():
        target = run_batched(teacher, val)
    rows = oracle_rows(student, val, target)
    identity = rows["identity (the input)"]
    for name, per_photo in rows.items():
        below = sum(db < base for db, base in zip(per_photo, identity))
        print(f"{name:42s} {np.mean(per_photo):6.2f} dB  worst photo {min(per_photo):6.2f}  "
              f"below identity {below} of {len(per_photo)}", flush=True)
    train = photos.subset("train")
    for size, n, k in a.refit:
        t0 = time.time()
        sources = list(train[:k]) + extra
        views, labels = labelled_views(teacher, sources, size, n, a.seed, a.bank_mix)
        kind = "jittered" if a.bank_mix is None else f"bank (p_mix {a.bank_mix:g})"
        print(f"{n} {kind} views of {size} px from {len(train[:k])} photos + {len(extra)} extra images "
              f"labelled in {time.time() - t0:.0f} s", flush=True)
        with torch.no_grad():
            _, pre = head_inputs(student, views[:200])
        print(f"  oracle gain/shift on 200 of these views: {np.mean(oracle_gain_shift(pre.float(), labels[:200])):.2f} dB "
              "(what a head could reach on them)", flush=True)
        refits = []
        for seed in range(a.seed, a.seed + a.head_seeds):
            refits.append(refit_head(student, views, labels, seed, a.hidden))
            print(f"  head seed {seed}: val {mean_db(refits[-1], val, target):.2f} dB, on its fitted views "
                  f"{mean_db(refits[-1], views[:200], labels[:200]):.2f} dB", flush=True)
        if len(refits) > 1:
            heads = [r.colour for r in refits]
            alone = [fp32_head_db(student, h, val, target) for h in heads]
            print(f"  heads in float: each {' / '.join(f'{db:.2f}' for db in alone)} dB (mean {np.mean(alone):.2f}), "
                  f"their merge {fp32_head_db(student, ColourHead.merge(heads), val, target):.2f} dB", flush=True)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
