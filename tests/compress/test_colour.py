"""The per-image colour head: it learns an image-dependent grade, and slims/compacts exactly."""
from __future__ import annotations

import torch

from compress import channels
from compress.colour_fit import fit_colour_head, head_inputs
from export.tflite_build import not_splat
from tests.tiny import make_tiny_student


def _graded_targets(student, images: torch.Tensor) -> torch.Tensor:  # noqa: ANN001
    """The student's own output with a per-image colour grade that depends on the image's brightness."""
    _, pres = head_inputs(student, images)
    brightness = images.mean(dim=(1, 2, 3))[:, None, None, None]
    gain = torch.tensor([1.0, 0.6, 1.4])[None, :, None, None] + 0.5 * brightness
    return torch.tanh(pres.float() * gain + 0.3 * brightness)


def test_fit_learns_an_image_dependent_grade() -> None:
    student = make_tiny_student(colour=False)
    gen = torch.Generator().manual_seed(3)
    base = torch.rand(48, 3, 16, 16, generator=gen) * 1.2 - 0.6
    images = (base + torch.rand(48, 1, 1, 1, generator=gen) * 0.8 - 0.4).clamp(-1, 1)  # brightness varies
    targets = _graded_targets(student, images)
    before = (student(images) - targets).abs().mean().item()
    fit = fit_colour_head(student, images, targets, steps=400, batch=16, lr=3e-3)
    with torch.no_grad():
        after = (student(images) - targets).abs().mean().item()
    assert student.colour is not None and fit["views"] == 48
    assert fit["loss_end"] < 0.5 * fit["loss_start"]
    assert after < 0.5 * before, (before, after)
    # a head that only knew the mean image (a fixed grade) cannot do as well: the grade varies per image
    fixed = (torch.tanh(head_inputs(student, images)[1].float() * torch.tensor([1.0, 0.6, 1.4])[None, :, None, None])
             - targets).abs().mean().item()
    assert after < fixed


def test_compact_keeps_the_colour_head_function() -> None:
    student = make_tiny_student()
    x = torch.rand(2, 3, 32, 32, generator=torch.Generator().manual_seed(0)) * 2 - 1
    small = channels.compact(student).eval()
    assert small.colour is not None and small.colour.w1.shape[1] == 2 * small.trunk_kept()
    with torch.no_grad():
        assert torch.equal(student(x), small(x))
    assert small.macs(32, 32) == student.macs(32, 32) and small.slim_params() == student.slim_params()


def test_not_splat_keeps_uniform_biases_dense_and_close() -> None:
    b = not_splat(torch.ones(3))
    assert len(set(b.tolist())) == 3 and abs(b - 1).max() < 1e-6
    assert not_splat(torch.zeros(3)).tolist() == [0, 0, 0]
    assert not_splat(torch.tensor([0.5, -1.0])).tolist() == [0.5, -1.0]


def test_fit_builds_a_head_of_the_asked_width() -> None:
    student = make_tiny_student(colour=False)
    images = torch.rand(8, 3, 16, 16, generator=torch.Generator().manual_seed(4)) * 2 - 1
    fit_colour_head(student, images, _graded_targets(student, images), steps=2, batch=4, hidden=8)
    assert student.colour is not None and student.colour.w1.shape[0] == 8 and student.colour.wg.shape[1] == 8
