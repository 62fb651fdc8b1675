"""Faults on the object-store path (issue 18, item 9): a fault-injecting HTTP proxy in front of a
local S3 server (moto) answers some PUTs with 503 SlowDown or resets the connection in the middle
of a PUT's body; obstore retries them (storage.py's retry config), and the release equals a
clean build with no torn object committed. One of three concurrent writers is killed with
``kill -9``: the other two finish unaffected and a rerun of the killed partition resumes (its
lease is taken over). Expired credentials are one clear line without the secret. The summary
table (``reliability: faults injected, survived, data lost``) counts them. SYNTHESIZED scenes."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time

import pytest

from spectralearth_data.engine import TileConfig, tile
from spectralearth_data.release import reader
from spectralearth_data.release.validate import validate_store

from engine.synth import demo_cells
from engine.test_tile import _plan

from .harness import CLI, cli_env, one_line_error
from .ledger import LEDGER
from .s3 import SECRET, Chaos, fault_proxy, moto_server

CFG = TileConfig(patches_per_shard=2, coreg=False)


@pytest.fixture(scope="module")
def plan(tmp_path_factory):
    tmp = tmp_path_factory.mktemp("s3faults")
    df = _plan(tmp, demo_cells(3, 2))
    path = tmp / "plan.parquet"
    df.to_parquet(path)
    one = tmp / "one.zarr"
    tile(path, one, scheduler="synchronous", progress=False, config=CFG)
    return path, sorted(df["cell_id"].unique()), _hashes(one)


@pytest.fixture(scope="module")
def s3():
    with moto_server() as server:
        yield server


@pytest.fixture
def env(s3, monkeypatch):
    def use(endpoint: str | None = None):
        for k, v in s3.env(endpoint).items():
            monkeypatch.setenv(k, v)
    return use


def _hashes(store) -> dict[str, str]:
    idx = reader.read_index_columns(store, ["patch_id", "sha256"])
    return dict(zip(idx["patch_id"], idx["sha256"]))


def _every_object_whole(store, want: dict[str, str]) -> None:
    """No torn object committed: the release validates (every committed row's bytes hash to its
    index entry) and holds exactly the clean build's patches."""
    assert validate_store(store) == []
    assert _hashes(store) == want


@pytest.mark.parametrize("fault", ["503", "reset"])
def test_slowdown_and_resets_mid_put_are_retried(plan, s3, env, fault):
    plan_path, _, want = plan
    bucket = s3.bucket()
    # every 3rd PUT fails (the retry of a failed one is a later PUT, so it gets through)
    chaos = Chaos(rule=lambda m, p, n: fault if m == "PUT" and n % 3 == 0 else None)
    with fault_proxy(s3.endpoint, chaos) as proxy:
        env(proxy)
        store = f"s3://{bucket}/faults.zarr"
        s = tile(plan_path, store, scheduler="synchronous", progress=False, config=CFG)
        env()  # check through the server itself
        injected = chaos.injected.get(fault, 0)
    assert injected >= 5 and s.patches_written == len(want)
    _every_object_whole(store, want)
    LEDGER.record("object store", f"{'503 SlowDown' if fault == '503' else 'reset mid-PUT'} on every 3rd PUT",
                  injected=injected, survived=True, lost=len(set(want) - set(_hashes(store))))


def test_kill_9_of_one_of_three_concurrent_writers(plan, s3, env, tmp_path):
    plan_path, cells, want = plan
    env()
    store = f"s3://{s3.bucket()}/killed.zarr"
    script = ("import json, sys\nfrom spectralearth_data.engine import TileConfig, tile\n"
              "tile(sys.argv[1], sys.argv[2], scheduler='synchronous', progress=False, partition=sys.argv[3], "
              "partition_cells=set(json.loads(sys.argv[4])), config=TileConfig(patches_per_shard=2, coreg=False))\n")
    parts = [cells[i::3] for i in range(3)]
    e = cli_env(s3.env())
    procs = [subprocess.Popen([sys.executable, "-c", script, str(plan_path), store, f"p{i}", json.dumps(c)], env=e,
                              stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
             for i, c in enumerate(parts)]
    loc = reader.location(store)
    deadline = time.monotonic() + 120
    victim = procs[0]
    while time.monotonic() < deadline and victim.poll() is None:  # kill p0 once it committed a part
        if any("/p0-" in k for k in reader.part_paths(loc)):
            break
        time.sleep(0.05)
    killed = victim.poll() is None
    if killed:
        os.kill(victim.pid, signal.SIGKILL)
    victim.wait()
    for p in procs[1:]:
        _, err = p.communicate(timeout=300)
        assert p.returncode == 0, err[-3000:]  # the other writers are unaffected
    got = _hashes(store)
    assert all(want[k] == v for k, v in got.items())  # what is committed is whole
    others = {pid for pid in want if pid.split("/")[1] in set(parts[1]) | set(parts[2])}
    assert others <= set(got)
    # the killed writer's partition again: its lease (pid dead on this host) is taken over
    again = tile(plan_path, store, scheduler="synchronous", progress=False, config=CFG, partition="p0",
                 partition_cells=set(parts[0]))
    assert again.batch.startswith("p0-")
    _every_object_whole(store, want)
    LEDGER.record("object store", "kill -9 of 1 of 3 concurrent writers", injected=int(killed), survived=True,
                  lost=len(set(want) - set(_hashes(store))))


def test_expired_credentials_are_one_line_without_the_secret(plan, s3, tmp_path):
    plan_path, _, _ = plan
    chaos = Chaos(rule=lambda m, p, n: "expired")
    with fault_proxy(s3.endpoint, chaos) as proxy:
        r = subprocess.run([*CLI, "tile", str(plan_path), "--store", f"s3://{s3.bucket()}/x.zarr", "--no-progress",
                            "--scheduler", "synchronous", "--no-coreg"], capture_output=True, text=True, timeout=240,
                           env=cli_env(s3.env(proxy)), check=False)
    line = one_line_error(r)
    assert "s3://" in line and ("ExpiredToken" in line or "expired" in line.lower()), line
    assert SECRET not in r.stderr + r.stdout
    LEDGER.record("object store", "expired credentials", injected=chaos.total, survived=True)
