"""Latency statistics, the noise band and the environment record."""
from __future__ import annotations

import hashlib
from pathlib import Path

import numpy as np
import pytest

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


def test_environment_and_sha(tmp_path: Path) -> None:
    env = stats.environment(2)
    assert env["threads"] == 2 and env["cpu_model"] and env["versions"]["python"]
    assert env["versions"]["numpy"] == np.__version__
    p = tmp_path / "f.bin"
    p.write_bytes(b"abc" * 1000)
    assert stats.sha256_file(p, chunk=7) == hashlib.sha256(b"abc" * 1000).hexdigest()
    before = stats.peak_rss_mb()
    blob = np.ones(64 * 2**20 // 8)  # 64 MiB touched
    assert stats.peak_rss_mb() >= before and stats.peak_rss_mb() > 60
    del blob
