"""The teacher-label bank: deterministic whole views, keyed cache, resume, extension, repair, sampler."""
from __future__ import annotations

import json
from dataclasses import replace
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image
from torch import nn

from compress.bank import SHARD_VIEWS, LabelBank, ViewRecipe, bank_batch, bank_key, make_view
from compress.cache import cache_root
from compress.cli import main
from compress.config import PRESETS
from tests.compress.helpers import args
from tests.tiny import make_tiny_teacher

SIZE = 32
TEACHER_SHA = "ab" * 32


class CountingTeacher(nn.Module):
    """The tiny teacher, counting the images it labels; raises KeyboardInterrupt (a kill) once
    `stop_after` images have been labelled."""

    def __init__(self, stop_after: int | None = None) -> None:
        super().__init__()
        self.net, self.images, self.stop_after = make_tiny_teacher("cyclegan"), 0, stop_after

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if self.stop_after is not None and self.images >= self.stop_after:
            raise KeyboardInterrupt
        self.images += len(x)
        return self.net(x)


@pytest.fixture(scope="module")
def photos() -> tuple[list[np.ndarray], list[str]]:
    from skimage import data

    images = [np.asarray(Image.fromarray(getattr(data, n)()).resize((96, 72)))
              for n in ("astronaut", "coffee", "chelsea")]
    return images, ["c" * 64, "a" * 64, "b" * 64]


@pytest.fixture()
def cache(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    monkeypatch.setenv("GS_MOBILE_CACHE", str(tmp_path / "cache"))
    return tmp_path / "cache"


def make_bank(photos: tuple[list[np.ndarray], list[str]], **recipe: object) -> LabelBank:
    return LabelBank(TEACHER_SHA, photos[0], photos[1], ViewRecipe(size=SIZE, **recipe))


def test_cache_folder_follows_the_environment(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.delenv("GS_MOBILE_CACHE", raising=False)
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "xdg"))
    assert cache_root() == tmp_path / "xdg" / "gs-mobile"
    monkeypatch.setenv("GS_MOBILE_CACHE", str(tmp_path / "own"))
    assert cache_root() == tmp_path / "own"


def test_view_i_is_always_the_same_whole_image(photos, cache: Path) -> None:
    bank = make_bank(photos)
    a, b = make_view(bank.photos, bank.recipe, 5), make_view(bank.photos, bank.recipe, 5)
    assert torch.equal(a, b) and a.shape == (3, SIZE, SIZE)
    assert not torch.equal(a, make_view(bank.photos, bank.recipe, 6))
    pixels = (a.double() + 1) * 127.5  # on the 8-bit grid, as a photo
    assert torch.allclose(pixels, pixels.round(), atol=1e-4)
    # the photos' order does not matter (the bank sorts them by id, as its key does)
    shuffled = LabelBank(TEACHER_SHA, photos[0][::-1], photos[1][::-1], bank.recipe)
    assert shuffled.dir == bank.dir
    assert all(torch.equal(make_view(shuffled.photos, bank.recipe, i), make_view(bank.photos, bank.recipe, i))
               for i in range(8))
    # views are diverse: many distinct colour statistics, not a few crops of the same photos
    means = torch.stack([make_view(bank.photos, bank.recipe, i).mean((1, 2)) for i in range(48)])
    assert len({tuple(m) for m in means.round(decimals=2).tolist()}) == 48


def test_key_changes_with_teacher_photos_and_recipe() -> None:
    ids, recipe = ["a" * 64, "b" * 64], ViewRecipe(size=128)
    key = bank_key(TEACHER_SHA, ids, recipe)
    assert bank_key(TEACHER_SHA, ids[::-1], recipe) == key
    others = [bank_key("cd" * 32, ids, recipe), bank_key(TEACHER_SHA, ids[:1], recipe),
              bank_key(TEACHER_SHA, ids + ["e" * 64], recipe), bank_key(TEACHER_SHA, ids, ViewRecipe(size=256)),
              bank_key(TEACHER_SHA, ids, replace(recipe, seed=1)),
              bank_key(TEACHER_SHA, ids, replace(recipe, p_mix=0.3))]
    assert len({key, *others}) == 7


def test_resume_after_a_kill_keeps_complete_shards(photos, cache: Path) -> None:
    bank = make_bank(photos)
    killed = CountingTeacher(stop_after=SHARD_VIEWS + 16)  # killed inside the second shard
    with pytest.raises(KeyboardInterrupt):
        bank.ensure(2 * SHARD_VIEWS, killed, show=False)
    assert bank.shard_path(0).is_file() and not bank.shard_path(1).exists()
    (bank.dir / ".shard_00001.pt.leftover.tmp").write_bytes(b"half a shard")  # what a SIGKILL leaves
    teacher = CountingTeacher()
    views = bank.ensure(2 * SHARD_VIEWS, teacher, show=False)
    assert teacher.images == SHARD_VIEWS  # shard 0 was not labelled again
    assert views["inputs"].shape == views["targets"].shape == (2 * SHARD_VIEWS, 3, SIZE, SIZE)
    assert views["inputs"].dtype == views["targets"].dtype == torch.float16
    # the same as a bank built in one go
    fresh = LabelBank(TEACHER_SHA, photos[0], photos[1], bank.recipe, root=cache / "other")
    clean = fresh.ensure(2 * SHARD_VIEWS, CountingTeacher(), show=False)
    assert torch.equal(clean["inputs"], views["inputs"]) and torch.equal(clean["targets"], views["targets"])
    assert json.loads((bank.dir / "bank.json").read_text())["recipe"]["size"] == SIZE


def test_extending_labels_only_the_new_views(photos, cache: Path) -> None:
    bank = make_bank(photos)
    first = bank.ensure(SHARD_VIEWS, CountingTeacher(), show=False)
    teacher = CountingTeacher()
    more = bank.ensure(2 * SHARD_VIEWS, teacher, show=False)
    assert teacher.images == SHARD_VIEWS
    assert torch.equal(more["targets"][:SHARD_VIEWS], first["targets"])
    # a partly filled last shard grows in place: 130 -> 140 labels 10 views
    bank.ensure(2 * SHARD_VIEWS + 2, CountingTeacher(), show=False)
    teacher = CountingTeacher()
    views = bank.ensure(2 * SHARD_VIEWS + 12, teacher, show=False)
    assert teacher.images == 10 and len(views["inputs"]) == 2 * SHARD_VIEWS + 12
    again = CountingTeacher()  # everything is there now, also for a smaller request
    assert torch.equal(bank.ensure(100, again, show=False)["targets"], views["targets"][:100]) and again.images == 0


@pytest.mark.parametrize("damage", ["garbage", "wrong dtype"])
def test_a_corrupt_shard_is_rebuilt_with_one_line(damage: str, photos, cache: Path,
                                                  capsys: pytest.CaptureFixture[str]) -> None:
    bank = make_bank(photos)
    good = bank.ensure(SHARD_VIEWS, CountingTeacher(), show=False)
    if damage == "garbage":
        bank.shard_path(0).write_bytes(bank.shard_path(0).read_bytes()[:1000])  # truncated
    else:
        payload = torch.load(bank.shard_path(0), weights_only=True)
        torch.save({**payload, "targets": payload["targets"].float()}, bank.shard_path(0))
    capsys.readouterr()
    teacher = CountingTeacher()
    views = bank.ensure(SHARD_VIEWS, teacher, show=False)
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and "label bank shard" in err[0] and "Labelling its views again" in err[0]
    assert teacher.images == SHARD_VIEWS and torch.equal(views["targets"], good["targets"])
    assert bank.read_shard(0) is not None and capsys.readouterr().err == ""


def test_sampler_gives_whole_views(photos, cache: Path) -> None:
    views = make_bank(photos).ensure(10, CountingTeacher(), show=False)
    cfg = replace(PRESETS["tiny"], crop=SIZE, bank_views=10, batch=3)
    x, y = bank_batch(views, cfg, step=4, rank=0)
    assert x.shape == y.shape == (3, 3, SIZE, SIZE) and x.dtype == y.dtype == torch.float32
    for xi, yi in zip(x, y):  # each pair is one bank view and its own label, uncropped
        i = next(i for i in range(10) if torch.equal(views["inputs"][i].float(), xi))
        assert torch.equal(views["targets"][i].float(), yi)
    again = bank_batch(views, cfg, step=4, rank=0)
    assert torch.equal(again[0], x) and torch.equal(again[1], y)
    others = [bank_batch(views, cfg, step=s, rank=r)[0] for s, r in ((5, 0), (4, 1))]
    assert not any(torch.equal(o, x) for o in others)


def test_tiny_run_trains_on_the_bank_and_reuses_it(setup_dir: Path, cache: Path, tmp_path: Path) -> None:
    assert main(args(setup_dir, tmp_path / "a", "--bank-views", "8", "--steps", "4", "--no-colour-head")) == 0
    metrics = json.loads((tmp_path / "a" / "metrics.json").read_text())
    assert metrics["config"]["bank_views"] == 8 and metrics["history"][-1]["step"] == 3
    (shard,) = (cache / "label-bank").glob("*/shard_00000.pt")
    assert torch.load(shard, weights_only=True)["inputs"].shape == (8, 3, 32, 32)  # the tiny preset's crop
    stamp = shard.stat().st_mtime_ns
    assert main(args(setup_dir, tmp_path / "b", "--bank-views", "8", "--steps", "2", "--seed", "1")) == 0
    assert shard.stat().st_mtime_ns == stamp  # another seed, same bank: nothing labelled again
