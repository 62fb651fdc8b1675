"""Two writers on one release path: one works, the other stops cleanly (or waits); the store
still validates and equals an uninterrupted run."""

from __future__ import annotations

import subprocess

import pytest

from spectralearth_data.engine import TileConfig, tile
from spectralearth_data.release.validate import validate_store as validate
from spectralearth_data.errors import ReleaseError
from spectralearth_data.lock import is_locked, release_lock

from .harness import CLI, cli_env, copy_store, fingerprint, lost, one_line_error, run_cli
from .ledger import LEDGER


def _tile_args(plan, store):
    return ["tile", str(plan), "--store", str(store), "--scheduler", "synchronous", "--no-progress"]


def test_a_held_lock_stops_a_second_writer_and_loses_nothing(demo, tmp_path):
    """The writer lease of the plan's batch (layout 2: one per batch) held by another writer."""
    from spectralearth_data.release.lease import active_writers, batch_lease
    from spectralearth_data.release.reader import part_paths
    from spectralearth_data.release.storage import open_location

    store = copy_store(demo.clean_store, tmp_path / "r.zarr")
    before = fingerprint(store)
    loc = open_location(store)
    batch = part_paths(store)[0].batch
    with batch_lease(loc, batch):
        assert active_writers(loc) == [batch]
        with pytest.raises(ReleaseError, match="another curate/tile run is writing"):
            tile(demo.small_plan, store, scheduler="synchronous", progress=False)
        r = run_cli(*_tile_args(demo.small_plan, store))
        line = one_line_error(r)
        assert str(store) in line
    assert active_writers(loc) == []
    after = fingerprint(store)
    assert after == before and validate(store) == []
    LEDGER.record("concurrency", "held lock", injected=1, survived=True, lost=lost(before, after))


def test_a_waiting_writer_gets_the_lock_when_the_first_finishes(tmp_path):
    store = tmp_path / "w.zarr"
    with release_lock(store), pytest.raises(ReleaseError, match=r"waited 0.3 s"), release_lock(store, wait_s=0.3):
        pass
    with release_lock(store, wait_s=5):
        assert is_locked(store)


@pytest.mark.parametrize("fresh", [True, pytest.param(False, marks=pytest.mark.slow)], ids=["new-store", "existing-store"])
def test_two_tile_runs_at_once_on_one_store(demo, tmp_path, fresh):
    """Both start together; each either completes or stops with one clean line. Afterwards the
    store validates, a rerun completes, and the result equals the clean run."""
    store = tmp_path / "both.zarr"
    before: dict[str, str] = {}
    if not fresh:
        half = tmp_path / "half.parquet"
        import geopandas as gpd

        plan = gpd.read_parquet(demo.small_plan)
        plan[plan["sensor"].isin(["s2", "landsat"])].to_parquet(half)
        tile(half, store, scheduler="synchronous", progress=False, config=TileConfig())
        before = fingerprint(store)
    procs = [subprocess.Popen([*CLI, *_tile_args(demo.small_plan, store)], stdout=subprocess.PIPE,
                              stderr=subprocess.PIPE, text=True, env=cli_env()) for _ in range(2)]
    outs = [p.communicate(timeout=300) for p in procs]
    codes = [p.returncode for p in procs]
    assert 0 in codes, outs
    for p, (out, err) in zip(procs, outs):
        if p.returncode != 0:
            one_line_error(subprocess.CompletedProcess(p.args, p.returncode, out, err))
            assert "another curate/tile run is writing" in err
    assert validate(store) == []
    again = run_cli(*_tile_args(demo.small_plan, store))
    assert again.returncode == 0, again.stderr
    after = fingerprint(store)
    assert validate(store) == []
    assert after == demo.clean
    LEDGER.record("concurrency", f"two writers ({'new' if fresh else 'existing'} store)", injected=1,
                  survived=True, lost=lost(before, after) + lost(demo.clean, after))


def test_batch_leases_refuse_a_second_writer_of_a_batch_and_never_block_other_batches(tmp_path):
    """Layout 2: the writer lock is per batch (a lease object + a flock), not per release. A
    second writer of the same batch is refused while the first holds it; a writer of another
    batch of the same release is not; a lease left by a dead holder is taken over."""
    import json
    import os

    from spectralearth_data.release.lease import active_writers, batch_lease
    from spectralearth_data.release.storage import open_location

    loc = open_location(tmp_path / "r.zarr")
    with batch_lease(loc, "p0-abc"):
        assert active_writers(loc) == ["p0-abc"]
        with pytest.raises(ReleaseError, match="another curate/tile run is writing batch p0-abc"), \
                batch_lease(loc, "p0-abc"):
            pass
        with batch_lease(loc, "p1-abc"):  # another partition: no conflict
            assert active_writers(loc) == ["p0-abc", "p1-abc"]
    assert active_writers(loc) == [] and not (tmp_path / "r.zarr" / "index/leases/p0-abc.json").exists()
    # a lease object left by a writer killed with kill -9 (its pid is gone, its flock released)
    dead = {"writer": "x", "host": os.uname().nodename, "pid": 2**22 + 1, "expires_unix": 4e9}
    loc.put("index/leases/p0-abc.json", json.dumps(dead).encode())
    with batch_lease(loc, "p0-abc") as me:
        assert json.loads(loc.get("index/leases/p0-abc.json"))["writer"] == me

