"""The extra-photo folder builder, offline: its Qt resource reader, photo writer, selection and checks."""
from __future__ import annotations

import hashlib
import struct
import zlib
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from compress.errors import GsError
from compress.experiments import more_photos
from compress.experiments.more_photos import PhotoPackage, chosen_files, unpack_rcc, write_photo


def qt_resource_bundle(files: dict[str, bytes], compress: set[str]) -> bytes:
    """A format-2 rcc bundle of one folder `res` holding `files` (the layout Qt's rcc writes)."""
    names, name_offsets = b"", {}
    for name in ["res", *files]:
        name_offsets[name] = len(names)
        names += struct.pack(">HI", len(name), 0) + name.encode("utf-16-be")
    data, data_offsets = b"", {}
    for name, blob in files.items():
        stored = struct.pack(">I", len(blob)) + zlib.compress(blob) if name in compress else blob
        data_offsets[name] = len(data)
        data += struct.pack(">I", len(stored)) + stored
    stamp = struct.pack(">Q", 0)
    tree = struct.pack(">IHII", 0, 2, 1, 1) + stamp  # root: one child, node 1
    tree += struct.pack(">IHII", name_offsets["res"], 2, len(files), 2) + stamp
    for name in files:
        flags = 1 if name in compress else 0
        tree += struct.pack(">IHHHI", name_offsets[name], flags, 0, 0, data_offsets[name]) + stamp
    header = 20
    return b"qres" + struct.pack(">IIII", 2, header, header + len(tree), header + len(tree) + len(data)) \
        + tree + data + names


def test_unpack_rcc_writes_plain_and_zlib_resources(tmp_path: Path) -> None:
    files = {"a.txt": b"plain bytes", "b.bin": bytes(range(256)) * 8}
    count = unpack_rcc(qt_resource_bundle(files, compress={"b.bin"}), tmp_path)
    assert count == 2
    assert {p.name: p.read_bytes() for p in (tmp_path / "res").iterdir()} == files


def test_unpack_rcc_rejects_other_files(tmp_path: Path) -> None:
    with pytest.raises(ValueError, match="Qt resource"):
        unpack_rcc(b"PK\x03\x04 not an rcc", tmp_path)


def _save(path: Path, size: tuple[int, int], mode: str = "RGB") -> Path:
    pixels = np.random.default_rng(0).integers(0, 256, (size[1], size[0], len(mode)), dtype=np.uint8)
    Image.fromarray(pixels, mode).save(path)
    return path


def test_write_photo_caps_the_long_side_and_flattens_transparency(tmp_path: Path) -> None:
    out = tmp_path / "out"
    out.mkdir()
    written = write_photo(_save(tmp_path / "big.png", (2048, 600), "RGBA"), out, "big")
    assert written == out / "big.jpg"
    with Image.open(written) as image:
        assert image.mode == "RGB" and image.size == (1024, 300)
    assert write_photo(_save(tmp_path / "again.png", (300, 300)), out, "big") == out / "big_1.jpg"
    assert write_photo(_save(tmp_path / "small.png", (300, 200)), out, "small") is None  # short side < 240
    (tmp_path / "icon.svg").write_text("<svg/>")
    assert write_photo(tmp_path / "icon.svg", out, "icon") is None


def test_chosen_files_follow_the_globs_in_order_without_the_excluded(tmp_path: Path) -> None:
    for name in ("b/2.jpg", "b/1.jpg", "a/x.jpg", "a/skip-me.jpg"):
        (tmp_path / name).parent.mkdir(parents=True, exist_ok=True)
        (tmp_path / name).write_bytes(b"")
    package = PhotoPackage("test", "pool/t.deb", "0" * 64, "CC0-1.0", ("b/*.jpg", "a/*.jpg"), exclude="skip")
    assert [p.relative_to(tmp_path).as_posix() for p in chosen_files(package, tmp_path)] == \
        ["b/1.jpg", "b/2.jpg", "a/x.jpg"]


def test_a_download_with_another_sha256_is_refused_and_not_kept(tmp_path: Path, monkeypatch) -> None:  # noqa: ANN001
    served = tmp_path / "pool" / "t.deb"
    served.parent.mkdir()
    served.write_bytes(b"a package")
    monkeypatch.setattr(more_photos, "POOL", tmp_path.as_uri() + "/")
    downloads = tmp_path / "downloads"
    downloads.mkdir()
    good = PhotoPackage("test", "pool/t.deb", hashlib.sha256(b"a package").hexdigest(), "CC0-1.0", ())
    assert more_photos.download(good, downloads).read_bytes() == b"a package"
    bad = PhotoPackage("test", "pool/t.deb", "0" * 64, "CC0-1.0", ())
    (downloads / "t.deb").unlink()
    with pytest.raises(GsError, match="sha256"):
        more_photos.download(bad, downloads)
    assert list(downloads.iterdir()) == []


def test_an_existing_out_folder_is_one_line_and_exit_1(tmp_path: Path, capsys) -> None:  # noqa: ANN001
    assert more_photos.main(["--out", str(tmp_path), "--downloads", str(tmp_path / "d")]) == 1
    err = capsys.readouterr().err
    assert str(tmp_path) in err and len(err.strip().splitlines()) == 1
