"""A rich progress display for gs-export (a spinner with the current step and elapsed time)."""
from __future__ import annotations

import contextlib
from typing import Callable, Iterator


@contextlib.contextmanager
def progress_display(enabled: bool = True) -> Iterator[Callable[[str], None]]:
    """Yields `step(description)`; shows it on stderr while the export runs (only on a terminal,
    so piped / logged stderr carries nothing but a possible one-line error)."""
    from rich.console import Console

    console = Console(stderr=True)
    if not enabled or not console.is_terminal:
        yield lambda _msg: None
        return
    from rich.progress import Progress, SpinnerColumn, TextColumn, TimeElapsedColumn

    with Progress(SpinnerColumn(), TextColumn("{task.description}"), TimeElapsedColumn(),
                  console=console, transient=True) as bar:
        task = bar.add_task("gs-export", total=None)

        def step(msg: str) -> None:
            bar.update(task, description=msg)

        yield step
