"""The head-fitting sweep driver: its features, its variants and its refusals."""
from __future__ import annotations

import copy

import numpy as np
import pytest
import torch

from compress.colour_fit import head_inputs
from compress.evaluate import psnr
from compress.errors import GsError
from compress.experiments.head_sweep import (FEATURES, VARIANTS, feature_probe, fit_variant, joined_views, main,
                                              pooled_features)
from tests.tiny import make_tiny_student


@pytest.fixture(scope="module")
def data() -> tuple:
    student = make_tiny_student(colour=False).eval()
    gen = torch.Generator().manual_seed(1)
    images = (torch.rand(24, 3, 16, 16, generator=gen) + torch.rand(24, 1, 1, 1, generator=gen) - 1).clamp(-1, 1)
    pooled, pres = head_inputs(student, images)
    targets = torch.tanh(pres.float() * (1.2 + 0.5 * images.mean((1, 2, 3)))[:, None, None, None])
    return student, images, pooled, pres, targets


def test_pooled_features_start_with_the_heads_own_and_add_each_extra(data: tuple) -> None:
    student, images, pooled, _, _ = data
    own = pooled_features(student, images, ())
    kept = int((student.trunk_alive > 0).sum())
    assert own.shape == (24, 2 * kept, 1, 1)
    assert torch.allclose(own.flatten(1), pooled.flatten(1)[:, torch.cat([student.trunk_alive > 0] * 2)])
    everything = pooled_features(student, images, tuple(f for f in FEATURES if not f.startswith("smax")))
    assert everything.shape[1] % 2 == 0 and everything.shape[1] > own.shape[1] + kept + 12
    assert torch.equal(everything[:, :own.shape[1]], own)
    trunk_side = student.encode(images[:1]).shape[-1]
    smooth = pooled_features(student, images, (f"smax{trunk_side}",))  # one average: its max is the mean
    assert torch.allclose(smooth[:, kept:], smooth[:, :kept], atol=1e-6)
    assert not torch.allclose(own[:, kept:], own[:, :kept])


def test_float_probes_ensembles_and_the_squared_loss_all_learn_the_grade(data: tuple) -> None:
    student, images, pooled, pres, targets = data
    start = np.mean(psnr(torch.tanh(pres.float()), targets))
    feats = pooled_features(student, images, ("stem",))
    for heads in (1, 2):
        val_out, _ = feature_probe(student, feats, pres, targets, feats, pres, steps=60, seed=0, heads=heads)
        assert np.mean(psnr(val_out, targets)) > start + 3
    for variant, hidden in (("ens4", 4 * 64), ("mse", 64), ("noise0.5_ens4", 4 * 64)):
        model = copy.deepcopy(student)
        fit_variant(model, pooled, pres, targets, 60, 0, VARIANTS[variant])
        assert model.colour.hidden == hidden
        with torch.no_grad():
            assert np.mean(psnr(model(images), targets)) > start + 3


def test_unknown_features_are_one_line_and_exit_2(tmp_path, capsys) -> None:  # noqa: ANN001
    with pytest.raises(SystemExit) as exc:
        main(["--student", str(tmp_path / "s.pt"), "--cache", str(tmp_path), "--features", "stem+colour"])
    assert exc.value.code == 2 and "--features stem+colour" in capsys.readouterr().err
    for zoom in ("0.5", "wide"):
        with pytest.raises(SystemExit) as exc:
            main(["--student", str(tmp_path / "s.pt"), "--cache", str(tmp_path), "--jitter-zoom", zoom])
        assert exc.value.code == 2 and "--jitter-zoom: expected a number >= 1" in capsys.readouterr().err


def write_views(folder, n: int, fill: float, val: float = 0.0) -> None:  # noqa: ANN001
    """A teacher_views.pt as label_views writes it: no crops, n head views of 8 px, 2 val photos."""
    folder.mkdir()
    torch.save({"key": {"jitter": n}, "inputs": torch.zeros(0, 3, 8, 8).half(), "targets": torch.zeros(0, 3, 8, 8).half(),
                "jitter_inputs": torch.full((n, 3, 8, 8), fill).half(), "jitter_targets": torch.full((n, 3, 8, 8), -fill).half(),
                "val_inputs": torch.zeros(2, 3, 8, 8), "val_targets": torch.full((2, 3, 8, 8), val)},
               folder / "teacher_views.pt")


def test_joined_caches_hold_every_head_view_in_order_and_refuse_other_val_photos(tmp_path, capsys) -> None:  # noqa: ANN001
    write_views(tmp_path / "a", 3, 0.25)
    write_views(tmp_path / "b", 2, 0.5)
    write_views(tmp_path / "c", 2, 0.5, val=0.1)
    joined = joined_views([tmp_path / "a", tmp_path / "b"])
    assert joined["jitter_inputs"][:, 0, 0, 0].tolist() == [0.25] * 3 + [0.5] * 2
    assert torch.equal(joined["jitter_targets"], -joined["jitter_inputs"]) and len(joined["val_inputs"]) == 2
    with pytest.raises(GsError, match="other val photos"):
        joined_views([tmp_path / "a", tmp_path / "c"])
    with pytest.raises(SystemExit) as exc:
        main(["--student", str(tmp_path / "s.pt"), "--cache", str(tmp_path / "a"), str(tmp_path / "b")])
    assert exc.value.code == 2 and "only with --reuse" in capsys.readouterr().err
