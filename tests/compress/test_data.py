"""Photo loading, the default set's manifest, training crops and val batches (no network)."""
from __future__ import annotations

import json
import shutil
import warnings
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image

from compress import data, photos_debian, photos_pip
from compress.data import CropDataset, load_photo_folder, val_batch
from compress.photo_types import DataError, DataWarning, PhotoEntry, PhotoSet
from gs_contract import photos as gs_photos
from gs_contract import sha256_file


def _gradient(w: int, h: int) -> np.ndarray:
    x = np.linspace(0, 255, w, dtype=np.float64)[None, :, None]
    y = np.linspace(0, 255, h, dtype=np.float64)[:, None, None]
    return np.concatenate([np.broadcast_to(x, (h, w, 1)), np.broadcast_to(y, (h, w, 1)),
                           np.full((h, w, 1), 128.0)], axis=2).astype(np.uint8)


@pytest.fixture
def messy_folder(tmp_path: Path) -> Path:
    """One image of every awkward kind, plus junk."""
    rgb = Image.fromarray(_gradient(120, 90))
    rgb.save(tmp_path / "rgb.jpg")
    rgb.convert("L").save(tmp_path / "grey.png")
    rgb.convert("CMYK").save(tmp_path / "cmyk.jpg")
    rgb.convert("P").save(tmp_path / "palette.bmp")
    rgba = rgb.convert("RGBA")
    rgba.putalpha(0)                                   # fully transparent -> white
    rgba.save(tmp_path / "rgba.png")
    deep = (np.arange(100 * 80, dtype=np.uint32).reshape(80, 100) * 8).astype(np.uint16)
    Image.fromarray(deep).save(tmp_path / "deep16.png")
    (tmp_path / "sub").mkdir()
    rgb.save(tmp_path / "sub" / "nested.webp")
    rgb.resize((40, 30)).save(tmp_path / "tiny.png")
    (tmp_path / "corrupt.jpg").write_bytes(b"\xff\xd8\xff\xe0 not really a jpeg")
    (tmp_path / "notes.txt").write_text("ignored")
    return tmp_path


def _by_name(photos: PhotoSet) -> dict[str, tuple[np.ndarray, PhotoEntry]]:
    return {e.name: (img, e) for img, e in zip(photos.images, photos.entries)}


def test_folder_converts_or_skips_with_warnings(messy_folder: Path) -> None:
    with pytest.warns(DataWarning) as record:
        photos = load_photo_folder(messy_folder)
    messages = " ".join(str(w.message) for w in record)
    for expected in ("corrupt.jpg", "tiny.png", "too small", "grayscale", "CMYK", "alpha", "high bit depth"):
        assert expected in messages
    found = _by_name(photos)
    assert set(found) == {"rgb", "grey", "cmyk", "palette", "rgba", "deep16", "sub/nested"}
    assert {s["path"].rsplit("/", 1)[-1] for s in photos.skipped} == {"corrupt.jpg", "tiny.png"}
    for img, entry in found.values():
        assert img.dtype == np.uint8 and img.ndim == 3 and img.shape[2] == 3
        assert entry.licence == "user-supplied" and Path(entry.source["path"]).is_file()
        assert entry.sha256 == sha256_file(Path(entry.source["path"]))
    assert (found["rgba"][0] == 255).all()
    grey = found["grey"][0]
    assert (grey[..., 0] == grey[..., 1]).all() and (grey[..., 1] == grey[..., 2]).all()
    deep = found["deep16"][0]                          # 16-bit scaled down, not clipped at 255
    assert deep.max() == round(int((100 * 80 - 1) * 8) / 257) and deep.min() == 0
    assert (found["deep16"][1].width, found["deep16"][1].height) == (100, 80)


def test_huge_image_downscaled_and_bomb_guard(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    Image.new("RGB", (8100, 300), (10, 200, 30)).save(tmp_path / "wide.jpg")
    with pytest.warns(DataWarning, match="huge"):
        photos = load_photo_folder(tmp_path, max_short_side=None)
    assert max(photos.images[0].shape[:2]) == 8000 and photos.entries[0].width == 8100
    monkeypatch.setattr(gs_photos, "MAX_DECODE_PIXELS", 1000)
    with pytest.warns(DataWarning, match="too large"), pytest.raises(DataError, match="none of the 1"):
        load_photo_folder(tmp_path)


def test_folder_errors_are_one_line(tmp_path: Path) -> None:
    for bad in (tmp_path / "missing", tmp_path):
        with pytest.raises(DataError) as err:
            load_photo_folder(bad)
        assert "\n" not in str(err.value) and isinstance(err.value, ValueError)
    (tmp_path / "broken.png").write_bytes(b"garbage")
    with pytest.warns(DataWarning), pytest.raises(DataError, match="none of the 1 image files"):
        load_photo_folder(tmp_path)


def test_split_is_fixed_and_manifest_round_trips(messy_folder: Path, tmp_path: Path) -> None:
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", DataWarning)
        a, b = load_photo_folder(messy_folder), load_photo_folder(messy_folder)
    assert a.split == b.split and a.split.count("val") == 2       # round(7 * 0.25)
    val_shas = sorted(e.sha256 for e in a.entries if e.split == "val")
    assert val_shas == sorted(e.sha256 for e in a.entries)[:2]
    manifest = json.loads(a.write_manifest(tmp_path / "out" / "manifest.json").read_text())
    assert manifest["counts"] == {"train": 5, "val": 2}
    assert {"name", "source", "licence", "sha256", "width", "height", "split"} <= set(manifest["photos"][0])


def test_single_photo_serves_train_and_val(tmp_path: Path) -> None:
    Image.fromarray(_gradient(100, 100)).save(tmp_path / "only.png")
    photos = load_photo_folder(tmp_path)
    assert photos.indices("train") == photos.indices("val") == [0]


def _images() -> list[np.ndarray]:
    return [_gradient(300, 200), _gradient(160, 240)]


def test_crops_are_deterministic_per_seed_and_index() -> None:
    ds = CropDataset(_images(), crop=64, seed=3, length=6)
    first = torch.stack([ds[i] for i in range(len(ds))])
    assert first.shape == (6, 3, 64, 64) and first.dtype == torch.float32
    assert first.min() >= -1.0 and first.max() <= 1.0
    again = CropDataset(_images(), crop=64, seed=3, length=6)   # e.g. a resumed run
    assert torch.equal(first, torch.stack([again[i] for i in range(6)]))
    assert not torch.equal(first[0], first[2])  # same image (index % 2), another crop
    other_seed = CropDataset(_images(), crop=64, seed=4, length=6)
    assert not torch.equal(first, torch.stack([other_seed[i] for i in range(6)]))


def test_crop_params_stay_inside_and_flip_mirrors() -> None:
    rng = np.random.default_rng(0)
    params = [data.crop_params(rng, 300, 200, 64, (1.0, 1.5)) for _ in range(200)]
    for p in params:
        assert 200 / 1.5 - 1e-6 <= p.side <= 200 + 1e-6
        assert p.left >= 0 and p.top >= 0 and p.left + p.side <= 300 + 1e-6 and p.top + p.side <= 200 + 1e-6
    assert 0 < sum(p.flip for p in params) < 200
    img = _gradient(300, 200)
    p = data.CropParams(10.0, 20.0, 100.0, False)
    flipped = data.apply_crop(img, data.CropParams(10.0, 20.0, 100.0, True), 32)
    assert np.array_equal(flipped, data.apply_crop(img, p, 32)[:, ::-1])


def test_val_batch_center_crops() -> None:
    batch = val_batch(_images(), size=48)
    assert batch.shape == (2, 3, 48, 48) and batch.min() >= -1 and batch.max() <= 1
    square = np.zeros((100, 100, 3), np.uint8)
    square[:, :, 0] = 255
    red = val_batch([square], size=32)[0]
    assert torch.allclose(red[0], torch.ones(32, 32)) and torch.allclose(red[1], -torch.ones(32, 32))
    with pytest.raises(DataError):
        val_batch([])


def test_default_pip_photos_manifest(tmp_path: Path) -> None:
    photos = data.build_default_photos(tmp_path, include_debian=False)
    names = [e.name for e in photos.entries]
    assert {"astronaut", "chelsea", "coffee", "rocket", "china", "flower", "grace_hopper"} <= set(names)
    assert not {"colorwheel", "retina", "hubble_deep_field", "eagle"} & set(names)
    root = Path(photos_pip.package_dir("skimage")).parent
    for img, e in zip(photos.images, photos.entries):
        assert e.sha256 == sha256_file(root / e.source["path"]), e.name
        assert e.licence.strip() and "==" in e.source["package"]
        assert img.shape[:2] == (e.height, e.width) and img.shape[2] == 3
    assert len(photos.indices("val")) == 2 and len(photos.indices("train")) == len(photos) - 2
    assert "CC0" in photos.entries[names.index("coffee")].licence
    assert "creativecommons" in photos.entries[names.index("china")].licence


def test_dep5_licence_lookup() -> None:
    text = ("Files: *\nCopyright: KDE\nLicense: GPL-2+\n\n"
            "Files: nature/Aqua.jpg\n       nature/Garden.jpg\nCopyright: 2008, C. B.\nLicense: GPL-2+\n\n"
            "Files: desktop/*-no-logo.png\nCopyright: 2014 G. M.\nLicense: CC-BY-SA-4.0\n text\n")
    stanzas = photos_debian.parse_dep5(text)
    assert photos_debian.dep5_licence(stanzas, "usr/share/backgrounds/mate/nature/Garden.jpg") == \
        ("GPL-2+", "2008, C. B.")
    assert photos_debian.dep5_licence(stanzas, "x/desktop/Cold-no-logo.png")[0] == "CC-BY-SA-4.0"
    assert photos_debian.dep5_licence(stanzas, "other.png") == ("GPL-2+", "KDE")


def test_debian_failure_is_a_warning(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(photos_debian.shutil, "which", lambda tool: None)
    with pytest.warns(DataWarning, match="apt-get not found"):
        assert photos_debian.debian_photos(tmp_path) == []


@pytest.mark.slow
def test_default_set_with_debian_packages(tmp_path: Path) -> None:
    if shutil.which("apt-get") is None or shutil.which("dpkg-deb") is None:
        pytest.skip("apt-get/dpkg-deb unavailable: the Debian photos are skipped on this system")
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        photos = data.build_default_photos(tmp_path)
    if any("Debian package" in str(w.message) for w in caught):
        pytest.skip("; ".join(str(w.message) for w in caught))
    debian = [e for e in photos.entries if "(Debian)" in e.source["package"]]
    assert len(debian) >= 20 and len(photos.indices("val")) >= 8
    for e in debian:
        cached = next((tmp_path / "debian").glob(f"*/{e.source['path']}"))
        assert e.sha256 == sha256_file(cached) and min(e.width, e.height) >= 1000
        assert e.licence.split()[0] in {"GPL-2+", "LGPLv3", "CC-BY-SA-4.0"}
    assert not list(tmp_path.glob(".*"))                         # no leftover temp dirs


def test_jitter_zoom_bounds_the_head_views_framing() -> None:
    """zoom 1 frames every view on the photo's whole short side; zoom 3 also cuts down to a third of it."""
    def spans(zoom: float) -> list[float]:  # top-to-bottom range of each view, in [-1, 1] units
        views = data.jittered_views([_gradient(120, 60)], 24, 16, seed=0, zoom=zoom, fraction=0.0)
        rows = views[:, 1].mean(-1)  # green: 0 at the top row, 255 at the bottom
        return (rows[:, -1] - rows[:, 0]).abs().tolist()

    assert min(spans(1.0)) > 1.8
    assert min(spans(3.0)) < 1.0 and max(spans(2.0)) > 1.8 and min(spans(2.0)) > 0.9
