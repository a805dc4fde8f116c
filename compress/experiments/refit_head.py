"""Refit a trained student's colour head with its preset's current head phase and write both files again.

    python -m compress.experiments.refit_head --student pipeline/baselines/standard_student.pt \\
        --metrics pipeline/baselines/standard_metrics.json [--cache DIR] [--head-steps N] \\
        [--head-view-photos N] [--threads 2]

The head is the last phase of a gs-compress run and trains on the frozen, compacted student alone
(compress/trainer.py, `head_phase`), so when a preset's head settings change (n_jitter, jitter_size,
head_steps, head_ensemble, head photos) a committed student gets the head a new run of that preset
would fit without retraining its trunk: this labels the preset's head views (compress/views.py,
`label_views`) and runs `head_phase` on the student, then rewrites student.pt and metrics.json in place
(atomically) with the new quality, head and config. The label bank is not needed: its views are
smaller than `jitter_size` in the presets that use it, so views.head_views takes no tiles of them
(checked). `--cache DIR` keeps the labelled views (gs-compress's RUN_DIR/cache/teacher_views.pt) for
a re-run; `--head-steps N` and `--head-view-photos N` override the preset's head steps and the number of
photos its head views are cut from (experiments: the files then record the override).
"""
from __future__ import annotations

import argparse
import json
import sys
import tempfile
import time
from dataclasses import replace
from pathlib import Path

import torch

from gs_contract import write_json_atomic

from ..checkpoint import load_student, save_student
from ..config import PRESETS, TrainConfig, non_negative_int, positive_int
from ..errors import GsError
from ..evaluate import evaluate_student
from ..teachers import load_teacher
from ..trainer import apply_phase, head_phase
from ..views import label_views, load_photos

HEAD_FIELDS = ("colour_head", "n_jitter", "jitter_size", "jitter_zoom", "head_steps", "head_ensemble",
               "head_photos", "head_view_photos")


def head_config(run_config: dict, head_steps: int | None = None, head_view_photos: int | None = None) -> TrainConfig:
    """The run's config with the head settings of its preset as the preset is now (and the overrides)."""
    cfg = TrainConfig.from_dict(run_config)
    preset = PRESETS[cfg.preset]
    cfg = replace(cfg, **{f: getattr(preset, f) for f in HEAD_FIELDS})
    cfg = replace(cfg, head_steps=head_steps or cfg.head_steps,
                  head_view_photos=cfg.head_view_photos if head_view_photos is None else head_view_photos)
    if cfg.bank_views and cfg.crop >= cfg.jitter_size:
        raise GsError(f"the {cfg.preset} preset's head also trains on tiles of its {cfg.crop} px label-bank views "
                      f"(jitter_size {cfg.jitter_size}); refit it with a full gs-compress run")
    return cfg


def quality(student: torch.nn.Module, views: dict) -> dict:
    ev = evaluate_student(student, views["val_inputs"].float(), views["val_targets"].float())
    return {k: ev[k] for k in ("fp32", "fakequant", "identity_baseline")}


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(prog="python -m compress.experiments.refit_head", description=__doc__.split("\n\n")[0])
    p.add_argument("--student", type=Path, required=True, help="student.pt written by gs-compress (rewritten)")
    p.add_argument("--metrics", type=Path, required=True, help="its metrics.json (rewritten)")
    p.add_argument("--cache", type=Path, default=None, help="keep the labelled views here (default: a temporary folder)")
    p.add_argument("--head-steps", type=positive_int, default=None, help="override the preset's head steps")
    p.add_argument("--head-view-photos", type=non_negative_int, default=None, metavar="N",
                   help="cut the head views from N photos instead of the preset's number (0: from all)")
    p.add_argument("--threads", type=int, default=2)
    a = p.parse_args(argv)
    torch.set_num_threads(a.threads)
    try:
        student, payload = load_student(a.student)
        metrics = json.loads(a.metrics.read_text())
        if not isinstance(metrics, dict) or metrics.get("quality") != payload.get("metrics", {}).get("quality"):
            raise GsError(f"{a.metrics} and {a.student} come from different runs (their qualities differ)")
        cfg = head_config(payload["config"], a.head_steps, a.head_view_photos)
        teacher = load_teacher(cfg.teacher, cfg.arch)
        photos = load_photos(cfg.data)
    except (GsError, OSError, json.JSONDecodeError) as exc:
        print(f"refit_head: {exc}", file=sys.stderr)
        return 1
    t0 = time.time()
    with tempfile.TemporaryDirectory() as tmp:
        cache = a.cache or Path(tmp)
        cache.mkdir(parents=True, exist_ok=True)
        views = label_views(teacher.model.eval(), photos, cfg, cache, show=True)
    print(f"head views labelled in {time.time() - t0:.0f} s", flush=True)
    student.colour = None
    apply_phase(student, cfg, cfg.steps)  # as gs-compress leaves it before its head phase
    without = quality(student, views)
    colour_head = head_phase(student, views, cfg, "cpu", True, without)
    student.eval()
    q = quality(student, views)
    size = cfg.eval_size
    macs, params = student.macs(size, size), student.slim_params()
    metrics.update(config=cfg.to_dict(), quality=q, student_macs=macs, student_params=params,
                   macs_ratio=metrics["teacher_macs"] / macs, params_ratio=metrics["teacher_params"] / params,
                   colour_head=colour_head)
    save_student(a.student, student, **{k: v for k, v in payload.items() if k not in (
        "format", "version", "arch", "spec", "state_dict", "config", "metrics")},
        config=cfg.to_dict(), metrics={"student_macs": macs, "student_params": params, "quality": q})
    write_json_atomic(a.metrics, metrics)
    print(f"fake-quant {q['fakequant']['psnr']:.2f} dB, fp32 {q['fp32']['psnr']:.2f} dB "
          f"(without the head {without['fakequant']['psnr']:.2f} dB; identity {q['identity_baseline']['psnr']:.2f} dB) "
          f"in {time.time() - t0:.0f} s", flush=True)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
