"""The teacher-labelled training set: views of the photos, each paired with the teacher's output.

The teacher (the expensive network) labels each view once; training then cuts random aligned
crops from these (input, teacher output) pairs, as a pure function of (seed, step, rank).
"""
from __future__ import annotations

import sys
import warnings
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from gs_contract import atomic_path

from .config import TrainConfig
from .data import CropDataset, build_default_photos, jittered_views, load_photo_folder, val_batch
from .errors import GsError
from .evaluate import run_batched
from .head_photos import head_photo_folder
from .labels import label_precision, labelling
from .photo_types import DataWarning, PhotoSet
from .safeload import check_fields, load_plain


def load_photos(source: str) -> PhotoSet:
    """The photos of `--data`: 'default' (the embedded set) or a folder of images."""
    return build_default_photos() if source == "default" else load_photo_folder(Path(source))


def load_head_photos(source: str, photos: PhotoSet | None = None) -> list[tuple[str, np.ndarray]]:
    """(sha256, image) of every photo of `--head-photos`: none for 'none', the pinned extra set for
    'extra' (fetched once, compress/head_photos.py), else a folder of images, whatever their split.
    A copy of one of `photos`' val photos is left out with a warning: val must stay unseen."""
    if source == "none":
        return []
    folder = head_photo_folder() if source == "extra" else Path(source)
    head = load_photo_folder(folder, flag="--head-photos")
    val = {photos.entries[i].sha256 for i in photos.indices("val")} if photos else set()
    for entry in head.entries:
        if entry.sha256 in val:
            warnings.warn(f"--head-photos: {entry.name} is a val photo; leaving it out", DataWarning, stacklevel=2)
    return [(e.sha256, image) for e, image in zip(head.entries, head.images) if e.sha256 not in val]


def head_view_images(photos: PhotoSet, head: list[tuple[str, np.ndarray]], count: int = 0,
                     seed: int = 0) -> list[np.ndarray]:
    """The photos the colour head's views are cut from: the train photos, then `head` (load_head_photos);
    with `count` > 0 only `count` of them (`drawn_photos`)."""
    images = photos.subset("train") + [image for _, image in head]
    return [images[i] for i in drawn_photos(len(images), count, seed)]


def drawn_photos(n: int, count: int, seed: int) -> list[int]:
    """Which of `n` photos the head's views are cut from: `count` drawn at random with `seed`, in their
    order, or all of them when `count` is 0 or at least `n`."""
    if not 0 < count < n:
        return list(range(n))
    return sorted(np.random.default_rng([seed, 2]).choice(n, count, replace=False).tolist())


@torch.no_grad()
def label_views(teacher: nn.Module, photos: PhotoSet, cfg: TrainConfig, cache: Path, show: bool,
                device: torch.device | str = "cpu") -> dict:
    """Teacher outputs for n_views random crops of the train photos (none when cfg.bank_views: the
    label bank supplies the training views), for n_jitter views of jitter_size px of the train photos
    and cfg.head_photos (mostly colour-jittered, for the colour head) and for the val photos.

    The teacher runs once per view (it is the expensive network) on `device`; training then cuts
    random crops from these (input, teacher output) pairs, kept on the CPU. Cached in RUN_DIR/cache,
    keyed by the set-up.
    """
    from tqdm import tqdm

    n_crops = 0 if cfg.bank_views else cfg.n_views  # with the bank, its whole views are the training set
    n_jitter = cfg.n_jitter if cfg.colour_head else 0
    head = load_head_photos(cfg.head_photos, photos) if n_jitter else []
    precision = label_precision(cfg.label_precision, device)
    key = {"views": n_crops, "view_size": cfg.view_size, "eval_size": cfg.eval_size, "seed": cfg.seed,
           "photos": [e.sha256 for e in photos.entries], "jitter": n_jitter, "jitter_size": cfg.jitter_size,
           # only where they apply, so runs without head photos, bf16 labels or another zoom keep their caches
           **({"jitter_zoom": cfg.jitter_zoom} if cfg.jitter_zoom != TrainConfig.jitter_zoom else {}),
           **({"head_photos": [sha for sha, _ in head]} if head else {}),
           **({"head_view_photos": cfg.head_view_photos} if cfg.head_view_photos else {}),
           **({"labels": precision} if precision != "float32" else {})}
    path = cache / "teacher_views.pt"
    cached = read_cached_views(path) if path.is_file() else None
    if cached is not None and cached.get("key") == key:
        return cached
    views = CropDataset(photos.subset("train"), crop=cfg.view_size, seed=cfg.seed, length=n_crops or None)
    inputs = (torch.stack([views[i] for i in range(n_crops)]) if n_crops
              else torch.zeros(0, 3, cfg.view_size, cfg.view_size))
    jitter = jittered_views(head_view_images(photos, head, cfg.head_view_photos, cfg.seed), n_jitter,
                            cfg.jitter_size, cfg.seed, cfg.jitter_zoom)
    val_in = val_batch(photos.subset("val"), cfg.eval_size)

    def label(images: torch.Tensor, what: str, batch: int) -> torch.Tensor:
        starts = range(0, len(images), batch)
        with labelling(precision, device):
            outs = [teacher(images[i:i + batch].to(device)).float().cpu()
                    for i in tqdm(starts, desc=f"teacher labels {what} ({precision})", unit="batch",
                                  disable=not show or not len(images))]
        return torch.cat(outs).half() if outs else images.half()

    teacher.to(device)
    try:
        labelled = {"key": key, "inputs": inputs.half(), "targets": label(inputs, "views", 4),
                    "jitter_inputs": jitter.half(), "jitter_targets": label(jitter, "colour views", 16),
                    "val_inputs": val_in, "val_targets": run_batched(teacher, val_in.to(device)).cpu()}
    finally:
        teacher.to("cpu")
    with atomic_path(path) as tmp:
        torch.save(labelled, tmp)
    return labelled


VIEW_CACHE_FIELDS = {"key": dict, **{k: torch.Tensor for k in ("inputs", "targets", "jitter_inputs",
                                                                  "jitter_targets", "val_inputs", "val_targets")}}


def read_cached_views(path: Path) -> dict | None:
    """The teacher-label cache, or None (with a one-line warning) when it cannot be used: the cache
    is only a speed-up, so a damaged one is labelled again rather than stopping the run."""
    what, remedy = "teacher-label cache", "Labelling the views again."
    try:
        cached = load_plain(path, what, remedy, GsError)
        if not isinstance(cached, dict):
            raise GsError(f"{what} {path} is not a dict. {remedy}")
        check_fields(cached, VIEW_CACHE_FIELDS, path, what, remedy, GsError)
    except GsError as exc:
        print(f"gs-compress: warning: {exc}", file=sys.stderr)
        return None
    return cached


def head_views(views: dict, size: int) -> tuple[torch.Tensor, torch.Tensor]:
    """The colour head's training set: the labelled views, downscaled to about 2x `size` and tiled
    into size x size squares, plus the jittered views (size x size)."""
    factor = max(1, views["inputs"].shape[-1] // (2 * size))

    def tiles(images: torch.Tensor) -> list[torch.Tensor]:
        images = F.avg_pool2d(images.float(), factor) if factor > 1 else images
        starts = range(0, images.shape[-1] - size + 1, size)
        return [images[:, :, y:y + size, x:x + size] for y in starts for x in starts]

    inputs = tiles(views["inputs"]) + [views["jitter_inputs"].float()]
    targets = tiles(views["targets"]) + [views["jitter_targets"].float()]
    return torch.cat(inputs).half(), torch.cat(targets).half()


def sample_batch(views: dict, cfg: TrainConfig, step: int, rank: int) -> tuple[torch.Tensor, torch.Tensor]:
    """A batch of aligned (input, teacher output) crops, a pure function of (seed, step, rank)."""
    gen = torch.Generator().manual_seed(cfg.seed * 1_000_003 + step * 101 + rank)
    n, size, crop = len(views["inputs"]), views["inputs"].shape[-1], cfg.crop
    idx = torch.randint(n, (cfg.batch,), generator=gen)
    ys = torch.randint(size - crop + 1, (cfg.batch,), generator=gen)
    xs = torch.randint(size - crop + 1, (cfg.batch,), generator=gen)
    flip = torch.rand(cfg.batch, generator=gen) < 0.5
    xin, yt = [], []
    for i, y0, x0, f in zip(idx.tolist(), ys.tolist(), xs.tolist(), flip.tolist()):
        a = views["inputs"][i, :, y0:y0 + crop, x0:x0 + crop].float()
        b = views["targets"][i, :, y0:y0 + crop, x0:x0 + crop].float()
        xin.append(a.flip(-1) if f else a)
        yt.append(b.flip(-1) if f else b)
    return torch.stack(xin), torch.stack(yt)
