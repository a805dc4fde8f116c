"""How the colour head's fitting settings and features move val PSNR, on the views its preset labels.

    python -m compress.experiments.head_sweep --student pipeline/baselines/standard_student.pt \
        --cache DIR [DIR ...] [--view-seed 0] [--jitter-zoom Z] [--head-seeds 0 1] [--variants base ens4 ...] \
        [--features trunk stem ...] [--probe-heads K] [--reuse] [--max-views N] [--threads 2]

The head is fitted on the frozen student (compress.colour_fit.train_head) as gs-compress fits it, on
the preset's head views (compress.views.label_views with the student's run config, its head settings
as the preset has them now, and `--view-seed` in place of the run's seed: other views of the same
photos; `--jitter-zoom Z` frames them at zoom 1 to Z instead of the preset's `jitter_zoom`). The
views are labelled once into DIR/teacher_views.pt (the standard preset's 1600 views of 256 px: 16-20
min on two cores in float32, about half that in bfloat16, compress/labels.py); `--reuse` takes that file
as it is, whatever student it was labelled for (with several DIRs, their head views joined: e.g. two
view seeds' 1600 views as 3200), and `--max-views N` fits on its first N views.
The student's pooled trunk and head pre-activations are computed once, so each variant costs only
its head fit (~25 s for 3000 steps). Every variant is fitted with each `--head-seeds` seed: `base`
is one head (64 hidden units), `ens4` four heads (seeds s..s+3) merged into one wider head
(ColourHead.merge, what gs-compress fits by default), `ens8` eight, `mse_ens4`, `h32_ens4`,
`h128_ens4`, `noise0.5_ens4` and `noise1_ens4` four with one setting changed (the squared error
instead of L1, 32 or 128 hidden units each, noise of 0.5 or 1 feature standard deviations on the
pooled features), the others one head with one setting changed.
`--features` fits heads in float on other pooled features (`trunk`: the head's own, the trunk's mean
and max; `sq`, `input`, `stem` and '+'-joined sets add the trunk's second moment, the input photo's
statistics, each stem unit's mean and max; `smax4` / `smax8` take the trunk's max over its 4x4 / 8x8
averages instead of its pixels), `--probe-heads K` of them merged per seed. Prints one
JSON line per (variant, head seed): val PSNR ("val": fake-quant INT8, except for the float feature
probes), fp32, the worst photo, the photos below their identity score and the PSNR on 200 of the
views it was fitted on.
"""
from __future__ import annotations

import argparse
import copy
import json
from dataclasses import replace
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F

from ..checkpoint import load_student
from ..colour import ColourHead
from ..config import TrainConfig, positive_int
from ..colour_fit import fit_heads, graded, head_inputs, train_head
from ..errors import GsError
from ..evaluate import evaluate_student, psnr, run_batched
from ..student import StudentGenerator
from ..teachers import load_teacher
from ..trainer import apply_phase
from ..views import head_views, label_views, load_photos, read_cached_views
from .refit_head import head_config

# name -> train_head keyword arguments (steps default to the preset's head_steps)
VARIANTS: dict[str, dict] = {
    "base": {},
    "wd1": {"weight_decay": 1.0},
    "wd3": {"weight_decay": 3.0},
    "h128": {"hidden": 128},
    "steps2000": {"steps": 2000},
    "lr3e-4": {"lr": 3e-4},
    "ens4": {"ensemble": 4},
    "ens8": {"ensemble": 8},
    "mse": {"loss": "mse"},
    "mse_ens4": {"loss": "mse", "ensemble": 4},
    "h128_ens4": {"hidden": 128, "ensemble": 4},
    "h32_ens4": {"hidden": 32, "ensemble": 4},
    "noise0.5_ens4": {"feature_noise": 0.5, "ensemble": 4},
    "noise1_ens4": {"feature_noise": 1.0, "ensemble": 4},
}


# pooled features beside the trunk's mean and max a head could read (float probes): the trunk's second
# moment, the input photo's per-channel mean / max / min / second moment, each stem unit's mean and max;
# `smaxK` replaces the trunk's max by the max of its KxK averages (a max less decided by one pixel)
FEATURES = ("sq", "input", "stem", "smax4", "smax8")


@torch.no_grad()
def pooled_features(student: StudentGenerator, inputs: torch.Tensor, extra: tuple[str, ...], batch: int = 16
                    ) -> torch.Tensor:
    """[N, F, 1, 1]: the alive trunk channels' mean and max, then the `extra` FEATURES."""
    stem_outputs: list[torch.Tensor] = []
    hooks = [student.unit(u.name).register_forward_hook(lambda m, i, o: stem_outputs.append(o))
             for u in student.gen_spec.stem] if "stem" in extra else []
    smooth = [int(e[4:]) for e in extra if e.startswith("smax")]
    rows = []
    try:
        for i in range(0, len(inputs), batch):
            x = inputs[i:i + batch].float()
            stem_outputs.clear()
            trunk = student.encode(x)
            alive = trunk[:, student.trunk_alive > 0]
            f = [ColourHead.pooled(trunk).flatten(1)[:, ColourHead.feature_columns(student.trunk_alive)]]
            if smooth:
                f[0][:, alive.shape[1]:] = F.avg_pool2d(alive, smooth[0]).amax((2, 3))
            if "sq" in extra:
                f.append((alive * alive).mean((2, 3)))
            if "input" in extra:
                f += [x.mean((2, 3)), x.amax((2, 3)), x.amin((2, 3)), (x * x).mean((2, 3))]
            for o in stem_outputs:
                f += [o.mean((2, 3)), o.amax((2, 3))]
            rows.append(torch.cat(f, 1))
    finally:
        for h in hooks:
            h.remove()
    f = torch.cat(rows)
    f = torch.cat([f, torch.zeros(len(f), len(f[0]) % 2)], 1)  # ColourHead reads an even count
    return f[:, :, None, None]


def feature_probe(student: StudentGenerator, feats: torch.Tensor, pres: torch.Tensor, targets: torch.Tensor,
                  val_feats: torch.Tensor, val_pres: torch.Tensor, steps: int, seed: int, heads: int = 1
                  ) -> tuple[torch.Tensor, torch.Tensor]:
    """`heads` heads in float (seeds seed, seed + 1, ...) on pooled features `feats` (pooled_features),
    trained as gs-compress trains its head (without fake quantisation) and merged (ColourHead.merge):
    their outputs on val and on the first 200 views."""
    fitted = []
    for k in range(heads):
        torch.manual_seed(seed + k)
        head = ColourHead(feats.shape[1] // 2)
        train_head(student, feats, pres, targets, steps, seed=seed + k, qat_from=1.0, head=head)
        fitted.append(head)
    head = ColourHead.merge(fitted) if heads > 1 else fitted[0]
    with torch.no_grad():
        return graded(head, val_feats, val_pres, None), graded(head, feats[:200], pres[:200], None)


def fit_variant(student: StudentGenerator, pooled: torch.Tensor, pres: torch.Tensor, targets: torch.Tensor,
                steps: int, seed: int, settings: dict) -> None:
    """Attach and fit a head on `student` as `settings` say (compress.colour_fit.fit_heads)."""
    settings = dict(settings)
    fit_heads(student, pooled, pres, targets, settings.pop("steps", steps), settings.pop("ensemble", 1), seed,
              **settings)


def joined_views(folders: list[Path]) -> dict:
    """The cached views of `folders` (their teacher_views.pt), head views joined in order; the val
    photos must be the same in all."""
    caches = []
    for folder in folders:
        views = read_cached_views(folder / "teacher_views.pt")
        if views is None:
            raise GsError(f"--reuse: no usable {folder / 'teacher_views.pt'}")
        if caches and not torch.equal(views["val_targets"], caches[0]["val_targets"]):
            raise GsError(f"--reuse: {folder} holds other val photos than {folders[0]}; join caches of one photo set")
        caches.append(views)
    joined = dict(caches[0])
    for name in ("inputs", "targets", "jitter_inputs", "jitter_targets"):
        joined[name] = torch.cat([c[name] for c in caches])
    return joined


def zoom_factor(text: str) -> float:
    """A `--jitter-zoom` value: a number >= 1 (1 frames every view on the photo's whole short side)."""
    try:
        value = float(text)
    except ValueError:
        value = float("nan")
    if not value >= 1:
        raise argparse.ArgumentTypeError(f"expected a number >= 1, got {text!r}")
    return value


def trunk_parser(module: str, doc: str, cache_help: str) -> argparse.ArgumentParser:
    """The command line of a head experiment on a trained student: `--student` and its views' `--cache`."""
    p = argparse.ArgumentParser(prog=f"python -m {module}", description=doc.split("\n\n")[0])
    p.add_argument("--student", type=Path, required=True, help="a student.pt written by gs-compress")
    p.add_argument("--cache", type=Path, nargs="+", required=True, help=cache_help)
    return p


def frozen_trunk(path: Path) -> tuple[StudentGenerator, TrainConfig]:
    """The student of `path` without its head, as gs-compress leaves it before its head phase, and its run
    config with the head settings of its preset as the preset is now (refit_head.head_config)."""
    student, run = load_student(path)
    cfg = head_config(run["config"])
    student.colour = None
    apply_phase(student, cfg, cfg.steps)
    return student.eval(), cfg


def main(argv: list[str] | None = None) -> int:
    p = trunk_parser(__spec__.name, __doc__,
                     "folder of the labelled views (made if missing); several only with --reuse")
    p.add_argument("--view-seed", type=int, default=0, help="seed of the labelled views")
    p.add_argument("--jitter-zoom", type=zoom_factor, default=None, metavar="Z",
                   help="frame the labelled head views at zoom 1 to Z instead of the preset's jitter_zoom")
    p.add_argument("--reuse", action="store_true",
                   help="take DIR/teacher_views.pt as it is, whatever run it was labelled for (e.g. the standard "
                        "preset's head views for the quick student); several DIRs: their head views joined")
    p.add_argument("--max-views", type=positive_int, default=None, metavar="N", help="fit on the first N head views only")
    p.add_argument("--head-seeds", type=int, nargs="+", default=[0])
    p.add_argument("--variants", nargs="*", choices=sorted(VARIANTS), default=["base"])
    p.add_argument("--features", nargs="*", default=[], metavar="NAME",
                   help=f"float feature probes: 'trunk' (the head's own features) or '+'-joined extras of "
                        f"{FEATURES} (one smaxK)")
    p.add_argument("--probe-heads", type=positive_int, default=1, metavar="K",
                   help="each feature probe fits K heads (seeds s..s+K-1) merged into one, as ens4 does")
    p.add_argument("--threads", type=int, default=2)
    a = p.parse_args(argv)
    probes = {name: tuple(x for x in name.split("+") if x != "trunk") for name in a.features}
    bad = [n for n, extra in probes.items()
           if not set(extra) <= set(FEATURES) or sum(x.startswith("smax") for x in extra) > 1]
    if bad:
        p.error(f"--features {' '.join(bad)}: use 'trunk' or extras joined by '+' from {FEATURES}, one smaxK at most")
    if len(a.cache) > 1 and not a.reuse:
        p.error("several --cache folders are joined only with --reuse (views are labelled into one folder)")
    torch.set_num_threads(a.threads)
    try:
        student, cfg = frozen_trunk(a.student)
        cfg = replace(cfg, seed=a.view_seed, jitter_zoom=a.jitter_zoom or cfg.jitter_zoom)
        if a.reuse:
            views = joined_views(a.cache)
        else:
            a.cache[0].mkdir(parents=True, exist_ok=True)
            teacher = load_teacher(cfg.teacher, cfg.arch).model.eval()
            views = label_views(teacher, load_photos(cfg.data), cfg, a.cache[0], show=True)
    except GsError as exc:
        p.error(str(exc))
    inputs, targets = head_views(views, views["jitter_inputs"].shape[-1])
    inputs, targets = inputs[:a.max_views], targets[:a.max_views]
    pooled, pres = head_inputs(student, inputs)
    val, val_t = views["val_inputs"].float(), views["val_targets"].float()
    identity = psnr(val, val_t)

    def report(name: str, seed: int, fq: list[float], **more: float) -> None:
        print(json.dumps({"student": a.student.name, "views": len(inputs), "variant": name, "view_seed": a.view_seed,
                          "head_seed": seed,
                          "val": round(float(np.mean(fq)), 3), **more, "worst": round(min(fq), 2),
                          "below_identity": sum(d < b for d, b in zip(fq, identity))}), flush=True)

    _, val_pres = head_inputs(student, val)
    for name, extra in probes.items():
        feats, val_feats = pooled_features(student, inputs, extra), pooled_features(student, val, extra)
        for seed in a.head_seeds:
            val_out, fit_out = feature_probe(student, feats, pres, targets, val_feats, val_pres, cfg.head_steps, seed,
                                             a.probe_heads)
            report(f"features {name} (head in float, {a.probe_heads} merged)", seed, psnr(val_out, val_t),
                   fitted_views=round(float(np.mean(psnr(fit_out, targets[:200].float()))), 3))
    for name in a.variants:
        for seed in a.head_seeds:
            model = copy.deepcopy(student)
            fit_variant(model, pooled, pres, targets, cfg.head_steps, seed, VARIANTS[name])
            ev = evaluate_student(model, val, val_t)
            with torch.no_grad():
                fitted = psnr(run_batched(model, inputs[:200].float()), targets[:200].float())
            report(name, seed, ev["fakequant"]["psnr_per_image"], val_fp32=round(ev["fp32"]["psnr"], 3),
                   fitted_views=round(float(np.mean(fitted)), 3))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
