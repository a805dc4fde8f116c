"""Per-image-normalised students: the exact form is the teacher, the INT8 form is close, both survive
compaction and checkpoints; layer-wise distillation reads the teacher channel of every kept channel."""
from __future__ import annotations

from pathlib import Path

import pytest
import torch

from compress import channels
from compress.checkpoint import load_student, save_student
from compress.image_norm import VAR_MAX, ImageNorm
from compress.layer_distill import LayerDistillation
from compress.quant import set_quantisation
from compress.student import student_from_teacher
from compress.zoo.rgb import RGBAdapter
from gs_contract import psnr_per_image

from tests.tiny import make_tiny_student, make_tiny_teacher


def test_ramps_follow_inverse_sqrt_in_int8() -> None:
    """Within 2.5% (float) and 4% (every intermediate and weight on its int8 grid) of 1/sqrt on
    1/8..4, flat outside: bounded and positive for any variance."""
    norm = ImageNorm()
    v = torch.linspace(0.125, VAR_MAX, 400).reshape(1, -1, 1, 1)
    with torch.no_grad():
        norm.quantise = False
        assert (norm.inverse_std(v) * v.sqrt() - 1).abs().max() < 0.025
        norm.quantise = True
        norm.train()
        norm.inverse_std(v)  # the output quantiser's range
        norm.eval()
        on_grid = norm.var_q(v)
        assert (norm.inverse_std(on_grid) * on_grid.sqrt() - 1).abs().max() < 0.04
        extremes = norm.inverse_std(torch.tensor([0.0, 1e-4, 50.0, 1e4]).reshape(1, -1, 1, 1)).flatten()
    assert torch.all(extremes > 0.45) and torch.all(extremes < 3.0)


@pytest.mark.parametrize("arch", ["cyclegan", "cartoongan"])
def test_exact_form_is_the_teacher_and_int8_form_is_close(arch: str) -> None:
    teacher = make_tiny_teacher(arch)
    teacher = RGBAdapter(teacher) if teacher.bgr_io else teacher  # as gs-compress loads it: RGB in and out
    x = torch.rand(3, 3, 32, 32, generator=torch.Generator().manual_seed(0)) * 2 - 1
    with torch.no_grad():
        target = teacher(x)
        for norm, floor in (("image-exact", 80.0), ("image", 30.0)):
            student = student_from_teacher(teacher, x, norm=norm).eval()
            set_quantisation(student, False)
            assert min(psnr_per_image(student(x).numpy(), target.numpy())) > floor, norm


def test_int8_form_quantises_every_intermediate() -> None:
    norm = ImageNorm()
    z = torch.randn(2, 6, 8, 8)
    norm.train()
    norm(z)
    assert all(q.is_fixed or bool(q.initialised) for q in norm.quantisers())
    with pytest.raises(TypeError):
        ImageNorm(exact=True)(z)  # the exact form needs its epsilon


def test_compaction_and_checkpoint_keep_function_and_teacher_channels(tmp_path: Path) -> None:
    student = make_tiny_student("cartoongan", prune=0.5, norm="image")
    x = torch.rand(2, 3, 32, 32) * 2 - 1
    small = channels.compact(student).eval()
    with torch.no_grad():
        assert torch.equal(student(x), small(x))
    kept = student.unit("down1").alive.nonzero().flatten()
    assert torch.equal(small.unit("down1").source, kept)
    save_student(tmp_path / "s.pt", small, teacher={"source": "tiny", "sha256": "", "arch": "cartoongan"})
    loaded, _ = load_student(tmp_path / "s.pt")
    assert loaded.norm == "image" and torch.equal(loaded.unit("down1").source, kept)
    with torch.no_grad():
        assert torch.equal(loaded(x), small(x))


def test_layer_loss_is_zero_for_the_teacher_and_grows_with_pruning() -> None:
    teacher = make_tiny_teacher("cyclegan")
    x = torch.rand(2, 3, 32, 32) * 2 - 1
    student = student_from_teacher(teacher, x, norm="image-exact").eval()
    set_quantisation(student, False)
    layers = LayerDistillation(teacher)
    with torch.no_grad():
        taps = student.record_taps(True)
        student(x)
        assert layers.loss(student, taps, layers.teacher_activations(x)) < 1e-5
        student.unit("down1").alive[::2] = 0
        small = channels.compact(student).eval()
        taps = small.record_taps(True)
        small(x)
        assert layers.loss(small, taps, layers.teacher_activations(x)) > 1e-3
        small.record_taps(False)
        assert small.unit("down1").taps is None


def test_per_image_students_train_without_colour_head() -> None:
    from compress.cli import apply_settings
    from compress.config import PRESETS

    assert apply_settings(PRESETS["quick"], {"--norm": "image"}).colour_head is False
    assert apply_settings(PRESETS["quick"], {}).colour_head is True


def test_clipped_prenorm_grids_cover_the_asked_fraction_and_only_with_a_per_image_norm() -> None:
    from compress.cli import apply_settings
    from compress.config import PRESETS, check_config
    from compress.errors import GsError
    from compress.quant import ActQuant

    student = make_tiny_student("cartoongan", prune=0.0, norm="image")
    student.clip_prenorm_ranges(0.4)
    prenorm = [u.conv_quant for u in student.units.values() if u.conv_quant is not None]
    assert prenorm and all(q.range_fraction == 0.4 for q in prenorm)
    assert all(u.out_quant.range_fraction == 1.0 for u in student.units.values())
    compacted = channels.compact(student)  # a smaller student computing the same function keeps its grids
    assert [u.conv_quant.range_fraction for u in compacted.units.values() if u.conv_quant is not None] == \
        [0.4] * len(prenorm)
    x = torch.randn(2, 4, 8, 8)
    q = ActQuant().train()
    q.range_fraction = 0.4
    y = q(x)
    assert (float(q.lo), float(q.hi)) == pytest.approx((0.4 * float(x.min()), 0.4 * float(x.max())))
    assert float(y.max()) <= 0.4 * float(x.max()) + q.qparams()[0]  # the outliers saturate (within a step)
    check_config(apply_settings(PRESETS["quick"], {"--norm": "image", "--prenorm-range": 0.4}))
    with pytest.raises(GsError, match="--prenorm-range 0.4 needs --norm image"):
        check_config(apply_settings(PRESETS["quick"], {"--prenorm-range": 0.4}))
