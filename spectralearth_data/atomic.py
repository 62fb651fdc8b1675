"""Write a file so that readers, and a run resumed after kill -9, see the old file or the new
one, never a torn one: write a temporary file beside it, flush it to disk, rename it over.

The temporary name starts with a dot and ends in ``.tmp`` (``.<name>.<pid>.tmp``): pyarrow and
geopandas skip dot files when they read a folder of parts, and the store's clean-up removes
``*.tmp`` left by a killed run.
"""

from __future__ import annotations

import contextlib
import os
from collections.abc import Iterator
from pathlib import Path


def temp_path(path: Path) -> Path:
    """The temporary sibling of ``path`` this process writes before renaming."""
    return path.with_name(f".{path.name}.{os.getpid()}.tmp")


@contextlib.contextmanager
def atomic_path(path: Path | str, durable: bool = True) -> Iterator[Path]:
    """Yield a temporary path to write ``path``'s new content to; on leaving the block without an
    error it replaces ``path`` (after an ``fsync`` of the file and then of the folder when
    ``durable``), on an error it is removed and ``path`` is untouched.

    >>> with atomic_path(out) as tmp:  # doctest: +SKIP
    ...     table.to_parquet(tmp)
    """
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = temp_path(path)
    try:
        yield tmp
        if durable:
            _fsync(tmp, os.O_RDONLY)
        os.replace(tmp, path)
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise
    if durable:
        _fsync(path.parent, os.O_RDONLY)


def _fsync(path: Path, flags: int) -> None:
    fd = os.open(path, flags)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)
