"""The head-photo folder builder, offline: its Qt resource reader, photo writer, selection, checks and cache."""
from __future__ import annotations

import hashlib
import json
import shutil
import struct
import subprocess
import zlib
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from compress.errors import GsError
from compress import head_photos
from compress.head_photos import PhotoPackage, chosen_files, unpack_rcc, write_photo
from compress.views import load_head_photos


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
    monkeypatch.setattr(head_photos, "POOL", tmp_path.as_uri() + "/")
    downloads = tmp_path / "downloads"
    downloads.mkdir()
    good = PhotoPackage("test", "pool/t.deb", hashlib.sha256(b"a package").hexdigest(), "CC0-1.0", ())
    assert head_photos.download(good, downloads).read_bytes() == b"a package"
    bad = PhotoPackage("test", "pool/t.deb", "0" * 64, "CC0-1.0", ())
    (downloads / "t.deb").unlink()
    with pytest.raises(GsError, match="sha256"):
        head_photos.download(bad, downloads)
    assert list(downloads.iterdir()) == []


def test_an_existing_out_folder_is_one_line_and_exit_1(tmp_path: Path, capsys) -> None:  # noqa: ANN001
    assert head_photos.main(["--out", str(tmp_path), "--downloads", str(tmp_path / "d")]) == 1
    err = capsys.readouterr().err
    assert str(tmp_path) in err and len(err.strip().splitlines()) == 1


def test_the_head_photo_folder_is_built_once_in_the_cache_from_a_pinned_package(tmp_path: Path, monkeypatch) -> None:  # noqa: ANN001
    tree = tmp_path / "tree"
    (tree / "DEBIAN").mkdir(parents=True)
    (tree / "DEBIAN" / "control").write_text("Package: photos\nVersion: 1\nArchitecture: all\n"
                                             "Maintainer: t <t@example.org>\nDescription: test photos\n")
    share = tree / "usr" / "share" / "photos"
    share.mkdir(parents=True)
    shutil.copy(_save(share / "a.png", (400, 300)), share / "b.png")  # the same photo twice: kept once
    deb = tmp_path / "pool" / "photos_1_all.deb"
    deb.parent.mkdir()
    subprocess.run(["dpkg-deb", "--root-owner-group", "-b", str(tree), str(deb)], check=True, capture_output=True)
    package = PhotoPackage("photos", "pool/photos_1_all.deb", hashlib.sha256(deb.read_bytes()).hexdigest(),
                           "CC0-1.0", ("usr/share/photos/*.png",))
    monkeypatch.setattr(head_photos, "POOL", tmp_path.as_uri() + "/")
    monkeypatch.setattr(head_photos, "SOURCES", (package,))
    monkeypatch.setenv("GS_MOBILE_CACHE", str(tmp_path / "cache"))
    folder = head_photos.head_photo_folder()
    index = json.loads((folder / "photos.json").read_text())
    assert [(e["file"], e["path"], e["licence"]) for e in index] == [("photos/a.jpg", "usr/share/photos/a.png", "CC0-1.0")]
    assert not (tmp_path / "cache" / head_photos.DOWNLOADS).exists()  # the .deb files go once the folder is built
    deb.unlink()
    assert head_photos.head_photo_folder() == folder  # built once: nothing is fetched again
    (sha, image), = load_head_photos("extra")
    assert image.shape == (300, 400, 3) and sha == index_sha(folder / "photos" / "a.jpg")


def index_sha(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def test_a_val_photo_among_the_head_photos_is_left_out_with_a_warning(setup_dir: Path) -> None:
    from compress.data import load_photo_folder
    from compress.photo_types import DataWarning

    photos = load_photo_folder(setup_dir / "photos")  # 3 train, 1 val
    with pytest.warns(DataWarning, match="is a val photo"):
        head = load_head_photos(str(setup_dir / "photos"), photos)
    train = {photos.entries[i].sha256 for i in photos.indices("train")}
    assert len(head) == 3 and {sha for sha, _ in head} == train


def test_unreachable_head_photos_are_one_line_naming_the_way_out(tmp_path: Path, monkeypatch) -> None:  # noqa: ANN001
    monkeypatch.setattr(head_photos, "POOL", (tmp_path / "no-pool").as_uri() + "/")
    monkeypatch.setenv("GS_MOBILE_CACHE", str(tmp_path / "cache"))
    with pytest.raises(GsError, match="--head-photos none") as exc:
        head_photos.head_photo_folder()
    assert "\n" not in str(exc.value)
