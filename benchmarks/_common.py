"""Shared helpers of the ratio benchmarks: CPU time and peak RSS of a process tree, tables.

Benchmarks run each measured method in a child process (``run_child``) so the peak RSS of one
method (the child plus every worker process it starts) is not mixed with another's. CPU time is
summed over the live process tree with psutil, so workers must still be alive when it is read
(create pools/clusters before the timed section, close them after).
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import threading
import time
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Self

import psutil


def _tree(proc: psutil.Process) -> list[psutil.Process]:
    try:
        return [proc, *proc.children(recursive=True)]
    except psutil.Error:
        return []


def tree_cpu_seconds(pid: int | None = None) -> float:
    """User + system CPU seconds of process ``pid`` (default: this one) and its live descendants."""
    total = 0.0
    for p in _tree(psutil.Process(pid or os.getpid())):
        try:
            t = p.cpu_times()
            total += t.user + t.system
        except psutil.Error:  # exited between listing and reading
            pass
    return total


def tree_rss_bytes(pid: int) -> int:
    """Resident set size summed over process ``pid`` and its descendants (shared pages counted
    once per process, so this is an upper bound of the tree's real footprint)."""
    total = 0
    for p in _tree(psutil.Process(pid)):
        try:
            total += p.memory_info().rss
        except psutil.Error:
            pass
    return total


class PeakRSS:
    """Samples the RSS of a process tree every ``interval`` seconds in a thread; ``peak`` in bytes."""

    def __init__(self, pid: int, interval: float = 0.1):
        self.pid, self.interval, self.peak = pid, interval, 0
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._loop, daemon=True)

    def _loop(self) -> None:
        while not self._stop.is_set():
            try:
                self.peak = max(self.peak, tree_rss_bytes(self.pid))
            except psutil.NoSuchProcess:
                return
            self._stop.wait(self.interval)

    def __enter__(self) -> Self:
        self._thread.start()
        return self

    def __exit__(self, *exc) -> None:
        self._stop.set()
        self._thread.join()


@dataclass
class ChildResult:
    """What a measured child reported (its last stdout line, JSON) plus its tree's peak RSS."""

    report: dict
    peak_rss: int
    returncode: int
    stderr_tail: str


def run_child(args: Sequence[str], timeout: float, env: dict | None = None) -> ChildResult:
    """Run ``python *args`` and measure the peak RSS of its process tree.

    The child prints one JSON object as its last stdout line; it is returned as ``report``
    (``{}`` when the child failed).
    """
    proc = subprocess.Popen(
        [sys.executable, *args], stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
        env={**os.environ, **(env or {})},
    )
    with PeakRSS(proc.pid) as peak:
        try:
            out, err = proc.communicate(timeout=timeout)
        except subprocess.TimeoutExpired:
            for p in reversed(_tree(psutil.Process(proc.pid))):
                try:
                    p.kill()
                except psutil.Error:
                    pass
            out, err = proc.communicate()
            err += f"\ntimed out after {timeout:.0f} s"
    lines = [ln for ln in out.strip().splitlines() if ln.startswith("{")]
    report = json.loads(lines[-1]) if lines and proc.returncode == 0 else {}
    return ChildResult(report, peak.peak, proc.returncode, "\n".join(err.strip().splitlines()[-8:]))


class Timer:
    """Wall and process-tree CPU seconds of a ``with`` block."""

    def __enter__(self) -> Self:
        self.cpu0, self.t0 = tree_cpu_seconds(), time.perf_counter()
        return self

    def __exit__(self, *exc) -> None:
        self.wall = time.perf_counter() - self.t0
        self.cpu = tree_cpu_seconds() - self.cpu0


def print_table(title: str, columns: Sequence[str], rows: Sequence[Sequence[object]], caption: str = "") -> None:
    """A rich table on stdout (plain, no colour, so it pastes into notes unchanged)."""
    from rich.console import Console
    from rich.table import Table

    table = Table(title=title, caption=caption or None, caption_justify="left")
    for i, c in enumerate(columns):
        table.add_column(c, justify="left" if i == 0 else "right")
    for r in rows:
        table.add_row(*(str(v) for v in r))
    Console(width=200, no_color=True, highlight=False).print(table)
