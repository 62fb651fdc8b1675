"""The progress bar of long commands (tiling, uploading, training): rich, or nothing when turned off."""

from __future__ import annotations

import contextlib
from collections.abc import Callable, Iterator


@contextlib.contextmanager
def progress_bar(
    enabled: bool, total: int, label: str, *, in_bytes: bool = False, completed: int = 0, notes: bool = False,
) -> Iterator[Callable[..., None]]:
    """Show a bar over ``total`` items (or bytes, with a transfer rate) for the block; yields
    ``advance(n=1, note=None)``, which is thread-safe. ``completed`` items are done already (a
    resumed run). With ``notes`` the bar ends with a text column that ``advance(..., note="...")``
    replaces (e.g. the current loss). With ``enabled`` false nothing is drawn."""
    if not enabled:
        yield lambda n=1, note=None: None
        return
    from rich.progress import (
        BarColumn,
        DownloadColumn,
        MofNCompleteColumn,
        Progress,
        TextColumn,
        TimeRemainingColumn,
        TransferSpeedColumn,
    )

    counts = (DownloadColumn(), TransferSpeedColumn()) if in_bytes else (MofNCompleteColumn(),)
    extra = (TextColumn("{task.fields[note]}"),) if notes else ()
    with Progress(TextColumn(label), BarColumn(), *counts, TimeRemainingColumn(), *extra) as bar:
        task = bar.add_task(label, total=total, completed=completed, note="")

        def advance(n: int = 1, note: str | None = None) -> None:
            if note is None:
                bar.advance(task, n)
            else:
                bar.update(task, advance=n, note=note)

        yield advance
