"""One writer per release store: an advisory ``flock`` on the store folder itself.

The lock is held on an open file descriptor of the ``<store>`` directory, so

* the kernel drops it when the writer exits in any way (``kill -9`` included): there is no stale
  lock file to detect, take over or race on;
* no file is added to the store (a new store is an empty folder until its ``zarr.json``);
* a second writer either stops at once with a :class:`~spectralearth_data.errors.ReleaseError`
  naming the store (the default) or waits up to ``wait_s`` seconds for the first to finish.

Readers (``validate``, loaders) never take it: committed data is immutable (see
``release/store.py``, "Commit protocol").

Many writers of one release (layout 2) take per-batch leases instead
(:mod:`spectralearth_data.release.lease`), which use :func:`flock_held` and
:func:`check_writable` of this module for their local ``flock``.
"""

from __future__ import annotations

import contextlib
import errno
import fcntl
import os
import threading
import time
from collections.abc import Iterator
from pathlib import Path

from .errors import ReleaseError

#: How often a waiting writer retries the lock.
POLL_S = 0.2


def ensure_release_folder(store: Path) -> None:
    """Create the release folder ``store`` if needed; unusable paths become one ReleaseError line."""
    try:
        store.mkdir(parents=True, exist_ok=True)
    except FileExistsError:
        raise ReleaseError(f"{store}: exists and is not a folder; choose another release path") from None
    except OSError as e:
        raise ReleaseError(f"{store}: cannot create the release folder ({e.strerror})") from None
    if not store.is_dir():
        raise ReleaseError(f"{store}: exists and is not a folder; choose another release path")


def _open_store_dir(store: Path) -> int:
    """Create ``store`` if needed and open it for locking; unusable paths become ReleaseError."""
    ensure_release_folder(store)
    try:
        return os.open(store, os.O_RDONLY | os.O_DIRECTORY)
    except OSError as e:
        raise ReleaseError(f"{store}: cannot open the release folder ({e.strerror})") from None


def check_writable(store: Path) -> None:
    """Fail early (before any data is touched) when the release folder cannot be written.

    ``os.access`` is not enough (it says yes to root and ignores read-only mounts), so a probe
    file is created and removed.
    """
    probe = store / f".write-probe-{os.getpid()}-{threading.get_ident()}"  # writers may be threads of one process
    try:
        probe.touch()
        probe.unlink()
    except OSError as e:
        raise ReleaseError(f"{store}: release folder is not writable ({e.strerror})") from None


@contextlib.contextmanager
def release_lock(store: Path | str, wait_s: float = 0.0) -> Iterator[None]:
    """Hold the writer lock of ``store`` for the block (created as an empty folder if absent).

    ``wait_s`` = 0 stops at once when another process holds it; otherwise wait that long.
    Raises :class:`ReleaseError` when the folder cannot be created, opened or written, or when
    the lock stays taken.
    """
    store = Path(store)
    fd = _open_store_dir(store)
    try:
        deadline = time.monotonic() + wait_s
        while True:
            try:
                fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
                break
            except OSError as e:
                if e.errno not in (errno.EWOULDBLOCK, errno.EAGAIN, errno.EACCES):
                    raise ReleaseError(f"{store}: cannot lock the release folder ({e.strerror})") from None
                if time.monotonic() >= deadline:
                    hint = f" (waited {wait_s:g} s)" if wait_s else ""
                    raise ReleaseError(
                        f"{store}: another curate/tile run is writing this release{hint}; "
                        "wait for it to finish, then rerun (it resumes)"
                    ) from None
                time.sleep(POLL_S)
        check_writable(store)
        yield
    finally:
        os.close(fd)  # closing the descriptor releases the flock


def is_locked(store: Path | str) -> bool:
    """Whether some process holds the writer lock of ``store`` now (False if it does not exist)."""
    store = Path(store)
    return store.is_dir() and flock_held(store, os.O_RDONLY | os.O_DIRECTORY)


def flock_held(path: Path, flags: int = os.O_RDONLY) -> bool:
    """Whether some process holds an exclusive ``flock`` on ``path`` now (probed without waiting)."""
    fd = os.open(path, flags)
    try:
        fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except OSError:
        return True
    finally:
        os.close(fd)
    return False
