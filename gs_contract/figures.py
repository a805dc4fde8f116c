"""PNG figures every stage writes: an atomic matplotlib save and the titled image grid.

matplotlib is imported inside the functions, so importing this module needs numpy only (it travels
with ``gs_contract`` onto boards, where nothing here runs).
"""
from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Any, Mapping

import numpy as np

from . import atomic_path, real_to_pixels

if TYPE_CHECKING:
    from matplotlib.figure import Figure


def pyplot() -> Any:
    """``matplotlib.pyplot`` on the non-interactive Agg backend (no display on CI or boards)."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    return plt


def save_figure(fig: Figure, path: Path, dpi: int = 90) -> Path:
    """Write a matplotlib figure as a PNG atomically (``gs_contract.atomic_path``); the figure is
    closed either way."""
    plt = pyplot()
    path = Path(path)
    try:
        with atomic_path(path) as tmp:
            fig.savefig(tmp, dpi=dpi, format="png")
    finally:
        plt.close(fig)
    return path


def save_grid(path: Path, columns: Mapping[str, np.ndarray], max_rows: int = 6,
              notes: list[str] | None = None) -> Path:
    """A PNG grid, one row per image, one titled column per entry of `columns` (e.g. input|teacher|student).

    Each column is a float NCHW batch in [-1, 1], shown as ``real_to_pixels`` shows it.
    """
    plt = pyplot()
    names = list(columns)
    rows = min(max_rows, len(next(iter(columns.values()))))
    fig, axes = plt.subplots(rows, len(names), figsize=(2.6 * len(names), 2.6 * rows), squeeze=False)
    for r in range(rows):
        for c, name in enumerate(names):
            ax = axes[r][c]
            ax.imshow(real_to_pixels(np.asarray(columns[name][r])).transpose(1, 2, 0))
            ax.set_xticks([])
            ax.set_yticks([])
            if r == 0:
                ax.set_title(name, fontsize=10)
            if c == len(names) - 1 and notes:
                ax.set_xlabel(notes[r], fontsize=8)
    fig.tight_layout()
    return save_figure(fig, path)
