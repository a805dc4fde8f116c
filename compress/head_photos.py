"""Licensed photos for the colour head, from pinned Debian packages outside the default photo set.

    python -m compress.head_photos --out DIR [--downloads DIR] [--sources NAME ...]

The colour head predicts a per-image grade from whole-image statistics, so it generalises with the
number of distinct photos it has seen (docs/RESULTS.md: 1600 views of 256 px of the 22 train photos
give it 24.37 dB on val, of the train photos and these 379 photos 25.54 dB, means of two seeds). `gs-compress
--head-photos extra` (the quick and standard presets) adds them to the head's views only: GS training and the val
photos are unchanged, so val stays comparable. `head_photo_folder()` builds the folder once in the
user cache (about 430 MB of downloads, deleted when the folder is complete; 37 s measured).

A build downloads the pinned .deb files from deb.debian.org (sha256-checked), extracts them with
`dpkg-deb -x`, and writes the chosen photos as DIR/<source>/<name>.jpg (long side <= 1024 px, JPEG
quality 92, transparency over black; duplicates by content and images under 240 px on the short side
skipped) with DIR/photos.json naming each file's package, version, path and licence.

Chosen by looking at every candidate image (packages' graphics, cartoons, paintings, maps and
face crops left out); none is a near-duplicate of a default photo. `lomiri-wallpapers*` and
`palapeli-data` are never used: they are kept for independent evaluation.
"""
from __future__ import annotations

import argparse
import glob
import hashlib
import json
import re
import shutil
import struct
import sys
import tempfile
import urllib.request
import zlib
from dataclasses import astuple, dataclass
from pathlib import Path

from PIL import Image, UnidentifiedImageError

from .cache import cache_dir, cache_root
from .errors import GsError
from .photos_debian import extract_deb

POOL = "http://deb.debian.org/debian/"
MAX_SIDE, MIN_SHORT_SIDE, JPEG_QUALITY = 1024, 240, 92
DOWNLOADS = "head-photo-debs"       # under the cache root: the .deb files while a folder is built


@dataclass(frozen=True)
class PhotoPackage:
    """One package and the photos taken from it (globs are tried in order, each sorted)."""

    source: str             # folder name in the output
    pool_path: str          # under POOL
    sha256: str
    licence: str            # as the package's debian/copyright gives it
    include: tuple[str, ...]
    exclude: str = ""       # regex on the path: matching files are left out
    rcc: tuple[str, ...] = ()  # Qt resource bundles (under usr/share) unpacked to rcc/<stem>/ first
    path_names: bool = False   # name files by their path (their stems repeat), not by their stem


GCOMPRIS_RCC = ("categorization", "erase", "clickgame", "details", "explore_farm_animals",
                "explore_monuments", "explore_world_animals", "explore_world_music")
SOURCES: tuple[PhotoPackage, ...] = (
    PhotoPackage("gcompris-qt-data_trixie", "pool/main/g/gcompris-qt/gcompris-qt-data_25.0.12-1_all.deb",
                 "7312aa5387d4c5a6a1145609db5e8c38e2e2a9056c8b3b9d44e52f12358ac41d", "GPL-3+",
                 tuple(f"rcc/categorization/**/resource/images/{kind}/*" for kind in
                       ("renewable", "monuments", "others", "alphabets", "tools", "fishes", "numbers"))
                 + ("rcc/erase/**/resource/*.webp", "rcc/clickgame/**/resource/sea*.webp",
                    "rcc/details/**/resource/image/*.webp")
                 + tuple(f"rcc/{name}/**/resource/**/*.webp" for name in GCOMPRIS_RCC[4:]),
                 exclude=r"/details/.*(Gogh|Tanguy|Auvers|Night_Cafe)",  # paintings
                 rcc=GCOMPRIS_RCC),
    PhotoPackage("gcompris-qt-data_bullseye_erase", "pool/main/g/gcompris-qt/gcompris-qt-data_1.0-1_all.deb",
                 "2d3ae1fb23d6ddc670cc348cc880bf4784f8611f86b1119e60289e4ac6bbc9f4", "GPL-3+",
                 ("rcc/erase/**/resource/*.jpg",), rcc=("erase",)),
    PhotoPackage("scratch_bullseye", "pool/main/s/scratch/scratch_1.4.0.6~dfsg1-6.1_all.deb",
                 "36c582eb93110f64f06c4e685c41e933ccba2fa68db12f79b10bfe840b21fc10", "CC-BY-SA-3.0",
                 ("usr/share/scratch/Media/Backgrounds/*/*.jpg", "usr/share/scratch/Media/Backgrounds/*/*.png"),
                 exclude=r"/(woods-and-bench|party-room|room[123]|spotlight-stage|the-movies-inside|"
                         r"all-sports-mural|school2|basketball-court2)\.\w+$"),  # drawn backgrounds
    PhotoPackage("budgie-backgrounds_trixie", "pool/main/b/budgie-backgrounds/budgie-backgrounds_3.0-1_all.deb",
                 "b91c2d5209558bc11d8d3a161f22a608857e3f8c735980cfab0d6650b03014ca", "CC0-1.0",
                 ("usr/share/backgrounds/budgie/*.jpg",), exclude=r"ocean-waves|valley-midnight|waves-midnight"),
    PhotoPackage("gnome-backgrounds_bullseye", "pool/main/g/gnome-backgrounds/gnome-backgrounds_3.38.0-1_all.deb",
                 "76d8a4c52e5f346d9cb08bc8a1f58ad443d2bae211721af8a7248457c7a520e8", "CC-BY-SA-3.0",
                 tuple(f"usr/share/backgrounds/gnome/{name}.jpg" for name in
                       ("ColdWarm", "Dark_Ivy", "Icetwigs", "LightWaves", "Road", "SeaSunset"))),
    PhotoPackage("plasma-workspace-wallpapers_trixie",
                 "pool/main/p/plasma-workspace-wallpapers/plasma-workspace-wallpapers_6.3.4-1_all.deb",
                 "b521d36486817f7a44c26faf247b9528138cc1ea1e8b154442a757c7e31faa2c", "GPL-2+",
                 ("usr/share/wallpapers/Grey/contents/images/1280x1024.jpg",
                  "usr/share/wallpapers/Mountain/contents/images/5120x2880.png")),
    PhotoPackage("kphotoalbum_trixie", "pool/main/k/kphotoalbum/kphotoalbum_6.0.1-4_amd64.deb",
                 "24c2538d4fc2d80e60453b4d2044c731cfe443c519063865f32c5123b35700bf", "GPL-2+",
                 ("usr/share/kphotoalbum/demo/*.jpg",), exclude=r"qt-logo"),
    PhotoPackage("kalzium-data_trixie", "pool/main/k/kalzium/kalzium-data_25.04.0-1_all.deb",
                 "986b5549a8ba2b1f73d000deecb6f3a99c109e2cb16ee65d0ce58a6fefe0f2bf", "GPL-2.0-or-later",
                 ("usr/share/kalzium/data/toolpics/*.jpg",)),
    PhotoPackage("psychtoolbox-3-common_trixie",
                 "pool/main/p/psychtoolbox-3/psychtoolbox-3-common_3.0.19.14.dfsg1-1_all.deb",
                 "7ad844a02f800a34e4d2725235438a4fa725bf29239af53d199778412313f483", "Expat",
                 ("usr/share/psychtoolbox-3/PsychDemos/konijntjes1024x768.jpg",
                  "usr/share/psychtoolbox-3/PsychDemos/PsychExampleExperiments/OldNewRecognition/stims/*.jpg",
                  "usr/share/psychtoolbox-3/PsychHardware/EyelinkToolbox/**/*.jpg",
                  "usr/share/psychtoolbox-3/PsychDemos/OpenGL4MatlabDemos/MorphDemo/TeapotTexture.jpg"),
                 exclude=r"/img2\.jpg$|StereoPicture", path_names=True),  # a pattern collage, a rendered head
    PhotoPackage("libjxl-testdata_trixie",
                 "pool/main/libj/libjxl-testdata/libjxl-testdata_0.0~git20240106.ff8d743-2_all.deb",
                 "01e1b088667e28ac757d41e13c40da6310830dc1feff085f8f591db19b811af7", "CC0-1.0 / BSD-3-Clause",
                 tuple(f"usr/share/libjxl-testdata/{name}" for name in
                       ("external/wesaturate/500px/cvo9xd_keong_macan_srgb8.png",
                        "external/wesaturate/500px/tmshre_riaphotographs_srgb8.png",
                        "external/wesaturate/500px/u76c0g_bliznaca_srgb8.png", "jxl/hdr_room.png",
                        "jxl/jpeg_reconstruction/bicycles_restarts.jpg", "jxl/flower/flower.png"))),
)


def unpack_rcc(data: bytes, out: Path) -> int:
    """Write every file of a Qt binary resource bundle (`rcc` format 1-3) under `out`; returns the count.

    Written here because no library on PyPI reads the format (Qt itself would be a 100 MB dependency
    for 30 lines). Layout: 'qres', version, then offsets of the node tree, the data and the names;
    a node is (name offset, flags, ...), flags 2 = directory (child count, first child), else a file
    whose data is a 4-byte length and its bytes, zlib-compressed behind a 4-byte size when flags & 1.
    """
    if data[:4] != b"qres":
        raise ValueError("not a Qt resource bundle")
    version, tree, payload, names = struct.unpack(">IIII", data[4:20])
    node_size = 14 if version == 1 else 22

    def name(offset: int) -> str:
        length = struct.unpack(">H", data[names + offset:names + offset + 2])[0]
        return data[names + offset + 6:names + offset + 6 + 2 * length].decode("utf-16-be")

    count, stack = 0, [(0, out)]
    while stack:
        index, parent = stack.pop()
        node = tree + index * node_size
        name_offset, flags = struct.unpack(">IH", data[node:node + 6])
        path = parent / name(name_offset) if index else parent
        if flags & 2:
            children, first = struct.unpack(">II", data[node + 6:node + 14])
            stack += [(child, path) for child in range(first, first + children)]
            continue
        if flags & 4:
            raise ValueError(f"{path.name}: zstd-compressed resources are not supported")
        offset = payload + struct.unpack(">I", data[node + 10:node + 14])[0]
        length = struct.unpack(">I", data[offset:offset + 4])[0]
        blob = data[offset + 4:offset + 4 + length]
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(zlib.decompress(blob[4:]) if flags & 1 else blob)
        count += 1
    return count


def download(package: PhotoPackage, downloads: Path) -> Path:
    """The package's .deb in `downloads`, fetched once and checked against its pinned sha256."""
    deb = downloads / Path(package.pool_path).name
    if not deb.is_file() or hashlib.sha256(deb.read_bytes()).hexdigest() != package.sha256:
        partial = deb.with_suffix(".part")
        with urllib.request.urlopen(POOL + package.pool_path, timeout=600) as response:
            partial.write_bytes(response.read())
        if hashlib.sha256(partial.read_bytes()).hexdigest() != package.sha256:
            partial.unlink()
            raise GsError(f"{POOL + package.pool_path}: sha256 differs from the pinned one; update SOURCES")
        partial.replace(deb)
    return deb


def chosen_files(package: PhotoPackage, root: Path) -> list[Path]:
    """The package's photos in `root` (its extracted tree), in SOURCES order."""
    for stem in package.rcc:
        bundle = next(root.glob(f"usr/share/**/rcc/{stem}.rcc"), None)
        if bundle is None:
            raise GsError(f"{package.source}: no {stem}.rcc in the package")
        unpack_rcc(bundle.read_bytes(), root / "rcc" / stem)
    files = []
    for pattern in package.include:
        files += [Path(p) for p in sorted(glob.glob(str(root / pattern), recursive=True))
                  if Path(p).is_file() and not (package.exclude and re.search(package.exclude, p))]
    return files


def file_name(package: PhotoPackage, path: Path) -> str:
    """Output stem: the file's stem, or with `path_names` the tail of its path under usr/share/."""
    if not package.path_names:
        return re.sub(r"[^A-Za-z0-9_.-]", "_", path.stem)
    return re.sub(r"[^A-Za-z0-9_.-]", "_", path.as_posix().split("/usr/share/")[-1].rsplit(".", 1)[0])[-60:]


def write_photo(path: Path, out_dir: Path, stem: str) -> Path | None:
    """`path` as a JPEG in `out_dir` (long side <= MAX_SIDE), or None if it is no raster image (the
    globs also meet SVGs) or too small to use."""
    try:
        image = Image.open(path)
    except UnidentifiedImageError:
        return None
    with image:
        if min(image.size) < MIN_SHORT_SIDE:
            return None
        if image.mode in ("P", "LA", "RGBA"):
            image = image.convert("RGBA")
        if image.mode == "RGBA":
            background = Image.new("RGB", image.size, (0, 0, 0))
            background.paste(image, mask=image.split()[3])
            image = background
        image = image.convert("RGB")
        image.thumbnail((MAX_SIDE, MAX_SIDE), Image.LANCZOS)
        target, suffix = out_dir / f"{stem}.jpg", 1
        while target.exists():
            target, suffix = out_dir / f"{stem}_{suffix}.jpg", suffix + 1
        image.save(target, quality=JPEG_QUALITY)
    return target


def build(out: Path, downloads: Path, packages: tuple[PhotoPackage, ...] = SOURCES) -> list[dict[str, str]]:
    """Write the photos of `packages` under `out` and their index `out/photos.json`; returns the index."""
    from tqdm import tqdm

    Image.MAX_IMAGE_PIXELS = None  # wallpapers up to 5120 x 2880, from pinned, checked packages
    downloads.mkdir(parents=True, exist_ok=True)
    if out.exists():
        raise GsError(f"--out {out}: already exists; give a new folder")
    final, out = out, out.with_name(out.name + ".partial")  # renamed when complete
    shutil.rmtree(out, ignore_errors=True)
    seen, index = set(), []
    for package in tqdm(packages, desc="photo packages", unit="package"):
        deb = download(package, downloads)
        with tempfile.TemporaryDirectory() as work:
            root = Path(work) / "root"
            try:
                extract_deb(deb, root)
            except (RuntimeError, OSError) as exc:
                raise GsError(f"{exc}; delete {deb} to download it again") from None
            (out / package.source).mkdir(parents=True, exist_ok=True)
            for path in chosen_files(package, root):
                digest = hashlib.md5(path.read_bytes()).hexdigest()
                if digest in seen:
                    continue
                written = write_photo(path, out / package.source, file_name(package, path))
                if written is None:
                    continue
                seen.add(digest)
                index.append({"file": written.relative_to(out).as_posix(), "package": deb.name,
                              "path": path.relative_to(root).as_posix(), "licence": package.licence})
    (out / "photos.json").write_text(json.dumps(index, indent=1), encoding="utf-8")
    out.replace(final)
    return index


def head_photo_folder() -> Path:
    """The folder of every SOURCES photo in the user cache, built on first use (its name is a hash
    of the table and the writer's settings, so a changed selection builds a new folder)."""
    pins = json.dumps([[astuple(pkg) for pkg in SOURCES], MAX_SIDE, MIN_SHORT_SIDE, JPEG_QUALITY])
    folder = cache_dir("head-photos") / hashlib.sha256(pins.encode()).hexdigest()[:16]
    if not (folder / "photos.json").is_file():
        print(f"gs-compress: fetching the head photos (about 430 MB from deb.debian.org, once) into {folder}",
              file=sys.stderr, flush=True)
        shutil.rmtree(folder, ignore_errors=True)  # a folder without its index is incomplete
        try:
            build(folder, cache_root() / DOWNLOADS, SOURCES)
        except OSError as exc:  # offline, no dpkg-deb, disk full
            raise GsError(f"cannot build the head photos in {folder}: {exc}; check the network, or pass "
                          "--head-photos none or a folder of images") from None
        shutil.rmtree(cache_root() / DOWNLOADS, ignore_errors=True)
    return folder


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(prog="python -m compress.head_photos", description=__doc__.split("\n\n")[0])
    p.add_argument("--out", type=Path, required=True, help="folder to write the photos to")
    p.add_argument("--downloads", type=Path, default=cache_root() / DOWNLOADS,
                   help="where the .deb files are kept between runs")
    names = [package.source for package in SOURCES]
    p.add_argument("--sources", nargs="+", choices=names, default=names, metavar="NAME",
                   help="only these packages' photos (default: all): " + ", ".join(names))
    a = p.parse_args(argv)
    try:
        index = build(a.out, a.downloads, tuple(pkg for pkg in SOURCES if pkg.source in a.sources))
    except (GsError, OSError) as exc:
        print(f"head_photos: {exc}", file=sys.stderr)
        return 1
    print(f"{len(index)} photos from {len(a.sources)} packages in {a.out}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
