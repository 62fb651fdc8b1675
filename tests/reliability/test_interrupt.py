"""Ctrl-C during ``spectralearth tile`` on a LocalCluster: one line on stderr naming how many tasks
finished and that a rerun resumes, exit code 130 (128 + SIGINT), no worker tracebacks; the rerun
completes and the store validates, with the patches of an uninterrupted run."""

from __future__ import annotations

import os
import re
import signal
import subprocess
import time
from pathlib import Path

from spectralearth_data.release.validate import validate_store as validate

from .harness import CLI, cli_env, fingerprint, run_cli


def _parts(store: Path) -> int:
    return len(list((store / "index" / "patches").glob("*/part-*.parquet")))


def test_ctrl_c_during_tile_prints_one_line_and_the_rerun_resumes(demo, tmp_path):
    store = tmp_path / "r.zarr"
    args = ["tile", demo.small_plan, "--store", store, "--no-progress", "--workers", "2"]
    err = tmp_path / "stderr.txt"
    with open(err, "wb") as e:
        proc = subprocess.Popen([*CLI, *map(str, args)], start_new_session=True, stdout=subprocess.DEVNULL,
                                stderr=e, env=cli_env())
    try:
        deadline = time.monotonic() + 240  # a guard against a hang only; the wait is on the store
        while proc.poll() is None and _parts(store) == 0 and time.monotonic() < deadline:
            time.sleep(0.01)
        assert proc.poll() is None, "tile finished before the first index part was seen"
        os.killpg(proc.pid, signal.SIGINT)  # what Ctrl-C in a terminal does: the whole group
        rc = proc.wait(timeout=240)
    finally:
        if proc.poll() is None:
            os.killpg(proc.pid, signal.SIGKILL)
            proc.wait()
    text = err.read_text()
    lines = [ln for ln in text.splitlines() if ln.strip()]
    assert rc == 130, f"exit {rc}\n{text[-3000:]}"
    assert "Traceback" not in text, text[-3000:]
    assert len(lines) == 1, text[-3000:]
    m = re.fullmatch(r"interrupted after (\d+) of (\d+) tasks; rerun the same command to resume", lines[0])
    assert m, lines[0]
    assert int(m[1]) < int(m[2])
    before = fingerprint(store)
    assert before and all(demo.clean[k] == v for k, v in before.items())

    r = run_cli(*args)
    assert r.returncode == 0, r.stderr
    assert validate(store) == []
    assert fingerprint(store) == demo.clean
