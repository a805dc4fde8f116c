"""Latency statistics, the noise band, peak memory and the environment record.

Only numpy and the standard library are needed (psutil is used when present), so this module
also runs on a remote board.
"""
from __future__ import annotations

import math
import os
import platform
import sys
from pathlib import Path
from typing import Any, Sequence

import numpy as np


#: distributions whose versions go into every environment record.
_VERSIONED = ("numpy", "torch", "onnxruntime", "ai-edge-litert", "tensorflow-cpu", "onnx")


def summarize(times_ms: Sequence[float]) -> dict[str, float]:
    """mean/std/min/max/p50/p90/p99 of per-run latencies (ms), their count and the noise band."""
    t = np.asarray(times_ms, dtype=np.float64)
    if t.size == 0:
        raise ValueError("no timings to summarise")
    p50, p90, p99 = np.percentile(t, [50, 90, 99])
    return {"n": int(t.size), "mean": float(t.mean()), "std": float(t.std(ddof=1)) if t.size > 1 else 0.0,
            "min": float(t.min()), "max": float(t.max()), "p50": float(p50), "p90": float(p90),
            "p99": float(p99), "noise": noise_band(t)}


def noise_band(times_ms: Sequence[float]) -> float:
    """Relative half-width (fraction of p50) of a ~95 % interval for the median latency.

    Uses the median absolute deviation (robust to the odd descheduled run): the standard error
    of the median is about 1.2533 * sigma / sqrt(n), with sigma = 1.4826 * MAD. A between-run
    difference smaller than the sum of both runs' bands is not distinguishable from noise.
    """
    t = np.asarray(times_ms, dtype=np.float64)
    if t.size < 2:
        return 1.0
    med = float(np.median(t))
    if med <= 0:
        return 1.0
    sigma = 1.4826 * float(np.median(np.abs(t - med)))
    return float(1.96 * 1.2533 * sigma / math.sqrt(t.size) / med)


def ratio_noise(noise_a: float, noise_b: float) -> float:
    """Relative noise of a ratio of two independent measurements."""
    return float(math.hypot(noise_a, noise_b))


def peak_rss_mb() -> float:
    """Peak resident set size of this process so far, in MiB (getrusage; Linux reports KiB)."""
    import resource

    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    return peak / (1024 * 1024) if sys.platform == "darwin" else peak / 1024


def current_rss_mb() -> float | None:
    """Current resident set size in MiB (psutil if available, else /proc)."""
    try:
        import psutil

        return psutil.Process().memory_info().rss / 2**20
    except ImportError:
        try:
            pages = int(Path("/proc/self/statm").read_text().split()[1])
            return pages * os.sysconf("SC_PAGE_SIZE") / 2**20
        except (OSError, ValueError, IndexError):
            return None


#: /proc/cpuinfo flags that decide int8 speed: the dot-product (VNNI / dotprod / i8mm) and matrix (AMX)
#: instructions; without them x86 int8 GEMMs fall back to VPMADDUBSW (AVX2 / AVX-512) pairs.
INT8_FLAGS = {
    "x86": ("avx2", "avx512f", "avx512bw", "avx512_vnni", "avx_vnni", "amx_tile", "amx_int8", "amx_bf16"),
    "arm": ("asimd", "asimddp", "i8mm", "sve", "sve2"),
}


def _cpuinfo(cpuinfo: str | None) -> dict[str, str]:
    """The first value of each "key : value" line of /proc/cpuinfo (or of the text given)."""
    if cpuinfo is None:
        try:
            cpuinfo = Path("/proc/cpuinfo").read_text(errors="replace")
        except OSError:
            cpuinfo = ""
    fields: dict[str, str] = {}
    for line in cpuinfo.splitlines():
        key, sep, value = line.partition(":")
        if sep and key.strip() not in fields:
            fields[key.strip()] = value.strip()
    return fields


def cpu_model(cpuinfo: str | None = None) -> str:
    """CPU model name from /proc/cpuinfo (x86 "model name", ARM "Hardware"/"CPU part"), else platform."""
    fields = _cpuinfo(cpuinfo)
    for key in ("model name", "Hardware", "Model", "cpu model"):
        if fields.get(key):
            return fields[key]
    if fields.get("CPU part"):
        return f"ARM implementer {fields.get('CPU implementer', '?')} part {fields['CPU part']}"
    return platform.processor() or platform.machine()


def _isa_summary(family: str, flags: set[str]) -> str:
    """One label for the best int8 instructions among `flags`."""
    if family == "x86":
        vector = next((label for flag, label in (("avx512_vnni", "AVX-512 VNNI"), ("avx_vnni", "AVX-VNNI"),
                                                 ("avx512f", "AVX-512 (no VNNI)"), ("avx2", "AVX2 (no VNNI)"))
                       if flag in flags), "(no AVX2)")
        return f"x86-64 {'AMX-INT8 + ' if 'amx_int8' in flags else ''}{vector}"
    for flag, label in (("i8mm", "i8mm"), ("asimddp", "dotprod")):
        if flag in flags:
            return f"aarch64 {label}" + (" SVE" if "sve" in flags else "")
    return "aarch64 (no dotprod)"


def isa(cpuinfo: str | None = None) -> dict[str, Any]:
    """The int8-relevant CPU flags present (x86 "flags", ARM "Features" of /proc/cpuinfo) and a summary
    such as "x86-64 AVX2 (no VNNI)"; without /proc/cpuinfo flags is empty and the summary the machine."""
    fields = _cpuinfo(cpuinfo)
    family = "x86" if "flags" in fields else "arm" if "Features" in fields else None
    if family is None:
        return {"summary": f"{platform.machine() or 'unknown'} (flags unknown)", "flags": []}
    present = set(fields["flags" if family == "x86" else "Features"].split())
    flags = [f for f in INT8_FLAGS[family] if f in present]
    return {"summary": _isa_summary(family, set(flags)), "flags": flags}


def versions() -> dict[str, str | None]:
    """Versions of the runtimes that matter, read from package metadata (no imports)."""
    from importlib import metadata

    out: dict[str, str | None] = {"python": platform.python_version()}
    for dist in _VERSIONED:
        try:
            out[dist] = metadata.version(dist)
        except metadata.PackageNotFoundError:
            out[dist] = None
    return out


def environment(threads: int) -> dict[str, Any]:
    """Everything needed to decide whether two runs are comparable."""
    try:
        affinity = len(os.sched_getaffinity(0))
    except AttributeError:
        affinity = os.cpu_count()
    physical = None
    try:
        import psutil

        physical = psutil.cpu_count(logical=False)
    except ImportError:
        pass
    try:
        load = [round(v, 2) for v in os.getloadavg()]
    except OSError:
        load = None
    return {"cpu_model": cpu_model(), "isa": isa(), "machine": platform.machine(), "system": platform.system(),
            "logical_cores": os.cpu_count(), "physical_cores": physical, "usable_cores": affinity,
            "threads": int(threads), "load_average": load, "versions": versions()}
