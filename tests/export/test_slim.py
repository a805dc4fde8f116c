"""Physical channel removal is exact: slim graph == masked student (fp32 and fake-quant), both archs."""
from __future__ import annotations

import pytest
import torch

from compress.quant import set_quantisation
from compress.checkpoint import load_student
from export.graph import GraphModule
from export.pipeline import teacher_forward
from export.slim import slim_graph, teacher_graph
from export.validate import load_images
from tests.tiny import make_tiny_teacher


def _inputs(size: int = 64) -> torch.Tensor:
    photos = load_images(size)[:1]  # skimage astronaut, the app's crop/resize
    noise = torch.rand(2, 3, size, size, generator=torch.Generator().manual_seed(1)) * 2 - 1
    return torch.cat([photos, noise])


def test_slim_fp32_equals_masked_student(tiny_student_ckpt) -> None:
    student, _ = load_student(tiny_student_ckpt)
    graph = slim_graph(student)
    x = _inputs()
    set_quantisation(student, False)
    with torch.no_grad():
        diff = (GraphModule(graph)(x) - student(x)).abs().max().item()
    assert diff < 1e-4


def test_slim_fake_quant_matches_student(tiny_student_ckpt) -> None:
    student, _ = load_student(tiny_student_ckpt)
    x = _inputs()
    graph = slim_graph(student)
    with torch.no_grad():
        ref, out = student(x), GraphModule(graph, quantise=True)(x)
        gain, _ = student.colour.modulation(student.encode(x), student.trunk_alive)
    # same grids and weights; only summation order differs, so at most a rare one-step flip; the
    # colour grade multiplies a flipped pre-activation step by its gain (then regrids it)
    c, pre_q = graph.colour, graph.tail[-1].pre_q
    tol = 2 / 128 + pre_q.scale * float(gain.abs().max()) + c.mul_q.scale + c.grade_q.scale
    assert (out - ref).abs().max().item() <= tol + 1e-6
    assert (out == ref).float().mean().item() > 0.98


def test_slim_is_physically_smaller(tiny_student_ckpt) -> None:
    student, _ = load_student(tiny_student_ckpt)
    graph = slim_graph(student)
    counts = student.channel_counts()
    for layer in graph.layers():
        assert (layer.in_channels, layer.out_channels) == counts[layer.name]
    assert graph.params() == student.slim_params()
    assert graph.params() < sum(p.numel() for n, p in student.named_parameters() if n.endswith(("weight", "bias")))


def test_dead_channels_emit_exact_zero(tiny_student_ckpt) -> None:
    """Why no constant needs folding: a dead channel's output is exactly 0 in the masked student."""
    student, _ = load_student(tiny_student_ckpt)
    seen = {}
    hooks = [student.unit(name).register_forward_hook(lambda m, i, o, n=name: seen.__setitem__(n, o))
             for name in student.groups() if name != "trunk"]
    with torch.no_grad():
        student(_inputs(32))
    for h in hooks:
        h.remove()
    for name, out in seen.items():
        dead = student.alive_of(name) == 0
        assert dead.any() and out[:, dead].abs().max().item() == 0.0


@pytest.mark.parametrize(("arch", "wrap"), [("cyclegan", False), ("cartoongan", False), ("cartoongan", True)])
def test_teacher_graph_equals_teacher(arch: str, wrap: bool) -> None:
    """The exported teacher takes and returns RGB, for bare zoo models and `load_teacher`'s RGBAdapter."""
    from compress.zoo.rgb import RGBAdapter

    model = make_tiny_teacher(arch)
    if wrap:  # load_teacher wraps BGR generators only
        model = RGBAdapter(model)
    x = _inputs(32)
    with torch.no_grad():
        diff = (GraphModule(teacher_graph(model))(x) - teacher_forward(model, x)).abs().max()
        if arch == "cartoongan":  # the zoo model itself is BGR
            assert (teacher_forward(model, x) - make_tiny_teacher(arch)(x.flip(1)).flip(1)).abs().max() < 1e-6
    assert diff.item() < 1e-4


def test_compacted_student_exports_the_same_graph() -> None:
    """A student compacted during training (narrower spec) slims to the same graph and channel table."""
    from compress.channels import compact
    from export.slim import channel_table
    from tests.tiny import make_tiny_student

    student = make_tiny_student()
    small = compact(student).eval()
    full_g, small_g = slim_graph(student), slim_graph(small)
    for a, b in zip(full_g.layers(), small_g.layers()):
        assert a.weight.shape == b.weight.shape and torch.allclose(a.weight, b.weight, atol=1e-6)
        assert a.out_q == b.out_q
    teacher_spec = make_tiny_teacher().spec()
    assert channel_table(small, teacher_spec) == channel_table(student, teacher_spec) == channel_table(student)
