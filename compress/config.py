"""Training configuration and the named presets (quick: 2-core CPU, ~29 min; standard: 2-core CPU, ~85 min;
paper: GPU)."""
from __future__ import annotations

import math
from argparse import ArgumentTypeError
from dataclasses import asdict, dataclass, fields, replace
from typing import Callable

from .errors import GsError

G = 2 ** 30  # the paper's "G" of MACs
# how a student normalises (compress/student.py): folded population statistics, the INT8 per-image
# normalisation (compress/image_norm.py), or its float upper bound (exact InstanceNorm; not exportable)
FIXED_NORM, IMAGE_NORM, EXACT_IMAGE_NORM = "fixed", "image", "image-exact"
NORMS = (FIXED_NORM, IMAGE_NORM, EXACT_IMAGE_NORM)


@dataclass(frozen=True)
class TrainConfig:
    """Everything a run depends on; stored in every checkpoint so --resume continues identically."""

    preset: str = "quick"
    teacher: str = "default"
    arch: str | None = None
    data: str = "default"
    device: str = "cpu"
    seed: int = 0
    steps: int = 1200
    batch: int = 4
    crop: int = 128              # training crop (px) cut from the teacher-labelled views
    view_size: int = 256         # views the teacher labels once (cached in RUN_DIR/cache)
    n_views: int = 96
    # > 0: train on this many whole views from the teacher-label bank (compress/bank.py, user cache)
    # instead of crops of the n_views above; the bank's views are crop x crop, made with bank_seed
    bank_views: int = 0
    bank_seed: int = 0
    eval_size: int = 256         # val photos are evaluated at eval_size x eval_size
    lr: float = 3e-4             # student weights, Adam
    lr_gamma: float = 0.1        # GS channel scales, SGD momentum 0.5 (reference)
    lr_d: float = 2e-4
    weight_decay: float = 0.0
    beta: float = 20.0           # distillation weight (reference)
    w_feat: float = 1.0          # teacher-encoder feature distance inside L_dist
    w_layer: float = 0.0         # layer-wise distillation inside L_dist (every unit vs the teacher's channel)
    norm: str = "fixed"          # student normalisation: "fixed" (folded) or "image" (per image, student.py)
    prenorm_range: float = 1.0   # per-image norm: fraction of the observed range the pre-norm int8 grids cover
    lambda_gan: float = 0.05
    rho: float = 0.01            # L1 weight of the channel scales (proximal step)
    target_macs: float | None = None   # absolute MACs at eval_size; None -> target_ratio * teacher
    target_ratio: float | None = 1 / 9
    # parameter budget (fraction of the teacher's): 1/12 keeps the INT8 .tflite under 1/40 of the
    # teacher's fp32 checkpoint (int8 weights + int32 biases + flatbuffer overhead)
    target_params_ratio: float | None = 1 / 12
    target_params: float | None = None  # absolute parameter budget; overrides target_params_ratio
    prune_start: float = 0.0     # fraction of steps: MAC budget decays cubically from here ...
    prune_end: float = 0.15      # ... to the target here (early: the compact student trains fast)
    # the L1 proximal step goes on after the budget is reached, so the student ends below it (measured
    # on the standard preset: 5.87G -> 3.78G MACs, 0.945M -> 0.485M params in the 580 steps after it)
    shrink_after_budget: bool = True
    qat: bool = True
    qat_start: float = 0.45      # fake quantisation on from this fraction of steps
    freeze_ranges: float = 0.85  # activation ranges frozen from here
    gan: bool = True
    colour_head: bool = True     # fit the per-image colour head after GS training (compress/colour.py)
    n_jitter: int = 4800         # extra teacher-labelled views, 70% colour-jittered, for the colour head
    jitter_size: int = 64        # their size; labelling costs size^2 * n_jitter. The teacher's grade depends
                                 # on resolution, so views at the val size teach the head best when they
                                 # come from many photos (docs/RESULTS.md: quick and standard use 256 px)
    # their framing: the photo's short side resized to jitter_size x U(1, jitter_zoom) before the crop
    # (1: the whole short side, as the val photos are framed; 3: down to a third of it)
    jitter_zoom: float = 3.0
    head_steps: int = 3000
    # heads fitted on the same views (seeds seed, seed + 1, ...) and merged into one head of their mean
    # grade, head_ensemble x 64 hidden units: +0.5 dB on the standard student's val photos (docs/RESULTS.md)
    head_ensemble: int = 4
    # photos the head's views are also cut from (compress/head_photos.py): "none", "extra" (379 licensed
    # photos from pinned Debian packages, fetched once into the user cache) or a folder of images
    head_photos: str = "none"
    # > 0: the head's views are cut from this many of those photos (train and head photos, drawn with the
    # seed), each seen framed and coloured n_jitter / head_view_photos ways; 0: from all of them. An
    # experiment: 12 views of each of 133 photos score as 4 of each of 401 on the mean of three quick
    # seeds, with a wider spread (docs/RESULTS.md, "Fewer scenes seen more often: the quick preset")
    head_view_photos: int = 0
    # precision of the teacher's labels for the run's views (compress/labels.py): "auto" (bfloat16 where
    # the processor computes it natively, else float32), "float32" or "bfloat16"; val targets are float32
    label_precision: str = "auto"
    ndf: int = 32
    ckpt_every: int = 100
    log_every: int = 10
    eval_every: int = 200
    threads: int | None = None

    def to_dict(self) -> dict:
        return asdict(self)

    @staticmethod
    def from_dict(d: dict) -> "TrainConfig":
        names = {f.name for f in fields(TrainConfig)}
        return TrainConfig(**{k: v for k, v in d.items() if k in names})


PRESETS: dict[str, TrainConfig] = {
    # 2-core CPU, ~29 min including teacher labelling (28 min 58 s measured from a cold label cache):
    # 128 px crops, MAC budget reached early so most steps train the already-compact student (750, 900
    # and 1200 steps score alike over two seeds); its colour heads on 1600 views of
    # 256 px of the train photos and the 379 head photos, framed at zoom 1-2 (no val photo below its
    # identity score on three seeds; zoom 1-3: two), labelled in bfloat16 where the processor has it
    # (docs/RESULTS.md)
    "quick": TrainConfig(steps=750, n_jitter=1600, jitter_size=256, jitter_zoom=2.0, head_photos="extra"),
    # 2-core CPU, about 85 min from a cold cache (95 min with float32 labels): the quick design trained on
    # 4000 whole teacher-labelled views (compress/bank.py) for 3.3x the steps, the MAC budget reached at a
    # fifth of them and then held; the quick colour head views framed at zoom 1-3 (0.7 dB above 1-2 on
    # its trunk, docs/RESULTS.md).
    "standard": TrainConfig(preset="standard", steps=4000, bank_views=4000, prune_end=0.2, ckpt_every=200,
                            eval_every=400, shrink_after_budget=False, n_jitter=1600, jitter_size=256,
                            head_photos="extra"),
    # the GAN Slimming paper's hyper-parameters for a GPU: 256 px crops, batch 8, Adam 1e-5
    # betas (0.5, 0.999) wd 1e-3, gamma SGD 0.1 momentum 0.5, beta 20, full GAN term.
    "paper": TrainConfig(preset="paper", steps=40000, batch=8, crop=256, view_size=320, n_views=2000,
                         lr=1e-5, lr_d=1e-5, weight_decay=1e-3, lambda_gan=1.0, ndf=64,
                         prune_start=0.05, prune_end=0.5, qat_start=0.5, ckpt_every=1000, log_every=50,
                         eval_every=5000, device="cuda", n_jitter=8000, jitter_size=128, head_steps=6000),
    # seconds, for tests and smoke runs
    "tiny": TrainConfig(preset="tiny", steps=12, batch=2, crop=32, view_size=48, n_views=6, eval_size=48,
                        ndf=8, ckpt_every=4, log_every=2, eval_every=6, prune_start=0.1, prune_end=0.5,
                        qat_start=0.5, freeze_ranges=0.8, n_jitter=8, jitter_size=32, head_steps=20),
}


def make_config(preset: str, **overrides: object) -> TrainConfig:
    """A preset with the given fields replaced (None values are ignored)."""
    base = PRESETS[preset]
    return replace(base, **{k: v for k, v in overrides.items() if v is not None})


def parse_macs(text: str) -> float:
    """'2.5G' -> 2.5 * 2**30 (the paper's G); '800M' -> 800e6; plain numbers are MACs. Positive."""
    return _parse_count(text, "MAC budget", "2.5G or 800M", giga=G)


def parse_params(text: str) -> float:
    """'1.2M' -> 1.2e6; '900K' -> 9e5; plain numbers are parameters. Positive."""
    return _parse_count(text, "parameter budget", "1.2M or 900K", giga=1e9)


def _parse_count(text: str, what: str, example: str, giga: float) -> float:
    t = text.strip().upper()
    units = {"G": giga, "M": 1e6, "K": 1e3}
    try:
        value = float(t[:-1]) * units[t[-1]] if t and t[-1] in units else float(t)
    except ValueError:
        raise ArgumentTypeError(f"cannot read a {what} from '{text}' (use e.g. {example})") from None
    if not (math.isfinite(value) and value > 0):
        raise ArgumentTypeError(f"a {what} must be above zero, got '{text}' (use e.g. {example})")
    return value


# ----- argparse types: the message names the value; argparse prefixes the flag
def _number(text: str, kind: type, ok: Callable[[float], bool], rule: str) -> float:
    try:
        value = kind(text)
    except ValueError:
        raise ArgumentTypeError(f"must be {rule}, got '{text}'") from None
    if not (math.isfinite(value) and ok(value)):
        raise ArgumentTypeError(f"must be {rule}, got '{text}'")
    return value


def positive_int(text: str) -> int:
    return int(_number(text, int, lambda v: v > 0, "a whole number above zero"))


def non_negative_int(text: str) -> int:
    return int(_number(text, int, lambda v: v >= 0, "zero or a positive whole number"))


def unit_fraction(text: str) -> float:
    return _number(text, float, lambda v: 0 < v <= 1, "a number above 0 and at most 1")


def positive_float(text: str) -> float:
    return _number(text, float, lambda v: v > 0, "a number above zero")


def non_negative_float(text: str) -> float:
    return _number(text, float, lambda v: v >= 0, "zero or a positive number")


# the student halves the resolution twice and doubles it twice (multiple of 4); the PatchGAN
# discriminator's three stride-2 convolutions leave a 2x2 map for its last InstanceNorm from 24 px
MIN_CROP, MIN_EVAL, MAX_SIZE = 24, 16, 4096


def _size(text: str, minimum: int) -> int:
    return int(_number(text, int, lambda v: v % 4 == 0 and minimum <= v <= MAX_SIZE,
                       f"a multiple of 4 between {minimum} and {MAX_SIZE}"))


def crop_size(text: str) -> int:
    return _size(text, MIN_CROP)


def eval_size(text: str) -> int:
    return _size(text, MIN_EVAL)


def check_config(cfg: TrainConfig) -> None:
    """Settings that are each valid but impossible together; one-line GsError."""
    if cfg.crop > cfg.view_size and not cfg.bank_views:  # bank views are made at the crop size
        raise GsError(f"--crop {cfg.crop} is larger than the {cfg.view_size} px views the teacher labels "
                      f"(preset {cfg.preset}); use --crop {cfg.view_size} or less")
    if cfg.prenorm_range != 1.0 and cfg.norm == FIXED_NORM:
        raise GsError(f"--prenorm-range {cfg.prenorm_range:g} needs --norm image (a fixed-norm student has no "
                      "int8 grid before its norm)")
