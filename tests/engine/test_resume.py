"""Resume after kill -9: the CLI is killed mid-run, rerun, and the store equals a clean run's."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import geopandas as gpd
import numpy as np
import pandas as pd
import pytest

from spectralearth_data.engine import TileConfig, tile
from spectralearth_data.release.validate import validate_store as validate

from .synth import demo_cells, enmap_scene, plan_rows, s2_scene

CLI = [sys.executable, "-c", "from spectralearth_data.cli import main; main()"]


def _plan(tmp: Path) -> Path:
    cells = demo_cells(3, 2)
    s2a, _, _ = s2_scene(tmp / "scenes", "S2_K", cells, tex=3000.0)
    ena, _, _ = enmap_scene(tmp / "scenes", "EN_K", cells, tex=3000.0)
    plan = pd.concat([plan_rows("enmap", "EN_K", cells, ena), plan_rows("s2", "S2_K", cells, s2a, anchor="EN_K")], ignore_index=True)
    path = tmp / "plan.parquet"
    plan.to_parquet(path)
    return path


def _hashes(store: Path) -> set[tuple[str, str]]:
    idx = gpd.read_parquet(store / "index" / "patches")
    return set(zip(idx["patch_id"], idx["sha256"]))


@pytest.mark.parametrize(
    "how",
    [pytest.param(["--scheduler", "synchronous"], id="inline"),
     pytest.param(["--workers", "2"], id="local-cluster", marks=pytest.mark.slow)],
)
def test_kill_9_mid_run_then_rerun_matches_clean_run(tmp_path, how):
    plan = _plan(tmp_path)
    store = tmp_path / "killed.zarr"
    args = [*CLI, "tile", str(plan), "--store", str(store), "--patches-per-shard", "2", *how, "--no-coreg", "--no-progress"]
    proc = subprocess.Popen(args, start_new_session=True, stdout=subprocess.PIPE, stderr=subprocess.STDOUT)
    parts = store / "index" / "patches"
    deadline = time.monotonic() + 120
    while time.monotonic() < deadline and proc.poll() is None:
        if parts.is_dir() and any(parts.glob("*/part-*.parquet")):
            break
        time.sleep(0.05)
    assert proc.poll() is None, proc.stdout.read().decode()[-2000:]
    os.killpg(proc.pid, signal.SIGKILL)  # the driver and its Dask workers, mid-write
    proc.wait()
    n_before = len(list(parts.glob("*/part-*.parquet")))
    assert 0 < n_before < 6  # 12 patches in shards of 2: killed part-way
    # every committed patch of the killed run is already consistent with its data (layout 2 has
    # no derived table to lag behind); shards written but not committed are reported as orphans
    assert all("no index part commits" in p for p in validate(store))

    # the rerun skips exactly the committed patches and writes the rest (lock of the dead run
    # taken over, temporaries of the killed writers cleaned)
    rerun = tile(plan, store, scheduler="synchronous", progress=False, config=TileConfig(patches_per_shard=2, coreg=False))
    assert rerun.patches_skipped == 2 * n_before and rerun.patches_written == 12 - 2 * n_before
    assert validate(store) == []

    clean = tmp_path / "clean.zarr"
    tile(plan, clean, scheduler="synchronous", progress=False, config=TileConfig(patches_per_shard=2, coreg=False))
    got, want = _hashes(store), _hashes(clean)
    assert got == want and len(got) == 12
    idx = gpd.read_parquet(store / "index" / "patches")
    assert idx["patch_id"].is_unique and not idx.duplicated(["sensor", "batch", "row"]).any()


def test_validate_cli_reports_a_torn_patch(tmp_path):
    plan = _plan(tmp_path)
    store = tmp_path / "s.zarr"
    tile(plan, store, scheduler="synchronous", progress=False, config=TileConfig(patches_per_shard=4, coreg=False))
    assert validate(store) == []
    shard = next(store.glob("s2/*/data/c"))
    while shard.is_dir():
        shard = next(shard.iterdir())
    data = bytearray(shard.read_bytes())
    data[len(data) // 2 : len(data) // 2 + 64] = b"\x00" * 64  # corrupt the middle of one shard
    shard.write_bytes(bytes(data))
    bad = subprocess.run([*CLI, "validate", str(store)], capture_output=True, text=True, check=False)
    assert bad.returncode == 1 and "Traceback" not in bad.stderr
    assert "s2/" in bad.stdout and "torn" in bad.stdout


def test_cli_reports_user_errors_in_one_line(tmp_path):
    r = subprocess.run([*CLI, "tile", str(tmp_path / "nope.parquet"), "--store", str(tmp_path / "o.zarr")], capture_output=True, text=True, check=False)
    assert r.returncode == 2
    assert r.stderr.strip().startswith("error:") and "nope.parquet" in r.stderr and "Traceback" not in r.stderr


def test_uncommitted_shard_is_reported_then_overwritten_by_the_next_run(tmp_path):
    """The state a kill between "shard written" and "part committed" leaves: validate names the
    orphan shard; a rerun rewrites it whole and the store validates."""
    from spectralearth_data.release import iter_parts

    plan = _plan(tmp_path)
    store = tmp_path / "o.zarr"
    tile(plan, store, scheduler="synchronous", progress=False, config=TileConfig(patches_per_shard=4, coreg=False))
    part = next(p for p, meta in iter_parts(store) if meta["sensor"] == "s2")
    (store / part).unlink()  # as if the run died just before this commit
    problems = validate(store)
    assert any(p.startswith(f"s2/{part.batch}/data: shard(s) [") and "no index part commits" in p for p in problems)
    again = tile(plan, store, scheduler="synchronous", progress=False, config=TileConfig(patches_per_shard=4, coreg=False))
    assert again.patches_written == 4 and validate(store) == []


def _run_until_parts(args, parts: Path, n: int, extra_delay: float) -> None:
    """Start the CLI, wait until ``n`` parts exist plus ``extra_delay`` seconds, then SIGKILL it."""
    proc = subprocess.Popen(args, start_new_session=True, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    deadline = time.monotonic() + 120
    while time.monotonic() < deadline and proc.poll() is None:
        if parts.is_dir() and len(list(parts.glob("*/part-*.parquet"))) >= n:
            break
        time.sleep(0.02)
    time.sleep(extra_delay)
    if proc.poll() is None:
        os.killpg(proc.pid, signal.SIGKILL)
    proc.wait()


@pytest.mark.slow
def test_repeated_kills_at_different_moments_converge_to_the_clean_release(tmp_path):
    """Three runs killed at different points (right after a commit, and a little later, which
    lands inside reads, shard writes or part writes), then a final run: same patches and hashes
    as one clean run, no duplicates, a valid store."""
    plan = _plan(tmp_path)
    store = tmp_path / "k.zarr"
    parts = store / "index" / "patches"
    args = [*CLI, "tile", str(plan), "--store", str(store), "--patches-per-shard", "2", "--scheduler", "synchronous",
            "--no-coreg", "--no-progress"]
    for n, delay in ((1, 0.0), (2, 0.15), (3, 0.3)):
        _run_until_parts(args, parts, n, delay)
    final = tile(plan, store, scheduler="synchronous", progress=False, config=TileConfig(patches_per_shard=2, coreg=False))
    assert final.patches_skipped + final.patches_written == 12
    assert validate(store) == []
    clean = tmp_path / "clean.zarr"
    tile(plan, clean, scheduler="synchronous", progress=False, config=TileConfig(patches_per_shard=2, coreg=False))
    assert _hashes(store) == _hashes(clean)
    idx = gpd.read_parquet(store / "index" / "patches")
    assert idx["patch_id"].is_unique and not idx.duplicated(["sensor", "batch", "row"]).any()


@pytest.mark.parametrize("left", [("s2", ("wavelength",)), ("s2", ()), ("enmap", ("data", "wavelength"))])
def test_a_group_torn_while_being_created_is_rebuilt_by_the_rerun(tmp_path, left):
    """kill -9 between creating a product's group and its arrays (found by tests/reliability)."""
    import shutil

    import zarr

    plan = _plan(tmp_path)
    clean = tmp_path / "clean.zarr"
    cfg = TileConfig(patches_per_shard=2, coreg=False)
    tile(plan, clean, scheduler="synchronous", progress=False, config=cfg)
    store = tmp_path / "torn.zarr"
    shutil.copytree(clean, store)
    sensor, keep = left
    # what a kill leaves: the group without its index, holding only some of its arrays
    for part in (store / "index" / "patches").glob(f"*/part-{sensor}-*"):
        part.unlink()
    sg = zarr.open_group(str(store), mode="a")[sensor]
    group = sg[next(iter(sg.group_keys()))]
    for name in set(group.array_keys()) - set(keep):
        del group[name]
    if "wavelength" in keep:
        group["wavelength"][:] = float("nan")  # created, never filled
    tile(plan, store, scheduler="synchronous", progress=False, config=cfg)
    assert validate(store) == []
    assert _hashes(store) == _hashes(clean)
    sg = zarr.open_group(str(store), mode="r")[sensor]
    wl = sg[next(iter(sg.group_keys()))]["wavelength"][:]
    assert wl.size > 0 and not np.isnan(wl).any()
