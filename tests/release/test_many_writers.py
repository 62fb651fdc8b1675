"""Many writers into one release (issue 18, item 2): writers of different partitions of the grid
tile concurrently, in separate processes, into ONE release on local disk and on a local S3
server (moto); afterwards the release validates, its patch hashes equal a one-writer build, and
each writer created objects only under its own batch (arrays, commit parts, lease, record), the
root and sensor groups being create-only objects shared by all. SYNTHESIZED scenes
(tests/engine/synth.py)."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from spectralearth_data.engine import TileConfig, tile
from spectralearth_data.release import reader
from spectralearth_data.release.validate import validate_store

from engine.synth import demo_cells
from engine.test_tile import _plan
from reliability.s3 import moto_server

REPO = Path(__file__).resolve().parents[2]
CFG = TileConfig(patches_per_shard=2, coreg=False)
#: One writer: tiles the plan's cells of one partition (argv: plan, store, partition, cells JSON).
WRITER = """
import json, sys
from spectralearth_data.engine import TileConfig, tile
plan, store, part, cells = sys.argv[1], sys.argv[2], sys.argv[3], set(json.loads(sys.argv[4]))
s = tile(plan, store, scheduler="synchronous", progress=False, partition=part, partition_cells=cells,
         config=TileConfig(patches_per_shard=2, coreg=False))
print(json.dumps({"batch": s.batch, "written": s.patches_written, "seconds": s.seconds}))
"""


@pytest.fixture(scope="module")
def plan(tmp_path_factory):
    """8 cells x (S2 + EnMAP) of SYNTHESIZED scenes, and the hashes of a one-writer build."""
    tmp = tmp_path_factory.mktemp("writers")
    df = _plan(tmp, demo_cells(4, 2))
    path = tmp / "plan.parquet"
    df.to_parquet(path)
    one = tmp / "one.zarr"
    tile(path, one, scheduler="synchronous", progress=False, config=CFG)
    return path, sorted(df["cell_id"].unique()), _hashes(one)


@pytest.fixture(scope="module")
def s3():
    with moto_server() as server:
        yield server


def _hashes(store) -> set[tuple[str, str]]:
    idx = reader.read_index_columns(store, ["patch_id", "sha256"])
    return set(zip(idx["patch_id"], idx["sha256"]))


def _env(extra: dict[str, str] | None = None) -> dict[str, str]:
    env = dict(os.environ)
    env["PYTHONPATH"] = str(REPO) + os.pathsep + env.get("PYTHONPATH", "")
    env.update(extra or {})
    return env


def run_writers(plan_path, store: str, cells: list[str], n: int, env: dict[str, str] | None = None) -> list[dict]:
    """``n`` writer processes started together, partition ``p<i>`` = every n-th cell from i."""
    procs = [subprocess.Popen([sys.executable, "-c", WRITER, str(plan_path), store, f"p{i}", json.dumps(cells[i::n])],
                              stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=_env(env))
             for i in range(n)]
    outs = [p.communicate(timeout=600) for p in procs]
    for p, (_, err) in zip(procs, outs):
        assert p.returncode == 0, err[-3000:]
    return [json.loads(out.strip().splitlines()[-1]) for out, _ in outs]


def check_ownership(store, results: list[dict]) -> dict[str, int]:
    """Every object is a shared create-only group or lies under exactly one writer's batch;
    returns the number of objects per batch."""
    loc = reader.location(store)
    batches = [r["batch"] for r in results]
    shared = {"zarr.json", "s2/zarr.json", "enmap/zarr.json"}
    per: dict[str, int] = dict.fromkeys(batches, 0)
    for o in loc.list():
        if o.key in shared:
            continue
        owners = [b for b in batches if b in o.key]
        assert len(owners) == 1, f"{o.key}: not under exactly one writer's batch ({owners})"
        per[owners[0]] += 1
    root = json.loads(loc.get("zarr.json"))["attributes"]
    assert root["layout"] == 2 and "updated" not in root and "sensors" not in root  # never updated
    return per


@pytest.mark.parametrize("n", [2, pytest.param(4, marks=pytest.mark.slow)])
def test_concurrent_writers_on_local_disk_equal_one_writer(plan, tmp_path, n):
    plan_path, cells, want = plan
    store = str(tmp_path / "many.zarr")
    results = run_writers(plan_path, store, cells, n)
    assert sum(r["written"] for r in results) == len(want) == 16
    assert validate_store(store) == []
    assert _hashes(store) == want
    per = check_ownership(store, results)
    assert all(v > 0 for v in per.values()) and len(per) == n
    assert not list(Path(store).glob("index/leases/*.json"))  # every lease released


@pytest.mark.parametrize("n", [2, pytest.param(4, marks=pytest.mark.slow)])
def test_concurrent_writers_on_s3_equal_one_writer(plan, s3, n):
    plan_path, cells, want = plan
    store = f"s3://{s3.bucket()}/many.zarr"
    results = run_writers(plan_path, store, cells, n, env=s3.env())
    os.environ.update(s3.env())
    try:
        assert validate_store(store) == []
        assert _hashes(store) == want
        per = check_ownership(store, results)
        assert all(v > 0 for v in per.values()) and len(per) == n
        assert not [o for o in reader.location(store).list("index/leases/")]  # every lease released
        # the loader's reader serves the release from the bucket (through zarr)
        rel = reader.open_release(store, ["s2", "enmap"])
        r = rel.index.iloc[0]
        data, mask = rel.read_raw([(r.sensor, r.batch, int(r.row))])[0]
        from spectralearth_data.release.store import patch_sha256

        idx = reader.read_index_columns(store, ["patch_id", "sha256"]).set_index("patch_id")
        assert patch_sha256(data) == idx.loc[r.patch_id, "sha256"] and mask.dtype.name == "uint8"
    finally:
        for k in s3.env():
            os.environ.pop(k, None)


def test_a_second_writer_of_the_same_batch_is_refused_and_a_resume_skips_everything(plan, s3):
    """Same plan + partition = same batch: while one holds the lease another is refused (on
    object storage: the lease object's conditional create); afterwards a rerun resumes."""
    from spectralearth_data.errors import ReleaseError
    from spectralearth_data.release.lease import batch_lease

    plan_path, cells, want = plan
    store = f"s3://{s3.bucket()}/same.zarr"
    os.environ.update(s3.env())
    try:
        first = tile(plan_path, store, scheduler="synchronous", progress=False, config=CFG)
        loc = reader.location(store)
        with batch_lease(loc, first.batch, key=f"index/leases/{first.batch}.json"):
            with pytest.raises(ReleaseError, match=f"another curate/tile run is writing batch {first.batch}"):
                tile(plan_path, store, scheduler="synchronous", progress=False, config=CFG)
        again = tile(plan_path, store, scheduler="synchronous", progress=False, config=CFG)
        assert again.batch == first.batch and again.patches_written == 0 and again.patches_skipped == 16
        assert _hashes(store) == want and validate_store(store) == []
    finally:
        for k in s3.env():
            os.environ.pop(k, None)
