"""Tiny generators and students of the real topologies, built in the tests (no network, seconds)."""
from __future__ import annotations

import torch

from compress.colour import ColourHead
from compress.student import StudentGenerator, student_from_teacher
from compress.zoo import create_generator


def make_tiny_teacher(arch: str = "cyclegan", seed: int = 0) -> torch.nn.Module:
    """A randomly initialised small generator of the real topology (ngf 8, 2 blocks)."""
    torch.manual_seed(seed)
    gen = create_generator(arch, ngf=8, n_blocks=2).eval()
    with torch.no_grad():  # non-trivial norm affine, as in a trained network
        for name, p in gen.named_parameters():
            if name.endswith(("scale", "weight")) and p.dim() == 1:
                p.uniform_(0.5, 1.5)
            elif name.endswith(("shift", "bias")) and p.dim() == 1:
                p.uniform_(-0.2, 0.2)
    return gen


def make_tiny_student(arch: str = "cyclegan", prune: float = 0.4, seed: int = 0, size: int = 32,
                      colour: bool = True, norm: str = "fixed") -> StudentGenerator:
    """A calibrated student of a tiny teacher with a random `prune` fraction of every group dead and
    (with `colour`) a colour head with random, non-identity weights; `norm`: the student's normalisation."""
    teacher = make_tiny_teacher(arch, seed)
    gen = torch.Generator().manual_seed(seed)
    images = torch.rand(4, 3, size, size, generator=gen) * 2 - 1
    student = student_from_teacher(teacher, images, norm=norm)
    with torch.no_grad():
        for name, group in student.groups().items():
            dead = torch.randperm(group.size, generator=gen)[: int(prune * group.size)]
            student.alive_of(name)[dead] = 0
            student.scale_of(name)[dead] = 0
        if colour:
            head = student.attach_colour_head()
            head.calibrate(ColourHead.pooled(student.encode(images)))
            for p in (head.wg, head.wt):
                p.copy_(torch.randn(p.shape, generator=gen) * 0.01)  # a gentle grade, as a trained head
        student.calibrate(images)  # ranges of the pruned network
    return student.eval()
