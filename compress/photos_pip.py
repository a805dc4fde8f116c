"""Photos bundled in pip packages (scikit-image, scikit-learn, matplotlib), with licences read from
the packages' own texts. Nothing here touches the network or imports the packages' code.

Per-image choice for scikit-image (colour photos of everyday scenes only):
kept: astronaut, chelsea (== cat, same file), coffee, rocket, stereo_motorcycle (left view).
left out: immunohistochemistry (microscopy), hubble_deep_field (astronomy, mostly black),
retina (medical fundus on black), colorwheel (synthetic graphic), motorcycle right view
(near-duplicate of the left); eagle, skin, lily, kidney are downloaded by pooch, never used.
"""
from __future__ import annotations

import ast
import importlib.util
import logging
import re
from importlib import metadata
from pathlib import Path
from typing import Iterator

from compress.photo_types import SourcePhoto

log = logging.getLogger(__name__)

# (name, file in skimage/data, loader function whose docstring states the licence)
SKIMAGE_PHOTOS = (
    ("astronaut", "astronaut.png", "astronaut"),
    ("chelsea", "chelsea.png", "chelsea"),
    ("coffee", "coffee.png", "coffee"),
    ("rocket", "rocket.jpg", "rocket"),
    ("stereo_motorcycle_left", "motorcycle_left.png", "stereo_motorcycle"),
)
SKLEARN_PHOTOS = ("china.jpg", "flower.jpg")
MATPLOTLIB_PHOTOS = ("grace_hopper.jpg",)

# Where the package's own text says nothing per image (context, not read from the package).
LICENCE_NOTES = {
    "stereo_motorcycle_left": "Middlebury 2014 stereo dataset (Scharstein et al., GCPR 2014), "
                              "down-sampled copy shipped in the scikit-image wheel",
    "grace_hopper": "US Navy photograph of Grace Hopper (public domain), shipped as matplotlib sample data",
}
_LICENCE_WORDS = re.compile(r"copyright|public domain|licen[cs]e|\bCC0\b|creative commons", re.I)


def package_dir(import_name: str) -> Path | None:
    """Directory of an installed package, found without importing it."""
    spec = importlib.util.find_spec(import_name)
    if spec is None or not spec.submodule_search_locations:
        return None
    return Path(next(iter(spec.submodule_search_locations)))


def package_licence(dist: str) -> str:
    """Short licence of a distribution from its metadata (License-Expression or License: line)."""
    meta = metadata.metadata(dist)
    if meta.get("License-Expression"):
        return meta["License-Expression"]
    text = (meta.get("License") or "").strip()
    if not text:
        return "unknown"
    found = re.search(r"^\s*License:\s*(\S.*)$", text, re.M) if text.startswith("Files:") else None
    return (found.group(1) if found else text.splitlines()[0]).strip()


def _source(dist: str, root: Path, path: Path) -> dict[str, str]:
    return {"package": f"{dist}=={metadata.version(dist)}", "path": path.relative_to(root.parent).as_posix()}


def _fallback_licence(dist: str) -> str:
    return f"no per-image statement; shipped in {dist} (package licence: {package_licence(dist)})"


def licence_from_docstring(text: str) -> str:
    """Paragraphs of a docstring that state copyright or licence terms, joined on one line."""
    text = re.sub(r"^[^\n]*\n\s*-{3,}[ \t]*$", "", text, flags=re.M)   # numpydoc "Notes\n-----"
    paragraphs = [" ".join(p.split()) for p in re.split(r"\n\s*\n", text)]
    return " ".join(p for p in paragraphs if _LICENCE_WORDS.search(p))


def skimage_docstrings(data_dir: Path) -> dict[str, str]:
    """Docstrings of the loader functions in skimage/data/_fetchers.py (parsed, not imported)."""
    tree = ast.parse((data_dir / "_fetchers.py").read_text(encoding="utf-8"))
    functions = (node for node in tree.body if isinstance(node, ast.FunctionDef))
    return {node.name: ast.get_docstring(node) or "" for node in functions}


def sklearn_readme_licences(readme: Path) -> dict[str, str]:
    """`Image: NAME` blocks of sklearn/datasets/images/README.txt -> one-line licence text."""
    blocks = re.split(r"^Image:\s*", readme.read_text(encoding="utf-8"), flags=re.M)[1:]
    out = {}
    for block in blocks:
        name, _, body = block.partition("\n")
        out[name.strip()] = " ".join(body.split())
    return out


def _skimage() -> Iterator[SourcePhoto]:
    root = package_dir("skimage")
    if root is None:
        log.warning("scikit-image not installed: its sample photos are skipped")
        return
    docs = skimage_docstrings(root / "data")
    for name, file, func in SKIMAGE_PHOTOS:
        path = root / "data" / file
        licence = licence_from_docstring(docs.get(func, "")) or _fallback_licence("scikit-image")
        yield SourcePhoto(name, path, _source("scikit-image", root, path), licence,
                          LICENCE_NOTES.get(name, ""))


def _sklearn() -> Iterator[SourcePhoto]:
    root = package_dir("sklearn")
    if root is None:
        log.warning("scikit-learn not installed: its sample photos are skipped")
        return
    images = root / "datasets" / "images"
    licences = sklearn_readme_licences(images / "README.txt")
    for file in SKLEARN_PHOTOS:
        path = images / file
        licence = licences.get(file) or _fallback_licence("scikit-learn")
        yield SourcePhoto(Path(file).stem, path, _source("scikit-learn", root, path), licence)


def _matplotlib() -> Iterator[SourcePhoto]:
    root = package_dir("matplotlib")
    if root is None:
        log.warning("matplotlib not installed: its sample photos are skipped")
        return
    for file in MATPLOTLIB_PHOTOS:
        path = root / "mpl-data" / "sample_data" / file
        name = Path(file).stem
        yield SourcePhoto(name, path, _source("matplotlib", root, path), _fallback_licence("matplotlib"),
                          LICENCE_NOTES.get(name, ""))


def pip_photos() -> list[SourcePhoto]:
    """All packaged photos that exist on disk, in a fixed order."""
    return [p for gen in (_skimage, _sklearn, _matplotlib) for p in gen() if p.path.is_file()]
