"""kill -9 at seeded random points of search / tile / shard write / index commit; the rerun
completes, ``validate`` is clean, and patch ids and sha256 equal an uninterrupted run's."""

from __future__ import annotations

import os
import random
import signal
import time
from pathlib import Path

import geopandas as gpd
import pandas as pd
import pytest

from spectralearth_data.release.validate import validate_store as validate

from .harness import CELLS, fingerprint, lost, run_cli, start_cli
from .ledger import LEDGER

POINTS = ("search", "tile", "write", "index")


def _kill(proc) -> None:
    """SIGKILL the CLI and everything it started (Dask workers included)."""
    try:
        os.killpg(proc.pid, signal.SIGKILL)
    except ProcessLookupError:
        pass
    proc.wait()


def _wait_for(proc, cond, timeout: float = 120) -> bool:
    """Poll ``cond()`` while the process runs; False if it finished first."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline and proc.poll() is None:
        if cond():
            return True
        time.sleep(0.01)
    return False


def _shard_files(store: Path) -> int:
    return sum(1 for p in store.glob("*/*/data/c/**/*") if p.is_file())


def _parts(store: Path) -> int:
    return len(list((store / "index" / "patches").glob("*/part-*.parquet")))


def _kill_search(rng, demo, tmp: Path) -> tuple[int, bool, int]:
    out = tmp / "scenes.parquet"
    args = ["search", "--source", f"local:{demo.scenes_dir / 'catalog.json'}", "--region", "demo", "-o", out]
    proc = start_cli(*args, log=tmp / "search.log")
    time.sleep(rng.uniform(0.0, 2.0))  # the CLI search takes ~2-3 s here
    killed = proc.poll() is None
    _kill(proc)
    if out.exists():  # written by rename only: never half a file
        gpd.read_parquet(out)
    r = run_cli(*args)
    assert r.returncode == 0, r.stderr
    pd.testing.assert_frame_equal(gpd.read_parquet(out), gpd.read_parquet(demo.scenes))
    return int(killed), True, 0


def _kill_tile(rng, demo, tmp: Path, point: str, workers: bool, cell: str | None) -> tuple[int, bool, int]:
    store = tmp / "r.zarr"
    only = ["--cell", cell] if cell else []
    want = {k: v for k, v in demo.clean.items() if cell is None or f"/{cell}/" in k}
    args = ["tile", demo.small_plan, "--store", store, "--no-progress", *only]
    args += ["--workers", "2"] if workers else ["--scheduler", "synchronous"]
    proc = start_cli(*args, log=tmp / "tile.log")
    if point == "tile":  # anywhere: start-up, store creation, reading, writing, committing
        time.sleep(rng.uniform(0.0, demo.tile_seconds * (1.2 if workers else 0.8)))
    elif point == "write":  # while shards are being written
        _wait_for(proc, lambda: _shard_files(store) > 0)
        time.sleep(rng.uniform(0.0, 0.3))
    else:  # right after the n-th index part is committed
        n = rng.randint(1, 6)
        _wait_for(proc, lambda: _parts(store) >= n)
    killed = proc.poll() is None
    _kill(proc)
    before = fingerprint(store)
    assert set(before) <= set(want) and all(want[k] == v for k, v in before.items())
    if (store / "zarr.json").exists():
        # what is committed is consistent; only the locations table may lag, a shard written
        # but not yet committed is reported as an orphan (nothing points at it), and a store
        # killed before its first commit is reported as empty
        problems = validate(store)
        lagging = ("locations.parquet", "no index part commits", "empty release")
        assert all(any(s in p for s in lagging) for p in problems), problems
    r = run_cli("tile", demo.small_plan, "--store", store, "--no-progress", "--scheduler", "synchronous", *only)
    assert r.returncode == 0, r.stderr
    assert validate(store) == []
    after = fingerprint(store)
    assert after == want, "rerun after kill differs from the clean run"
    return int(killed), True, lost(before, after)


def kill_trial(seed: int, demo, tmp: Path, point: str | None = None, cell: str | None = None) -> None:
    rng = random.Random(seed)
    point = point or rng.choice(POINTS)
    workers = point != "search" and rng.random() < 0.3
    if point == "search":
        injected, survived, n_lost = _kill_search(rng, demo, tmp)
    else:
        injected, survived, n_lost = _kill_tile(rng, demo, tmp, point, workers, cell)
    LEDGER.record("kill -9", f"seed {seed}: {point}{' (2 workers)' if workers else ''}", injected=injected,
                  survived=survived, lost=n_lost)


@pytest.mark.parametrize("seed,point", [(101, "write"), (102, "index")], ids=["mid-write", "after-commit"])
def test_kill_then_rerun_matches_clean_run(seed, point, demo, tmp_path):
    """The quick version: one cell (the rerun is compared with the clean run's patches there)."""
    kill_trial(seed, demo, tmp_path, point, cell=CELLS[0])


@pytest.mark.slow
@pytest.mark.parametrize("seed", range(20))
def test_kill_at_random_points(seed, demo, tmp_path):
    kill_trial(seed, demo, tmp_path)
