"""The generator protocol: a new architecture is one module implementing `Generator` plus one registry line.

`TinyGenerator` below stands for such a module (its own key layout, BGR like CartoonGAN, a
ConvTranspose decoder); the fixture's `register_arch` call is the one line. Nothing else in the
project learns about it, yet it loads, becomes a student, counts MACs and exports both graphs.
"""
from __future__ import annotations

from pathlib import Path

import pytest
import torch
from torch import nn

from compress import zoo
from compress.macs import count_module_macs, count_spec_macs
from compress.quant import set_quantisation
from compress.student import student_from_teacher
from compress.zoo import available_archs, create_generator, load_generator, register_arch
from compress.zoo.cyclegan import instance_norm_affine
from compress.zoo.rgb import RGBAdapter
from compress.zoo.spec import GeneratorSpec, NormAffine, UnitSpec
from export.errors import ExportError
from export.graph import GraphModule
from export.pipeline import teacher_forward
from export.slim import slim_graph, teacher_graph

ARCH = "tiny-bgr"


class _BGRToRGB(nn.Module):
    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x.flip(1)


class TinyGenerator(nn.Module):
    """conv -> stride-2 conv -> n residual blocks -> ConvTranspose -> conv -> tanh; BGR in and out."""

    bgr_io = True

    def __init__(self, ngf: int = 4, n_blocks: int = 1) -> None:
        super().__init__()
        self.config = dict(ngf=ngf, n_blocks=n_blocks)
        c1, c2 = ngf, 2 * ngf
        self.stem, self.stem_norm = nn.Conv2d(3, c1, 3, 1, 1), nn.InstanceNorm2d(c1, affine=True)
        self.down, self.down_norm = nn.Conv2d(c1, c2, 3, 2, 1), nn.InstanceNorm2d(c2, affine=True)
        self.blocks = nn.ModuleList(nn.ModuleList([nn.Conv2d(c2, c2, 3, 1, 1), nn.InstanceNorm2d(c2, affine=True),
                                                   nn.Conv2d(c2, c2, 3, 1, 1), nn.InstanceNorm2d(c2, affine=True)])
                                    for _ in range(n_blocks))
        self.up, self.up_norm = nn.ConvTranspose2d(c2, c1, 3, 2, 1, 1), nn.InstanceNorm2d(c1, affine=True)
        self.head = nn.Conv2d(c1, 3, 3, 1, 1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        t = torch.relu(self.down_norm(self.down(torch.relu(self.stem_norm(self.stem(x))))))
        for conv_a, norm_a, conv_b, norm_b in self.blocks:
            t = t + norm_b(conv_b(torch.relu(norm_a(conv_a(t)))))
        return torch.tanh(self.head(torch.relu(self.up_norm(self.up(t)))))

    def spec(self) -> GeneratorSpec:
        c1, c2 = self.config["ngf"], 2 * self.config["ngf"]
        stem = (UnitSpec("stem", "conv", 3, c1, 3, 1, 1), UnitSpec("down", "conv", c1, c2, 3, 2, 1))
        blocks = tuple((UnitSpec(f"block{i}.a", "conv", c2, c2, 3, 1, 1),
                        UnitSpec(f"block{i}.b", "conv", c2, c2, 3, 1, 1, act="none"))
                       for i in range(self.config["n_blocks"]))
        tail = (UnitSpec("up", "up", c2, c1, 3, 2, 1),
                UnitSpec("head", "conv", c1, 3, 3, 1, 1, norm=False, act="tanh"))
        return GeneratorSpec(ARCH, stem, blocks, tail, input_bgr=self.bgr_io)

    def unit_modules(self) -> dict[str, tuple[nn.Module, nn.Module | None]]:
        out = {"stem": (self.stem, self.stem_norm), "down": (self.down, self.down_norm),
               "up": (self.up, self.up_norm), "head": (self.head, None)}
        for i, (conv_a, norm_a, conv_b, norm_b) in enumerate(self.blocks):
            out[f"block{i}.a"], out[f"block{i}.b"] = (conv_a, norm_a), (conv_b, norm_b)
        return out

    def encoder(self) -> nn.Module:
        return nn.Sequential(_BGRToRGB(), self.stem, self.stem_norm, nn.ReLU())

    def norm_affine(self, norm: nn.Module) -> NormAffine:
        return instance_norm_affine(norm)

    @staticmethod
    def canonical_keys(state: dict[str, torch.Tensor]) -> dict[str, torch.Tensor]:
        return dict(state)

    @staticmethod
    def infer_config(state: dict[str, torch.Tensor]) -> dict[str, int]:
        return {"ngf": int(state["stem.weight"].shape[0]),
                "n_blocks": len({k.split(".")[1] for k in state if k.startswith("blocks.")})}


@pytest.fixture
def tiny_arch(monkeypatch: pytest.MonkeyPatch) -> str:
    monkeypatch.setattr(zoo, "_REGISTRY", dict(zoo._REGISTRY))  # the registration ends with the test
    register_arch(ARCH, TinyGenerator)  # the one line a new architecture adds to the registry
    return ARCH


def _teacher(arch: str, seed: int = 0, **config: int) -> nn.Module:
    torch.manual_seed(seed)
    gen = create_generator(arch, **config).eval()
    with torch.no_grad():  # a non-trivial norm affine, as in a trained network
        for m in gen.modules():
            if isinstance(m, nn.InstanceNorm2d):
                m.weight.uniform_(0.5, 1.5)
                m.bias.uniform_(-0.2, 0.2)
    return gen


def _images(n: int = 2, size: int = 16) -> torch.Tensor:
    return torch.rand(n, 3, size, size, generator=torch.Generator().manual_seed(1)) * 2 - 1


def test_registered_arch_is_listed_and_loads_at_its_checkpoint_size(tiny_arch: str, tmp_path: Path) -> None:
    assert tiny_arch in available_archs()
    teacher = _teacher(tiny_arch, ngf=6, n_blocks=2)
    torch.save(teacher.state_dict(), tmp_path / "g.pth")
    loaded = load_generator(tiny_arch, tmp_path / "g.pth")
    assert loaded.config == {"ngf": 6, "n_blocks": 2}
    x = _images()
    with torch.no_grad():
        assert torch.equal(loaded(x), teacher(x))


def test_spec_counts_the_modules_macs(tiny_arch: str) -> None:
    teacher = _teacher(tiny_arch, n_blocks=2)
    spec = teacher.spec()
    full = {u.name: (u.in_ch, u.out_ch) for u in spec.units()}
    assert sum(count_spec_macs(spec, full, 32, 32).values()) == count_module_macs(teacher, 32, 32)


def test_student_takes_rgb_and_matches_the_teacher(tiny_arch: str) -> None:
    """Calibrated unquantised on one image, the fixed norms are that image's instance norms."""
    teacher = _teacher(tiny_arch)
    x = _images(1)
    student = student_from_teacher(teacher).eval()
    set_quantisation(student, False)
    student.calibrate(x)
    with torch.no_grad():
        assert (student(x) - teacher_forward(teacher, x)).abs().max().item() < 1e-4
    assert student.macs(32, 32) == sum(count_spec_macs(teacher.spec(), student.channel_counts(), 32, 32,
                                                        up_kernel=2).values())


def test_teacher_graph_of_the_new_arch(tiny_arch: str) -> None:
    teacher = _teacher(tiny_arch, n_blocks=2)
    x = _images()
    for model in (teacher, RGBAdapter(teacher)):
        with torch.no_grad():
            diff = (GraphModule(teacher_graph(model))(x) - teacher_forward(model, x)).abs().max()
        assert diff.item() < 1e-4


def test_slim_graph_of_the_new_arch(tiny_arch: str) -> None:
    teacher = _teacher(tiny_arch, ngf=8, n_blocks=2)
    x = _images(4)
    student = student_from_teacher(teacher, x).eval()
    with torch.no_grad():
        for name, group in student.groups().items():
            student.alive_of(name)[: group.size // 4] = 0
    student.calibrate(x)
    graph = slim_graph(student)
    set_quantisation(student, False)
    with torch.no_grad():
        assert (GraphModule(graph)(x) - student(x)).abs().max().item() < 1e-4
    assert graph.params() == student.slim_params()


def test_a_norm_without_per_image_affine_is_refused_by_the_generator() -> None:
    teacher = create_generator("cyclegan", ngf=4, n_blocks=1, norm="batch")
    with pytest.raises(ExportError, match="unsupported teacher normalisation BatchNorm2d"):
        teacher_graph(teacher)
