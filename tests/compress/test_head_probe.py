"""The colour-head probe's oracle fitter and its command-line parsing."""
from __future__ import annotations

import argparse

import numpy as np
import pytest
import torch

from compress.evaluate import psnr
from compress.experiments.head_probe import affine, fit_grade, identity_maps, main, oracle_rows, refit_spec
from tests.tiny import make_tiny_student


def test_fit_grade_recovers_per_image_colour_maps() -> None:
    gen = torch.Generator().manual_seed(0)
    images = torch.rand(3, 3, 12, 12, generator=gen) * 1.6 - 0.8
    maps = identity_maps(3) + 0.2 * torch.randn(3, 3, 4, generator=gen)  # a different grade per image
    target = affine(images)(maps)
    assert np.mean(psnr(images, target)) < 30
    assert min(psnr(fit_grade(affine(images), identity_maps(3), target), target)) > 60


def test_oracle_rows_bound_the_learned_head() -> None:
    student = make_tiny_student(colour=True).eval()
    gen = torch.Generator().manual_seed(1)
    val = torch.rand(2, 3, 16, 16, generator=gen) * 1.6 - 0.8
    target = torch.tanh(1.3 * val + 0.1)
    rows = {name: np.mean(db) for name, db in oracle_rows(student, val, target).items()}
    assert student.colour is not None  # the head is put back
    assert rows["oracle 3x4 map on the input"] > rows["identity (the input)"]
    assert rows["oracle gain/shift on the pre-activation"] >= rows["student without head"] - 0.01


@pytest.mark.parametrize("text, parsed", [("64:4800", (64, 4800, None)), ("256:400:11", (256, 400, 11))])
def test_refit_spec_parses(text: str, parsed: tuple) -> None:
    assert refit_spec(text) == parsed


@pytest.mark.parametrize("text", ["64", "64:0", "a:b", "1:2:3:4"])
def test_refit_spec_names_the_bad_value(text: str) -> None:
    with pytest.raises(argparse.ArgumentTypeError, match="SIZE:VIEWS"):
        refit_spec(text)


def test_a_bad_student_file_is_one_line_and_exit_2(tmp_path, capsys) -> None:  # noqa: ANN001
    bad = tmp_path / "student.pt"
    bad.write_bytes(b"not a checkpoint")
    with pytest.raises(SystemExit) as exc:
        main(["--student", str(bad)])
    assert exc.value.code == 2
    assert str(bad) in capsys.readouterr().err


def test_bank_views_mix_two_photos_when_asked() -> None:
    from compress.experiments.head_probe import labelled_views

    gen = torch.Generator().manual_seed(0)
    photos = [(torch.rand(40, 48, 3, generator=gen) * 255).byte().numpy() for _ in range(3)]
    identity = torch.nn.Identity()
    plain, _ = labelled_views(identity, photos, 16, 6, bank_mix=0.0)
    mixed, labels = labelled_views(identity, photos, 16, 6, bank_mix=1.0)
    assert mixed.shape == labels.shape == (6, 3, 16, 16)
    assert not torch.equal(plain, mixed)


def test_a_missing_extra_images_folder_is_one_line_and_exit_2(tmp_path, capsys) -> None:  # noqa: ANN001
    missing = tmp_path / "no-such-folder"
    with pytest.raises(SystemExit) as exc:
        main(["--extra-images", str(missing)])
    assert exc.value.code == 2
    err = capsys.readouterr().err
    assert str(missing) in err and "Traceback" not in err
