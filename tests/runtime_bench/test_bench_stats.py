"""Latency statistics, the noise band and the environment record."""
from __future__ import annotations

import hashlib
from pathlib import Path

import numpy as np
import pytest

from gs_contract import sha256_file
from runtime_bench import stats


def test_summarize_percentiles() -> None:
    t = list(range(1, 101))  # 1..100 ms
    s = stats.summarize(t)
    assert s["n"] == 100 and s["min"] == 1 and s["max"] == 100
    assert s["mean"] == pytest.approx(50.5) and s["p50"] == pytest.approx(50.5)
    assert s["p90"] == pytest.approx(90.1) and s["p99"] == pytest.approx(99.01)
    assert s["std"] == pytest.approx(np.std(t, ddof=1))
    with pytest.raises(ValueError):
        stats.summarize([])


def test_noise_band() -> None:
    assert stats.noise_band([5.0] * 30) == 0.0
    rng = np.random.default_rng(0)
    small = stats.noise_band(10 + rng.normal(0, 0.1, 400))
    big = stats.noise_band(10 + rng.normal(0, 1.0, 400))
    few = stats.noise_band(10 + rng.normal(0, 1.0, 25))
    assert small < big < few
    assert big == pytest.approx(1.96 * 1.2533 * 1.0 / 20 / 10, rel=0.2)  # SE of the median, 95 %
    # one descheduled run does not widen the band much (MAD, not std)
    t = list(10 + rng.normal(0, 0.1, 100))
    assert stats.noise_band(t + [1000.0]) < 2 * stats.noise_band(t)
    assert stats.ratio_noise(0.03, 0.04) == pytest.approx(0.05)


def test_cpu_model_parsing() -> None:
    assert stats.cpu_model("processor\t: 0\nmodel name\t: Intel(R) Xeon(R) Processor\n") == "Intel(R) Xeon(R) Processor"
    arm = "processor\t: 0\nBogoMIPS\t: 108.00\nCPU implementer\t: 0x41\nCPU part\t: 0xd08\n"
    assert stats.cpu_model(arm) == "ARM implementer 0x41 part 0xd08"
    assert stats.cpu_model("Hardware\t: BCM2835\nModel\t: Raspberry Pi 4\n") == "BCM2835"


_X86 = "processor\t: 0\nmodel name\t: CPU\nflags\t\t: fpu sse2 avx avx2 fma {}\nprocessor\t: 1\nflags\t\t: fpu\n"
_ARM = "processor\t: 0\nFeatures\t: fp asimd aes crc32 {}\nCPU part\t: 0xd0c\n"


@pytest.mark.parametrize("cpuinfo, flags, summary", [
    (_X86.format(""), ["avx2"], "x86-64 AVX2 (no VNNI)"),
    (_X86.format("avx512f avx512bw"), ["avx2", "avx512f", "avx512bw"], "x86-64 AVX-512 (no VNNI)"),
    (_X86.format("avx_vnni"), ["avx2", "avx_vnni"], "x86-64 AVX-VNNI"),
    (_X86.format("avx512f avx512_vnni avx_vnni"), ["avx2", "avx512f", "avx512_vnni", "avx_vnni"], "x86-64 AVX-512 VNNI"),
    (_X86.format("avx512f avx512_vnni amx_tile amx_int8"), ["avx2", "avx512f", "avx512_vnni", "amx_tile", "amx_int8"],
     "x86-64 AMX-INT8 + AVX-512 VNNI"),
    ("processor\t: 0\nflags\t\t: fpu sse2\n", [], "x86-64 (no AVX2)"),
    (_ARM.format(""), ["asimd"], "aarch64 (no dotprod)"),
    (_ARM.format("asimddp"), ["asimd", "asimddp"], "aarch64 dotprod"),
    (_ARM.format("asimddp sve i8mm"), ["asimd", "asimddp", "i8mm", "sve"], "aarch64 i8mm SVE"),
])
def test_isa_from_cpuinfo(cpuinfo: str, flags: list[str], summary: str) -> None:
    assert stats.isa(cpuinfo) == {"summary": summary, "flags": flags}


def test_isa_without_cpuinfo() -> None:
    isa = stats.isa("")
    assert isa["flags"] == [] and isa["summary"].endswith("(flags unknown)")


def test_environment_and_sha(tmp_path: Path) -> None:
    env = stats.environment(2)
    assert env["threads"] == 2 and env["cpu_model"] and env["versions"]["python"]
    assert env["isa"] == stats.isa()
    if Path("/proc/cpuinfo").is_file():  # this host's flags, read independently
        words = set(Path("/proc/cpuinfo").read_text().split())
        assert set(env["isa"]["flags"]) == {f for fs in stats.INT8_FLAGS.values() for f in fs} & words
        assert ("VNNI" in env["isa"]["summary"] and "no VNNI" not in env["isa"]["summary"]) == bool(
            {"avx512_vnni", "avx_vnni"} & words)
    assert env["versions"]["numpy"] == np.__version__
    p = tmp_path / "f.bin"
    p.write_bytes(b"abc" * 1000)
    assert sha256_file(p, chunk=7) == hashlib.sha256(b"abc" * 1000).hexdigest()
    before = stats.peak_rss_mb()
    blob = np.ones(64 * 2**20 // 8)  # 64 MiB touched
    assert stats.peak_rss_mb() >= before and stats.peak_rss_mb() > 60
    del blob
