"""Where gs-mobile keeps fetched teachers, photos, label banks and tools.

`$GS_MOBILE_CACHE` when set, else `$XDG_CACHE_HOME/gs-mobile`, else `~/.cache/gs-mobile`.
"""
from __future__ import annotations

import os
from pathlib import Path


def cache_root() -> Path:
    """The gs-mobile cache folder (not created)."""
    if os.environ.get("GS_MOBILE_CACHE"):
        return Path(os.environ["GS_MOBILE_CACHE"])
    return Path(os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache") / "gs-mobile"


def cache_dir(*parts: str) -> Path:
    """`cache_root()/...`, created on demand."""
    path = cache_root().joinpath(*parts)
    path.mkdir(parents=True, exist_ok=True)
    return path
