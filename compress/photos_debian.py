"""Photos from the Debian packages mate-backgrounds and plasma-workspace-wallpapers.

Fetched without root and without touching the system: `apt-get download NAME` into a temporary
directory, `dpkg-deb -x` there, and only the chosen photos (plus the copyright/metadata files) are
copied into the cache. Any failure (no apt, offline, package unknown) is a warning, never an error.

Chosen by looking at the packages (bookworm: mate-backgrounds 1.26.0, plasma-workspace-wallpapers
5.27.5): every photo in mate's nature/ folder (abstract/ and desktop/ are graphics), and the KDE
wallpapers listed in PLASMA_PHOTOS (the others are vector or 3D art; Grey is black and white).
SVGs and screenshots are never used.
"""
from __future__ import annotations

import fnmatch
import json
import shutil
import subprocess
import tempfile
import warnings
from pathlib import Path

from compress.photo_types import DataWarning, SourcePhoto

PACKAGES = ("mate-backgrounds", "plasma-workspace-wallpapers")
MATE_PHOTO_GLOB = "usr/share/backgrounds/mate/nature/*.jpg"
PLASMA_ROOT = "usr/share/wallpapers"
PLASMA_PHOTOS = ("BytheWater", "ColdRipple", "ColorfulCups", "DarkestHour", "EveningGlow", "FallenLeaf",
                 "Kite", "OneStandsOut", "Path", "summer_1am")
PHOTO_SUFFIXES = (".jpg", ".jpeg", ".png")
INDEX_FILE = "photos.json"
TIMEOUT_S = 300


def _warn(message: str) -> None:
    warnings.warn(message, DataWarning, stacklevel=3)


# ----------------------------------------------------------------------------- licences


def parse_dep5(text: str) -> list[dict[str, str]]:
    """Stanzas of a machine-readable debian/copyright file: {"Files", "Copyright", "License"}."""
    stanzas, current, key = [], {}, None
    for line in text.splitlines() + [""]:
        if not line.strip():
            if current:
                stanzas.append(current)
            current, key = {}, None
        elif line[0] in " \t" and key:
            current[key] += "\n" + line.strip()
        elif ":" in line:
            key, _, value = line.partition(":")
            current[key] = value.strip()
    return stanzas


def dep5_licence(stanzas: list[dict[str, str]], path: str) -> tuple[str, str]:
    """(License, Copyright) of the last `Files:` stanza matching `path` (patterns match path tails)."""
    found = ("", "")
    for stanza in stanzas:
        patterns = stanza.get("Files", "").split()
        if any(fnmatch.fnmatch(path, pat) or fnmatch.fnmatch(path, "*/" + pat) for pat in patterns):
            found = (stanza.get("License", "").splitlines()[0] if stanza.get("License") else "",
                     " ".join(stanza.get("Copyright", "").split()))
    return found


def plasma_licence(wallpaper_dir: Path) -> tuple[str, str]:
    """(License, authors) from a KDE wallpaper's metadata.json, or empty strings."""
    meta = wallpaper_dir / "metadata.json"
    if not meta.is_file():
        return "", ""
    plugin = json.loads(meta.read_text(encoding="utf-8")).get("KPlugin", {})
    authors = ", ".join(a.get("Name", "") for a in plugin.get("Authors", []))
    return plugin.get("License", ""), authors


# ----------------------------------------------------------------------------- selection


def _largest_image(folder: Path) -> Path | None:
    """Biggest real (non-symlink) jpg/png in a KDE wallpaper's contents/images."""
    files = [p for p in folder.glob("*") if p.suffix.lower() in PHOTO_SUFFIXES and p.is_file()
             and not p.is_symlink()]
    return max(files, key=lambda p: (p.stat().st_size, p.name), default=None)


def select_photos(package: str, root: Path) -> list[tuple[str, str, str]]:
    """(name, path inside the package, licence) of the photos chosen from an extracted package."""
    copyright_file = root / "usr/share/doc" / package / "copyright"
    stanzas = parse_dep5(copyright_file.read_text(encoding="utf-8")) if copyright_file.is_file() else []
    chosen = []
    if package == "mate-backgrounds":
        for path in sorted(root.glob(MATE_PHOTO_GLOB)):
            rel = path.relative_to(root).as_posix()
            licence, holder = dep5_licence(stanzas, rel)
            chosen.append((f"mate/{path.stem}", rel, _licence_text(licence, holder, package)))
    elif package == "plasma-workspace-wallpapers":
        for name in PLASMA_PHOTOS:
            image = _largest_image(root / PLASMA_ROOT / name / "contents/images")
            if image is None:
                _warn(f"{package}: wallpaper {name} not found in this version, skipped")
                continue
            rel = image.relative_to(root).as_posix()
            licence, authors = plasma_licence(root / PLASMA_ROOT / name)
            if not licence:
                licence, authors = dep5_licence(stanzas, rel)
            chosen.append((f"plasma/{name}", rel, _licence_text(licence, authors, package)))
    return chosen


def _licence_text(licence: str, holder: str, package: str) -> str:
    text = licence or "unknown"
    return f"{text} ({holder}; see usr/share/doc/{package}/copyright)" if holder else text


# ----------------------------------------------------------------------------- fetching


def _run(cmd: list[str], cwd: Path) -> None:
    result = subprocess.run(cmd, cwd=cwd, capture_output=True, text=True, timeout=TIMEOUT_S)
    if result.returncode != 0:
        lines = (result.stderr or result.stdout).strip().splitlines()
        detail = next((ln for ln in lines if ln.startswith("E:")), lines[-1] if lines else "")
        raise RuntimeError(f"{' '.join(cmd)} failed ({result.returncode}): {detail}")


def _download_and_extract(package: str, work: Path) -> tuple[Path, str]:
    """`apt-get download` + `dpkg-deb -x` in `work`; returns (extracted root, .deb file name)."""
    _run(["apt-get", "download", package], cwd=work)
    debs = sorted(work.glob(f"{package}_*.deb"))
    if not debs:
        raise RuntimeError(f"apt-get download {package} produced no .deb")
    root = work / "root"
    extract_deb(work / debs[-1].name, root)
    return root, debs[-1].name


def extract_deb(deb: Path, root: Path) -> None:
    """`dpkg-deb -x deb root`; RuntimeError with dpkg-deb's message when it fails."""
    _run(["dpkg-deb", "-x", str(deb), str(root)], cwd=deb.parent)


def selection_key(package: str) -> str:
    """Identifies the selection rules, so a cache made under other rules is refreshed."""
    return MATE_PHOTO_GLOB if package == "mate-backgrounds" else ",".join(PLASMA_PHOTOS)


def _cached(dest: Path, package: str) -> bool:
    try:
        index = json.loads((dest / INDEX_FILE).read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return False
    return index.get("selection") == selection_key(package)


def _copy_selection(package: str, root: Path, dest: Path, deb: str) -> None:
    """Copy the chosen photos and the package's licence texts into `dest`, then write its index."""
    chosen = select_photos(package, root)
    extras = [f"usr/share/doc/{package}/copyright"]
    extras += [f"{PLASMA_ROOT}/{name.split('/', 1)[1]}/metadata.json"
               for name, _, _ in chosen if name.startswith("plasma/")]
    for rel in [rel for _, rel, _ in chosen] + extras:
        if (root / rel).is_file():
            (dest / rel).parent.mkdir(parents=True, exist_ok=True)
            shutil.copyfile(root / rel, dest / rel)
    index = {"package": package, "deb": deb, "selection": selection_key(package),
             "photos": [{"name": n, "path": rel, "licence": lic} for n, rel, lic in chosen]}
    (dest / INDEX_FILE).write_text(json.dumps(index, indent=2, ensure_ascii=False) + "\n")


def fetch_package(package: str, cache_dir: Path) -> Path:
    """Cache folder with the package's chosen photos and an index; downloads once."""
    dest = cache_dir / "debian" / package
    if _cached(dest, package):
        return dest
    for tool in ("apt-get", "dpkg-deb"):
        if shutil.which(tool) is None:
            raise RuntimeError(f"{tool} not found (not a Debian/Ubuntu system)")
    cache_dir.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(dir=cache_dir, prefix=f".{package}-") as tmp:
        root, deb = _download_and_extract(package, Path(tmp))
        staging = Path(tmp) / "staging"
        staging.mkdir()
        _copy_selection(package, root, staging, deb)
        if dest.exists():
            shutil.rmtree(dest)
        dest.parent.mkdir(parents=True, exist_ok=True)
        staging.rename(dest)   # atomic: a killed run never leaves a half-filled cache
    return dest


def _version(deb: str) -> str:
    """`mate-backgrounds_1.26.0-1_all.deb` -> `1.26.0-1` (epoch `4%3a` decoded)."""
    parts = deb.split("_")
    return parts[1].replace("%3a", ":") if len(parts) >= 3 else "unknown"


def package_photos(package: str, cache_dir: Path) -> list[SourcePhoto]:
    """Photos of one package as SourcePhotos (paths in the cache)."""
    dest = fetch_package(package, cache_dir)
    index = json.loads((dest / INDEX_FILE).read_text(encoding="utf-8"))
    pkg = f"{package}={_version(index['deb'])} (Debian)"
    return [SourcePhoto(p["name"], dest / p["path"], {"package": pkg, "path": p["path"]}, p["licence"])
            for p in index["photos"]]


def debian_photos(cache_dir: Path, packages: tuple[str, ...] = PACKAGES) -> list[SourcePhoto]:
    """Photos from every package that can be fetched; others are skipped with a warning."""
    photos = []
    for package in packages:
        try:
            photos += package_photos(package, cache_dir)
        except (OSError, RuntimeError, ValueError, subprocess.SubprocessError) as exc:
            _warn(f"Debian package {package} skipped ({exc}); the default set is smaller without it")
    return photos
