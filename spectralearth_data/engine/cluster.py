"""Memory settings of the processes that tile: Dask's defaults, less one that costs tiling CPU.

A ``distributed`` nanny starts its workers with ``MALLOC_TRIM_THRESHOLD_=65536`` (Dask's
``distributed.nanny.pre-spawn-environ``) so idle workers hand memory back to the OS. Setting
that variable also switches off glibc's adaptive mmap threshold: every array over 128 KiB is
then a fresh ``mmap`` whose pages are faulted in again on each allocation, and a tiling task
allocates hundreds of MB of short-lived strips and shards. The workers started here keep
glibc's adaptive allocator with at most two malloc arenas (the threads of zarr's encoder
otherwise each get one, and each keeps its own free memory), and each task ends with
:func:`release_free_memory`, so memory is reused within a task and handed back between tasks.
Measured on the full-size 4x region of ``benchmarks/tile.py`` (SYNTHESIZED scenes, 2 workers,
588 patches; kernel CPU seconds and peak RSS of the process tree, two runs where two are given;
the first two rows with GDAL's default block cache, the last two with 512 MiB):

==================================================  ============  ===================
worker memory settings                              kernel s      peak RSS
==================================================  ============  ===================
Dask's default environment                          25.4          1.86 GB
without ``MALLOC_TRIM_THRESHOLD_``                  8.1           2.88 GB (grows with
                                                                  the tasks run)
... + ``malloc_trim`` after each task               14.6 / 16.6   2.50 / 2.52 GB
... + ``MALLOC_ARENA_MAX=2`` (used here)            14.8 / 15.8   2.06 / 2.24 GB
==================================================  ============  ===================

For an existing cluster (``--scheduler ADDRESS``) the environment is the cluster's: set
``distributed.nanny.pre-spawn-environ`` to ``{MALLOC_TRIM_THRESHOLD_: null, MALLOC_ARENA_MAX: 2}``
in the Dask config of the machines that start the workers (see the README, "Scaling to
40 TB"); the per-task trim runs on any worker.
"""

from __future__ import annotations

import contextlib
import ctypes
import ctypes.util
import functools

#: Changes to Dask's worker pre-spawn environment for tiling workers (None: not set at all).
WORKER_ENV: dict[str, str | None] = {"MALLOC_TRIM_THRESHOLD_": None, "MALLOC_ARENA_MAX": "2"}


def local_cluster(n_workers: int, threads_per_worker: int = 1, processes: bool = True, dashboard_address: str | None = None, **kwargs):
    """A ``distributed.LocalCluster`` for tiling (also usable as a prefect-dask ``cluster_class``)."""
    import dask
    from distributed import LocalCluster

    env = {f"distributed.nanny.pre-spawn-environ.{k}": v for k, v in WORKER_ENV.items()}
    with dask.config.set(env), _workers_ignore_sigint(processes):  # read when the nannies are created
        return LocalCluster(
            n_workers=n_workers, threads_per_worker=threads_per_worker, processes=processes,
            dashboard_address=dashboard_address, **kwargs,
        )


@contextlib.contextmanager
def _workers_ignore_sigint(processes: bool):
    """Worker processes started inside this block ignore SIGINT (the disposition is inherited).

    Ctrl-C in a terminal reaches the whole process group: without this every worker dies with its
    own KeyboardInterrupt traceback. The process that started the cluster handles Ctrl-C (and
    closes the cluster, which stops the workers); see ``tile._close_quietly``."""
    import signal
    import threading

    if not processes or threading.current_thread() is not threading.main_thread():
        yield
        return
    previous = signal.signal(signal.SIGINT, signal.SIG_IGN)
    try:
        yield
    finally:
        signal.signal(signal.SIGINT, previous)


def release_free_memory() -> None:
    """Hand the C heap's free pages back to the OS (glibc ``malloc_trim``; a no-op elsewhere).

    Called after each tiling task: during a task glibc reuses freed memory for the next strip
    (no page faults), and between tasks the worker's resident memory drops back to what it
    holds, so it does not creep up with the number of tasks a worker has run.
    """
    trim = _malloc_trim()
    if trim is not None:
        trim(0)


@functools.cache
def _malloc_trim():
    name = ctypes.util.find_library("c")
    try:
        fn = ctypes.CDLL(name).malloc_trim if name else None
    except (OSError, AttributeError):  # not glibc (macOS, musl)
        return None
    if fn is not None:
        fn.argtypes, fn.restype = [ctypes.c_size_t], ctypes.c_int
    return fn
