"""Writer leases of a release's batches (layout 2): many writers at once, one per batch.

:func:`batch_lease` guards one *batch* of a release, on a local folder or an object store. It takes
a lease object ``index/leases/<batch>.json`` with a conditional create (S3 ``If-None-Match``),
refreshed by a heartbeat while the writer runs and deleted at the end; on a local folder it also
holds a ``flock`` on ``index/leases/<batch>.lock`` (:mod:`spectralearth_data.lock`), so a writer
killed with ``kill -9`` leaves no lease that blocks the next one. A lease whose holder is gone (its
heartbeat expired, or its pid is dead on this host, or the flock is free) is taken over. Writers
of different batches never conflict: there is no lock on the whole release.
"""

from __future__ import annotations

import contextlib
import datetime as dt
import errno
import fcntl
import json
import os
import socket
import threading
import time
import uuid
from collections.abc import Iterator
from typing import Any

from ..errors import ReleaseError
from ..lock import check_writable, flock_held
from .storage import ObjectExists

#: Seconds a lease stays live without a heartbeat (override: ``SPECTRALEARTH_LEASE_TTL_S``).
LEASE_TTL_S = 120.0


def _lease_ttl() -> float:
    try:
        return float(os.environ.get("SPECTRALEARTH_LEASE_TTL_S", LEASE_TTL_S))
    except ValueError:
        return LEASE_TTL_S


def _pid_alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


def _lease_body(writer: str, ttl: float, info: dict[str, Any]) -> bytes:
    now = time.time()
    return json.dumps({
        **info, "writer": writer, "host": socket.gethostname(), "pid": os.getpid(),
        "created": dt.datetime.fromtimestamp(now, dt.UTC).isoformat(timespec="seconds"),
        "expires_unix": now + ttl, "ttl_s": ttl,
    }, indent=2, sort_keys=True).encode()


def _stale(holder: dict, flocked: bool) -> bool:
    """Whether the lease ``holder`` wrote is no longer live."""
    if flocked:  # we hold the batch's flock: its holder is dead (the kernel released it)
        return True
    if float(holder.get("expires_unix", 0)) < time.time():
        return True
    return holder.get("host") == socket.gethostname() and not _pid_alive(int(holder.get("pid", -1)))


@contextlib.contextmanager
def batch_lease(loc, batch: str, info: dict[str, Any] | None = None, key: str | None = None) -> Iterator[str]:
    """Hold the writer lease of ``batch`` in the release at ``loc`` (a
    :class:`~spectralearth_data.release.storage.Location`) for the block; yields the writer id.

    :class:`ReleaseError` (naming the batch and its holder) when another live writer holds it.
    """
    key = key or f"index/leases/{batch}.json"
    ttl = _lease_ttl()
    writer = uuid.uuid4().hex
    info = dict(info or {}, batch=batch)
    fd = None
    if loc.local is not None:
        lock = loc.local / f"{key.removesuffix('.json')}.lock"
        try:
            lock.parent.mkdir(parents=True, exist_ok=True)
            fd = os.open(lock, os.O_RDWR | os.O_CREAT, 0o644)
        except OSError as e:
            raise ReleaseError(f"{loc.url}: release folder is not writable ({e.strerror}): cannot create the writer "
                               f"lease of batch {batch}") from None
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except OSError as e:
            os.close(fd)
            if e.errno in (errno.EWOULDBLOCK, errno.EAGAIN, errno.EACCES):
                raise ReleaseError(f"{loc.url}: another curate/tile run is writing batch {batch} of this release; "
                                   "wait for it to finish, then rerun (it resumes)") from None
            raise ReleaseError(f"{loc.url}: cannot lock batch {batch} ({e.strerror})") from None
        check_writable(loc.local)
    stop = threading.Event()
    beat = None
    try:
        for _ in range(3):
            try:
                loc.put(key, _lease_body(writer, ttl, info), exclusive=True)
                break
            except ObjectExists:
                try:
                    holder = json.loads(loc.get(key))
                except FileNotFoundError:
                    continue  # released meanwhile: try again
                except ValueError:
                    holder = {}
                if not _stale(holder, fd is not None):
                    left = max(0.0, float(holder.get("expires_unix", 0)) - time.time())
                    raise ReleaseError(
                        f"{loc.url}: another curate/tile run is writing batch {batch} (host "
                        f"{holder.get('host')}, pid {holder.get('pid')}, lease live for {left:.0f} s more); "
                        "wait for it to finish, then rerun (it resumes)") from None
                loc.delete(key)  # a dead holder's lease: take it over (the create decides a race)
        else:
            raise ReleaseError(f"{loc.url}: could not take the writer lease of batch {batch}; rerun")

        def heartbeat() -> None:
            while not stop.wait(ttl / 3):
                try:
                    loc.put(key, _lease_body(writer, ttl, info))
                except Exception:  # noqa: BLE001 - a missed beat; the next one retries
                    pass

        beat = threading.Thread(target=heartbeat, name=f"lease-{batch}", daemon=True)
        beat.start()
        yield writer
    finally:
        stop.set()
        if beat is not None:
            beat.join(timeout=5)
            try:
                holder = json.loads(loc.get(key))
                if holder.get("writer") == writer:
                    loc.delete(key)
            except Exception:  # noqa: BLE001 - already gone, or unreadable: it expires by itself
                pass
        if fd is not None:
            os.close(fd)


def active_writers(loc) -> list[str]:
    """Batches of the release at ``loc`` whose writer lease is live now (empty: no writer)."""
    out = []
    for o in loc.list("index/leases/"):
        if not o.key.endswith(".json"):
            continue
        batch = o.key.rsplit("/", 1)[-1].removesuffix(".json")
        try:
            holder = json.loads(loc.get(o.key))
        except (FileNotFoundError, ValueError):
            continue
        free = False
        if loc.local is not None:  # the kernel's word beats the heartbeat's
            lock = loc.local / o.key.replace(".json", ".lock")
            free = lock.exists() and not flock_held(lock)
        if not free and not _stale(holder, False):
            out.append(batch)
    return sorted(out)
