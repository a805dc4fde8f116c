"""Where gs-mobile keeps fetched teachers, photos and tools (override with GS_MOBILE_CACHE)."""
from __future__ import annotations

import os
from pathlib import Path


def cache_dir(*parts: str) -> Path:
    """`$GS_MOBILE_CACHE/...` or `~/.cache/gs-mobile/...`, created on demand."""
    root = Path(os.environ.get("GS_MOBILE_CACHE", Path.home() / ".cache" / "gs-mobile"))
    path = root.joinpath(*parts)
    path.mkdir(parents=True, exist_ok=True)
    return path
