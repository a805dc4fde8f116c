"""The teacher-label bank: whole training views labelled once by the teacher, kept in the user cache.

The teacher normalises every image by its own statistics, so the label of a crop is not the crop of
a label: each view is a whole image at the training size, and the student trains on it as it is.
View `i` is a pure function of (recipe, sorted train photos, i): a random scale and crop of one
photo (flipped half the time), sometimes mixed with a second photo, usually with a photometric
change, kept on the 8-bit grid as a photo would be. A bank therefore grows by labelling only views
it lacks, and every run with the same teacher, photos and recipe reuses it.

On disk: `<cache>/label-bank/<key>/shard_NNNNN.pt`, SHARD_VIEWS views per shard (the last may hold
fewer), fp16 inputs and targets, each file written atomically (a killed build leaves only complete
shards and ignorable temporary files), read back with torch's weights-only loader.
"""
from __future__ import annotations

import hashlib
import json
import sys
import time
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Sequence

import numpy as np
import torch
from torch import nn

from gs_contract import atomic_path, pixels_to_real, real_to_pixels, write_json_atomic

from .cache import cache_dir
from .config import TrainConfig
from .data import apply_crop, crop_params, to_tensor
from .errors import GsError
from .photo_types import PhotoSet
from .safeload import check_fields, load_plain
from .teachers import Teacher

SHARD_FORMAT = "gs-mobile/label-bank-shard"
SHARD_VIEWS = 64          # 64 views of 256 px: 25 MB per shard in fp16, a few minutes of CPU teacher time
LABEL_BATCH = 8           # views per teacher call (per-image normalisation: batching does not change labels)
STALE_TMP_S = 3600        # temporary files this old are left over from a killed build and are removed


@dataclass(frozen=True)
class ViewRecipe:
    """How bank views are made; every field is part of the bank's key.

    Ranges are moderate: wide enough to show the teacher colour statistics the photos lack, narrow
    enough that views still look like photographs (the domain the teacher was trained on).
    """

    size: int                                     # views are size x size, the student's training size
    seed: int = 0
    scale: tuple[float, float] = (1.0, 2.5)       # window = short side / U(scale): whole photo .. 40% of it
    p_mix: float = 0.15                           # a second photo: alpha blend or left/right halves
    mix_alpha: tuple[float, float] = (0.3, 0.7)
    p_photometric: float = 0.8
    exposure_stops: float = 0.6                   # gain 2**U(-0.6, 0.6)
    white_balance: float = 0.12                   # per-channel log-gain U(-0.12, 0.12), mean-free
    gamma: tuple[float, float] = (0.8, 1.25)
    saturation: tuple[float, float] = (0.6, 1.4)
    contrast: tuple[float, float] = (0.75, 1.3)
    version: int = 1                              # bump when make_view changes its arithmetic

    def to_dict(self) -> dict:
        return asdict(self)


def bank_key(teacher_sha256: str, photo_ids: Sequence[str], recipe: ViewRecipe) -> str:
    """sha256 of (teacher checkpoint sha256, sorted train photo ids, recipe): the bank's folder name."""
    material = {"teacher": teacher_sha256, "photos": sorted(photo_ids), "recipe": recipe.to_dict()}
    return hashlib.sha256(json.dumps(material, sort_keys=True).encode()).hexdigest()


def _photometric(image: np.ndarray, rng: np.random.Generator, r: ViewRecipe) -> np.ndarray:
    """Exposure, white balance, gamma, saturation and contrast of a uint8 HxWx3 image (uint8 out)."""
    p = (pixels_to_real(image) + 1) / 2
    log_gain = rng.uniform(-r.white_balance, r.white_balance, 3)
    p = p * 2 ** rng.uniform(-r.exposure_stops, r.exposure_stops) * np.exp(log_gain - log_gain.mean())
    p = np.clip(p, 0, 1) ** rng.uniform(*r.gamma)
    grey = p @ np.array([0.299, 0.587, 0.114])
    p = grey[..., None] + rng.uniform(*r.saturation) * (p - grey[..., None])
    mean = p.mean()
    p = mean + rng.uniform(*r.contrast) * (p - mean)
    return real_to_pixels(np.clip(p, 0, 1) * 2 - 1)


def make_view(photos: Sequence[np.ndarray], recipe: ViewRecipe, index: int) -> torch.Tensor:
    """View `index` of the bank: float32 [3, size, size] in [-1, 1], on the 8-bit grid.

    `photos` in the bank's order (sorted by id); view i starts from photo i mod n, so every photo
    is used equally often.
    """
    rng = np.random.default_rng([recipe.seed, 0xBA7C, index])  # own stream: not CropDataset's crops

    def crop(photo: np.ndarray) -> np.ndarray:
        return apply_crop(photo, crop_params(rng, photo.shape[1], photo.shape[0], recipe.size, recipe.scale),
                          recipe.size)

    n = len(photos)
    view = crop(photos[index % n])
    if rng.random() < recipe.p_mix:
        other = crop(photos[(index + 1 + int(rng.integers(max(n - 1, 1)))) % n])
        if rng.random() < 0.5:
            a = rng.uniform(*recipe.mix_alpha)
            view = np.rint(a * view.astype(np.float64) + (1 - a) * other).astype(np.uint8)
        else:
            cut = int(rng.integers(recipe.size // 4, 3 * recipe.size // 4 + 1))
            view = np.concatenate([view[:, :cut], other[:, cut:]], axis=1)
    if rng.random() < recipe.p_photometric:
        view = _photometric(view, rng, recipe)
    return to_tensor(np.ascontiguousarray(view))


class LabelBank:
    """One bank folder: its views are made by `make_view` and labelled by the teacher on demand."""

    def __init__(self, teacher_sha256: str, photos: Sequence[np.ndarray], photo_ids: Sequence[str],
                 recipe: ViewRecipe, root: Path | None = None) -> None:
        if not photos or len(photos) != len(photo_ids):
            raise GsError("the label bank needs at least one train photo, each with an id")
        order = sorted(range(len(photos)), key=lambda i: photo_ids[i])  # the key sorts ids: so do the views
        self.photos = [photos[i] for i in order]
        self.recipe = recipe
        self.key = bank_key(teacher_sha256, photo_ids, recipe)
        self.dir = (Path(root) if root else cache_dir("label-bank")) / self.key
        self.dir.mkdir(parents=True, exist_ok=True)
        meta = self.dir / "bank.json"
        if not meta.is_file():  # for people looking at the cache; the key alone is authoritative
            write_json_atomic(meta, {"format": "gs-mobile/label-bank", "teacher_sha256": teacher_sha256,
                                     "photos": sorted(photo_ids), "recipe": recipe.to_dict(),
                                     "shard_views": SHARD_VIEWS})

    def shard_path(self, k: int) -> Path:
        return self.dir / f"shard_{k:05d}.pt"

    def read_shard(self, k: int) -> tuple[torch.Tensor, torch.Tensor] | None:
        """Shard `k`'s (inputs, targets), or None when missing or damaged (one warning line)."""
        path = self.shard_path(k)
        if not path.is_file():
            return None
        size, remedy = self.recipe.size, "Labelling its views again."
        what = "label bank shard"
        try:
            p = load_plain(path, what, remedy, GsError)
            if not isinstance(p, dict):
                raise GsError(f"{what} {path} is not a dict. {remedy}")
            check_fields(p, {"format": str, "key": str, "start": int, "inputs": torch.Tensor,
                             "targets": torch.Tensor}, path, what, remedy, GsError)
            x, y = p["inputs"], p["targets"]
            if (p["format"], p["key"], p["start"]) != (SHARD_FORMAT, self.key, k * SHARD_VIEWS) or not (
                    x.dtype == y.dtype == torch.float16 and x.shape == y.shape and x.dim() == 4
                    and tuple(x.shape[1:]) == (3, size, size) and 1 <= len(x) <= SHARD_VIEWS):
                raise GsError(f"{what} {path} does not hold views {k * SHARD_VIEWS}.. of this bank "
                              f"(fp16 [<= {SHARD_VIEWS}, 3, {size}, {size}]). {remedy}")
        except GsError as exc:
            print(f"gs-compress: warning: {exc}", file=sys.stderr)
            return None
        return x, y

    def write_shard(self, k: int, inputs: torch.Tensor, targets: torch.Tensor) -> None:
        payload = {"format": SHARD_FORMAT, "key": self.key, "start": k * SHARD_VIEWS,
                   "inputs": inputs.half().contiguous(), "targets": targets.half().contiguous()}
        with atomic_path(self.shard_path(k)) as tmp:
            torch.save(payload, tmp)

    def remove_stale_tmp(self) -> None:
        """Temporary files of builds killed long ago (a running build's are recent and kept)."""
        now = time.time()
        for tmp in self.dir.glob(".shard_*.tmp"):
            try:
                if now - tmp.stat().st_mtime > STALE_TMP_S:
                    tmp.unlink()
            except FileNotFoundError:
                pass

    @torch.no_grad()
    def ensure(self, n_views: int, teacher: nn.Module, device: torch.device | str = "cpu",
               show: bool = True) -> dict[str, torch.Tensor]:
        """Views 0..n_views-1 with their teacher labels, labelling (and saving) only missing ones.

        Returns {"inputs", "targets"}: fp16 [n_views, 3, size, size] on the CPU.
        """
        from tqdm import tqdm

        size = self.recipe.size
        inputs = torch.empty(n_views, 3, size, size, dtype=torch.float16)
        targets = torch.empty_like(inputs)
        self.remove_stale_tmp()
        todo: list[tuple[int, int]] = []  # (shard, views it already holds)
        for k in range((n_views + SHARD_VIEWS - 1) // SHARD_VIEWS):
            start, end = k * SHARD_VIEWS, min((k + 1) * SHARD_VIEWS, n_views)
            shard = self.read_shard(k)
            have = min(len(shard[0]), end - start) if shard else 0
            if have:
                inputs[start:start + have], targets[start:start + have] = shard[0][:have], shard[1][:have]
            if start + have < end:
                todo.append((k, have))
        missing = sum(min((k + 1) * SHARD_VIEWS, n_views) - k * SHARD_VIEWS - have for k, have in todo)
        if not missing:
            return {"inputs": inputs, "targets": targets}
        was_training = teacher.training
        teacher.eval().to(device)
        bar = tqdm(total=n_views, initial=n_views - missing, desc="teacher label bank", unit="view",
                   disable=not show, dynamic_ncols=True)
        try:
            for k, have in todo:
                start, end = k * SHARD_VIEWS, min((k + 1) * SHARD_VIEWS, n_views)
                for i in range(start + have, end, LABEL_BATCH):
                    j = min(i + LABEL_BATCH, end)
                    x = torch.stack([make_view(self.photos, self.recipe, v) for v in range(i, j)])
                    inputs[i:j], targets[i:j] = x.half(), teacher(x.to(device)).float().cpu().half()
                    bar.update(j - i)
                self.write_shard(k, inputs[start:end], targets[start:end])  # longer than the one on disk
        finally:
            bar.close()
            teacher.to("cpu").train(was_training)
        return {"inputs": inputs, "targets": targets}


def open_bank(teacher: Teacher, photos: PhotoSet, cfg: TrainConfig) -> LabelBank:
    """The bank of `cfg` for `teacher` and the train photos: views of the training crop size, made
    with `cfg.bank_seed` (not the run's seed, so runs that differ only in seed share one bank)."""
    train = photos.indices("train")
    return LabelBank(teacher.sha256, [photos.images[i] for i in train], [photos.entries[i].sha256 for i in train],
                     ViewRecipe(size=cfg.crop, seed=cfg.bank_seed))


def bank_batch(views: dict, cfg: TrainConfig, step: int, rank: int) -> tuple[torch.Tensor, torch.Tensor]:
    """A batch of whole bank views and their labels, float32, a pure function of (seed, step, rank);
    the same (x, y_teacher) form as `views.sample_batch`. No flip or crop here: the labels are the
    teacher's outputs for exactly these images."""
    gen = torch.Generator().manual_seed(cfg.seed * 1_000_003 + step * 101 + rank)
    idx = torch.randint(len(views["inputs"]), (cfg.batch,), generator=gen)
    return views["inputs"][idx].float(), views["targets"][idx].float()
