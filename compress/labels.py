"""The precision the teacher labels a run's views in: bfloat16 where the processor has it natively.

Labelling is most of a cold run's teacher time (1600 views of 256 px take 16-20 min in float32 on two
cores). Under bfloat16 autocast the teacher runs about twice as fast on processors with native bf16
dot products (x86 avx512_bf16 or amx_bf16, Arm bf16, CUDA GPUs) and its labels stay within about
60 dB PSNR of the float32 ones (docs/RESULTS.md), far closer than any student comes to the teacher.
Elsewhere bf16 is emulated and slower, so "auto" keeps float32 there. The val targets, against which
every quality figure is measured, are always computed in float32, and so is the label bank
(compress/bank.py: its views are shared by runs on one machine, whatever their setting).
"""
from __future__ import annotations

from contextlib import nullcontext
from functools import lru_cache
from pathlib import Path
from typing import ContextManager

import torch

PRECISIONS = ("auto", "float32", "bfloat16")
BF16_CPU_FLAGS = frozenset({"avx512_bf16", "amx_bf16", "bf16"})  # /proc/cpuinfo names (x86, x86 AMX, Arm)


@lru_cache(maxsize=1)
def cpu_flags() -> frozenset[str]:
    """The processor's feature flags from /proc/cpuinfo (empty where there is none)."""
    try:
        lines = Path("/proc/cpuinfo").read_text(errors="replace").splitlines()
    except OSError:
        return frozenset()
    return frozenset(word for line in lines if ":" in line and line.split(":")[0].strip() in ("flags", "Features")
                     for word in line.split(":", 1)[1].split())


def label_precision(setting: str, device: torch.device | str) -> str:
    """`setting` resolved for `device`: "auto" is bfloat16 where the device computes it natively."""
    if setting != "auto":
        return setting
    if torch.device(device).type == "cuda":
        return "bfloat16" if torch.cuda.is_bf16_supported() else "float32"
    return "bfloat16" if BF16_CPU_FLAGS & cpu_flags() else "float32"


def labelling(precision: str, device: torch.device | str) -> ContextManager:
    """The autocast context the teacher labels in (`precision` as label_precision resolves it)."""
    if precision == "float32":
        return nullcontext()
    return torch.autocast(torch.device(device).type, dtype=torch.bfloat16)
