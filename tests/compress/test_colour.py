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


def test_merged_heads_compute_the_mean_grade() -> None:
    from compress.colour import ColourHead
    from compress.quant import set_quantisation

    heads = [make_tiny_student(colour=True, seed=seed).colour for seed in (0, 1, 2)]
    assert heads[0] is not None and not torch.equal(heads[0].w1, heads[1].w1)
    for h in heads[1:]:  # one calibration, as heads fitted on the same views share
        h.f_mu.copy_(heads[0].f_mu)
        h.f_sd.copy_(heads[0].f_sd)
    merged = ColourHead.merge(heads)
    for h in heads + [merged]:
        set_quantisation(h, False)
    pooled = torch.randn(2, heads[0].w1.shape[1], 1, 1)
    each = [h.modulation_of_pooled(pooled) for h in heads]
    gain, shift = merged.modulation_of_pooled(pooled)
    assert torch.allclose(gain, sum(g for g, _ in each) / 3, atol=1e-5)
    assert torch.allclose(shift, sum(t for _, t in each) / 3, atol=1e-5)
    assert merged.hidden == 3 * heads[0].hidden


def test_an_ensemble_fit_is_one_wider_head_that_compacts_and_reloads(tmp_path) -> None:  # noqa: ANN001
    from compress.checkpoint import load_student, save_student

    student = make_tiny_student(colour=False)
    images = torch.rand(16, 3, 16, 16, generator=torch.Generator().manual_seed(5)) * 2 - 1
    targets = _graded_targets(student, images)
    fit = fit_colour_head(student, images, targets, steps=40, batch=8, hidden=8, heads=3)
    head = student.colour
    assert fit["heads"] == 3 and head is not None and head.hidden == 24
    assert all(bool(q.initialised) and not q.observing for q in head.quantisers())  # observed, then frozen
    with torch.no_grad():
        graded = student(images)
    assert (graded - targets).abs().mean() < (torch.tanh(head_inputs(student, images)[1].float()) - targets).abs().mean()
    small = channels.compact(student).eval()
    assert small.colour is not None and small.colour.hidden == 24
    save_student(tmp_path / "student.pt", small)
    again, _ = load_student(tmp_path / "student.pt")
    with torch.no_grad():
        assert torch.equal(again(images), small(images))
