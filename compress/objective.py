"""The GS objective: distillation to the teacher + LSGAN (teacher outputs are "real") + sparsity.

min_{W, gamma, q} max_D  beta * L_dist(G_s(x), G_t(x)) + lambda_gan * L_GAN(D, G_s(x), G_t(x)) + rho * |gamma|_1

The sparsity term is not a loss here: it is applied as a proximal step after each optimiser step
(compress.channels.proximal_step), as in the reference implementation.

Distillation: pixel L1 plus an L1 distance between features of the frozen teacher's own encoder
(stem + first downsampling stage). VGG16 weights are not obtainable offline; the teacher's encoder
is a convnet trained on exactly this image domain, costs ~0.5 GMAC at 128x128, and its feature
distance penalises missing texture that pixel L1 averages away (see README for the ablation).
"""
from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn


class PatchDiscriminator(nn.Module):
    """PatchGAN (70x70 receptive field with n_layers=3), as in pix2pix / CycleGAN, InstanceNorm."""

    def __init__(self, in_ch: int = 3, ndf: int = 64, n_layers: int = 3) -> None:
        super().__init__()
        layers: list[nn.Module] = [nn.Conv2d(in_ch, ndf, 4, 2, 1), nn.LeakyReLU(0.2, True)]
        ch = ndf
        for i in range(1, n_layers + 1):
            nxt = ndf * min(2 ** i, 8)
            stride = 2 if i < n_layers else 1
            layers += [nn.Conv2d(ch, nxt, 4, stride, 1), nn.InstanceNorm2d(nxt, affine=True), nn.LeakyReLU(0.2, True)]
            ch = nxt
        layers.append(nn.Conv2d(ch, 1, 4, 1, 1))
        self.net = nn.Sequential(*layers)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.net(x)


class ReplayBuffer:
    """The 50-image history of generated images the discriminator is trained on (Shrivastava et al.)."""

    def __init__(self, capacity: int = 50) -> None:
        self.capacity = capacity
        self.images: list[torch.Tensor] = []

    def push_and_sample(self, batch: torch.Tensor, gen: torch.Generator) -> torch.Tensor:
        """Store `batch`; return a batch where each image is, with p=0.5, swapped for a stored one."""
        out = []
        for img in batch.detach():
            img = img.unsqueeze(0)
            if len(self.images) < self.capacity:
                self.images.append(img.clone())
                out.append(img)
            elif torch.rand((), generator=gen) < 0.5:
                idx = int(torch.randint(len(self.images), (), generator=gen))
                out.append(self.images[idx].clone())
                self.images[idx] = img.clone()
            else:
                out.append(img)
        return torch.cat(out)

    def state_dict(self) -> dict:
        return {"capacity": self.capacity, "images": [t.clone() for t in self.images]}

    def load_state_dict(self, state: dict) -> None:
        self.capacity = state["capacity"]
        self.images = [t.clone() for t in state["images"]]


class FeatureDistance(nn.Module):
    """Mean L1 distance between frozen-encoder features of two images."""

    def __init__(self, encoder: nn.Module) -> None:
        super().__init__()
        self.encoder = encoder.eval()
        for p in self.encoder.parameters():
            p.requires_grad_(False)

    def forward(self, a: torch.Tensor, b: torch.Tensor) -> torch.Tensor:
        with torch.no_grad():
            fb = self.encoder(b)
        return F.l1_loss(self.encoder(a), fb)


def lsgan(pred: torch.Tensor, real: bool) -> torch.Tensor:
    """Least-squares GAN loss against target 1 (real) or 0 (fake)."""
    return F.mse_loss(pred, torch.full_like(pred, 1.0 if real else 0.0))


class GSObjective(nn.Module):
    """Generator-side loss terms and the discriminator loss."""

    def __init__(self, feature: FeatureDistance | None, beta: float, w_feat: float, lambda_gan: float) -> None:
        super().__init__()
        self.feature = feature
        self.beta, self.w_feat, self.lambda_gan = beta, w_feat, lambda_gan

    def generator_terms(self, student_out: torch.Tensor, teacher_out: torch.Tensor,
                        disc: nn.Module | None) -> dict[str, torch.Tensor]:
        terms = {"l1": F.l1_loss(student_out, teacher_out)}
        if self.feature is not None and self.w_feat > 0:
            terms["feat"] = self.feature(student_out, teacher_out)
        dist = terms["l1"] + self.w_feat * terms.get("feat", torch.zeros(()))
        total = self.beta * dist
        if disc is not None and self.lambda_gan > 0:
            terms["gan_g"] = lsgan(disc(student_out), True)
            total = total + self.lambda_gan * terms["gan_g"]
        terms["total"] = total
        return terms

    @staticmethod
    def discriminator_loss(disc: nn.Module, teacher_out: torch.Tensor, fake: torch.Tensor) -> torch.Tensor:
        return 0.5 * (lsgan(disc(teacher_out), True) + lsgan(disc(fake.detach()), False))
