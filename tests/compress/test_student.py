"""The student: exact sub-pixel upsampling, masking, quantisation grids, pruning, compaction."""
from __future__ import annotations

from pathlib import Path

import pytest
import torch
import torch.nn.functional as F

from compress import channels
from compress.checkpoint import load_student, save_student
from compress.errors import CheckpointError
from compress.quant import ActQuant, affine_qparams, fake_quant_weight, set_quantisation
from compress.student import TRUNK, student_from_teacher
from compress.subpixel import convtranspose_to_subpixel

from tests.tiny import make_tiny_student, make_tiny_teacher


def test_subpixel_equals_convtranspose() -> None:
    ct = torch.nn.ConvTranspose2d(6, 5, 3, stride=2, padding=1, output_padding=1)
    x = torch.randn(2, 6, 7, 9)
    w = convtranspose_to_subpixel(ct.weight.detach())
    y = F.pixel_shuffle(F.conv2d(F.pad(x, (0, 1, 0, 1)), w, ct.bias.detach().repeat_interleave(4)), 2)
    assert torch.allclose(ct(x), y, atol=1e-5)


@pytest.mark.parametrize("arch", ["cyclegan", "cartoongan"])
def test_student_starts_close_to_teacher(arch: str) -> None:
    teacher = make_tiny_teacher(arch)
    x = torch.rand(1, 3, 32, 32) * 2 - 1
    student = student_from_teacher(teacher, x).eval()  # calibrated on this very image
    set_quantisation(student, False)
    with torch.no_grad():
        # a single calibration image: the first norm's population stats are its instance stats
        first = student.unit("stem")
        raw = first.conv(x, first.weight, first.bias)
        assert torch.allclose(raw.mean((0, 2, 3)), first.mu, atol=2e-3)  # input is int8-quantised
        assert student(x).shape == teacher(x).shape


def test_dead_channels_emit_exact_zero() -> None:
    student = make_tiny_student("cyclegan", prune=0.5)
    outs = {}
    for u in student.gen_spec.units():
        student.unit(u.name).register_forward_hook(lambda m, i, o, n=u.name: outs.__setitem__(n, o))
    with torch.no_grad():
        student(torch.rand(1, 3, 32, 32) * 2 - 1)
    dead = (student.unit("stem").alive == 0).nonzero().flatten()
    assert len(dead) > 0 and outs["stem"][:, dead].abs().max() == 0
    dead_t = (student.trunk_alive == 0).nonzero().flatten()
    assert outs["down2"][:, dead_t].abs().max() == 0


def test_weight_quantisation_is_per_channel_symmetric_int8() -> None:
    w = torch.randn(4, 3, 3, 3) * torch.tensor([1.0, 0.1, 5.0, 0.01])[:, None, None, None]
    q = fake_quant_weight(w)
    scale = w.abs().flatten(1).amax(1) / 127
    codes = q / scale[:, None, None, None]
    assert torch.allclose(codes, codes.round(), atol=1e-3) and codes.abs().max() <= 127.001
    assert (q - w).abs().max() <= scale.max() / 2 + 1e-6


def test_activation_grid_contains_zero_and_matches_affine() -> None:
    scale, zp = affine_qparams(-0.3, 2.0)
    assert -128 <= zp <= 127 and abs((zp - (-128)) * scale - 0.3) < scale
    q = ActQuant()
    q.train()
    q(torch.linspace(-0.3, 2.0, 100))
    q.eval()
    y = q(torch.tensor([0.0, 1.0]))
    assert y[0] == 0.0 and abs(y[1] - 1.0) <= q.qparams()[0] / 2 + 1e-6


def test_compact_preserves_the_function_and_drops_macs() -> None:
    student = make_tiny_student("cartoongan", prune=0.5)
    x = torch.rand(2, 3, 32, 32) * 2 - 1
    before_alloc = sum(p.numel() for p in student.parameters())
    small = channels.compact(student).eval()
    with torch.no_grad():
        assert torch.equal(student(x), small(x))
    assert sum(p.numel() for p in small.parameters()) < 0.5 * before_alloc
    assert small.macs(32, 32) == student.macs(32, 32)


def test_proximal_step_soft_thresholds_and_kills() -> None:
    student = make_tiny_student("cyclegan", prune=0.0)
    gamma = student.unit("stem").gamma
    with torch.no_grad():
        gamma[:2] = torch.tensor([0.005, -0.5])
    channels.proximal_step(student, lr=0.1, rho=0.1)  # threshold 0.01
    assert gamma[0] == 0 and student.unit("stem").alive[0] == 0
    assert abs(float(gamma[1].detach()) + 0.49) < 1e-6
    assert (student.trunk_gate >= 0).all()


def test_prune_to_budget_reaches_the_budget_and_keeps_minimum() -> None:
    student = make_tiny_student("cyclegan", prune=0.0)
    full = student.macs(32, 32)
    ref = channels.initial_reference(student)
    channels.prune_to_budget(student, full / 3, ref, 32, 32)
    assert student.macs(32, 32) <= full / 3 * 1.05
    assert all(int(student.alive_of(g).sum()) >= channels.MIN_CHANNELS for g in student.groups())
    assert student.channel_counts()["block0.a"][0] == int(student.alive_of(TRUNK).sum())


def test_checkpoint_roundtrip_and_errors(tmp_path: Path) -> None:
    student = make_tiny_student("cyclegan")
    path = tmp_path / "s.pt"
    save_student(path, student, step=3)
    loaded, payload = load_student(path)
    assert payload["step"] == 3
    x = torch.rand(1, 3, 32, 32) * 2 - 1
    with torch.no_grad():
        assert torch.equal(loaded(x), student(x))
    with pytest.raises(CheckpointError, match="expected cartoongan"):
        load_student(path, expect_arch="cartoongan")
    path.write_bytes(path.read_bytes()[:100])
    with pytest.raises(CheckpointError, match="cannot read"):
        load_student(path)
    torch.save({"format": "something else"}, path)
    with pytest.raises(CheckpointError, match="is not a gs-compress student checkpoint"):
        load_student(path)


def test_prune_to_budget_honours_a_parameter_budget_too() -> None:
    student = make_tiny_student("cyclegan", prune=0.0)
    full_macs, full_params = student.macs(32, 32), student.slim_params()
    channels.prune_to_budget(student, full_macs, channels.initial_reference(student), 32, 32,
                             target_params=full_params / 4)
    assert student.slim_params() <= full_params / 4
