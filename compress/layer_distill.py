"""Layer-wise distillation: every normalised unit of the student against the same channels of the teacher.

The student is cut from the teacher, so each of its output channels is one teacher channel
(`StudentUnit.source`, kept through compaction). After each normalisation the teacher's activation
(post-norm, pre-activation) is the target of the student unit's pre-activation on its alive channels:
a pruned student is told, layer by layer, what the teacher's function was, instead of only through the
output. Units without a norm (strided convs, the head) are left to the output terms.
"""
from __future__ import annotations

import torch
from torch import nn

from .student import StudentGenerator


class LayerDistillation:
    """Teacher activations by unit (forward hooks on its norms) and the per-unit L1 to the student's."""

    def __init__(self, teacher: nn.Module) -> None:
        self.teacher = teacher
        self.acts: dict[str, torch.Tensor] = {}
        # the hooks keep activations only inside teacher_activations: the teacher's encoder also runs
        # for the feature distance every step, and its norms must not be copied there
        self.recording = False
        for name, (_conv, norm) in teacher.unit_modules().items():
            if norm is not None:
                norm.register_forward_hook(self._keeper(name))

    def _keeper(self, name: str):  # noqa: ANN202 - a forward hook
        def keep(_module: nn.Module, _inputs: tuple, output: torch.Tensor) -> None:
            if self.recording:
                self.acts[name] = output.clone()  # the teacher's ReLU after the norm runs in place
        return keep

    @torch.no_grad()
    def teacher_activations(self, x: torch.Tensor) -> dict[str, torch.Tensor]:
        """Run the teacher on `x` and return its normalised activations by unit name."""
        self.acts, self.recording = {}, True
        try:
            self.teacher(x)
        finally:
            self.recording = False
        acts, self.acts = self.acts, {}
        return acts

    @staticmethod
    def loss(student: StudentGenerator, taps: dict[str, torch.Tensor], acts: dict[str, torch.Tensor]) -> torch.Tensor:
        """Mean over units of the L1 distance on alive channels (dead channels are exactly zero anyway)."""
        terms = []
        for name, target in acts.items():
            unit = student.unit(name)
            mask = unit.alive * student.trunk_alive if unit.in_trunk else unit.alive
            pred = taps[name]
            target = target[:, unit.source]
            diff = (pred - target).abs().mean(dim=(0, 2, 3))
            terms.append((diff * mask).sum() / mask.sum().clamp_min(1))
        return torch.stack(terms).mean()
