"""The progress bar of long commands (tiling, uploading): rich, or nothing when turned off."""

from __future__ import annotations

import contextlib
from collections.abc import Callable, Iterator


@contextlib.contextmanager
def progress_bar(enabled: bool, total: int, label: str, *, in_bytes: bool = False) -> Iterator[Callable[..., None]]:
    """Show a bar over ``total`` items (or bytes, with a transfer rate) for the block; yields
    ``advance(n=1)``, which is thread-safe. With ``enabled`` false nothing is drawn."""
    if not enabled:
        yield lambda n=1: None
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
    with Progress(TextColumn(label), BarColumn(), *counts, TimeRemainingColumn()) as bar:
        task = bar.add_task(label, total=total)
        yield lambda n=1: bar.advance(task, n)
