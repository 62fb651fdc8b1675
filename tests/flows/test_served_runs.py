"""End-to-end runs of the served deployments on a real Prefect server (slow: real curation).

``prefect deployment run curate/region --watch`` curates part of the demo region into a release;
its ``spectralearth.release.published`` event starts ``train/after-release``, whose
``spectralearth.model.trained`` event starts ``evaluate/after-train``. A curate run killed
mid-tiling, rerun with the same release id, keeps the cells it had finished and tiles only the
rest.
"""

from __future__ import annotations

import json
import os
import signal
from pathlib import Path

import pandas as pd
import pytest
from prefect_helpers import PrefectServer, flow_runs, run_prefect, wait_for

pytestmark = pytest.mark.slow

#: Cells of the demo plan a served curate run tiles (a subset keeps the runs short).
SOME_CELLS = 6


def _artifacts(server: PrefectServer, flow_run_id) -> dict:
    """Artifacts of one flow run and its task runs, by key (type, data)."""
    from prefect import get_client
    from prefect.client.schemas.filters import ArtifactFilter, ArtifactFilterFlowRunId
    from prefect.settings import PREFECT_API_URL, temporary_settings

    with temporary_settings(updates={PREFECT_API_URL: server.url}), get_client(sync_client=True) as client:
        arts = client.read_artifacts(
            artifact_filter=ArtifactFilter(flow_run_id=ArtifactFilterFlowRunId(any_=[flow_run_id]))
        )
    return {a.key: a for a in arts if a.key}


def _run_by_release(server: PrefectServer, deployment: str, key: str, value: str):
    return next((r for r in flow_runs(server, deployment) if r.parameters.get(key) == value), None)


def _plan_cells(served: PrefectServer, n: int) -> list[str]:
    """The first ``n`` cells of the demo plan, from an in-process co-location of the demo scenes."""
    from flows.params import check_curate
    from spectralearth_data.colocate import colocate
    from spectralearth_data.demo import make_demo_scenes
    from spectralearth_data.sources import search

    scenes_dir = served.data / "scenes"  # where the served curate runs find them (made once)
    if not (scenes_dir / "catalog.json").exists():
        make_demo_scenes(scenes_dir)
    req = check_curate("demo")
    scenes = search("demo", "demo", start=req.start, end=req.end, demo_dir=str(scenes_dir))
    plan = colocate(scenes, cell_m=req.cell_m)
    return sorted(set(plan["cell_id"]))[:n]


def _index(store: Path) -> pd.DataFrame:
    parts = sorted((store / "index" / "patches").glob("*/part-*.parquet"))
    if not parts:
        return pd.DataFrame(columns=["patch_id", "cell_id", "sensor", "row", "sha256"])
    idx = pd.concat([pd.read_parquet(p, columns=["patch_id", "cell_id", "sensor", "row", "sha256"]) for p in parts])
    return idx.sort_values("patch_id").reset_index(drop=True)


def _wait_completed(server: PrefectServer, deployment: str, key: str, value: str, timeout: float):
    def done():
        run = _run_by_release(server, deployment, key, value)
        if run is not None and run.state.is_final():
            return run
        return None

    run = wait_for(done, timeout, f"a final {deployment} run with {key}={value}", interval=2)
    assert run.state.is_completed(), f"{deployment}: {run.state.type} {run.state.message}"
    return run


def test_curate_region_completes_and_its_release_trains_and_evaluates(served):
    release = "served-demo"
    cells = json.dumps(_plan_cells(served, SOME_CELLS))
    proc = run_prefect(
        served, "deployment", "run", "curate/region", "--watch", "--watch-timeout", "900",
        "--param", f"release={release}", "--param", f"cells={cells}", timeout=960,
    )
    assert proc.returncode == 0, proc.stdout + proc.stderr
    run = _run_by_release(served, "curate/region", "release", release)
    assert run.state.is_completed()

    store = served.data / "releases" / f"{release}.zarr"
    manifest = json.loads((store / "release.json").read_text())
    assert manifest["release_id"] == release
    assert set(_index(store)["cell_id"]) == set(json.loads(cells))

    arts = _artifacts(served, run.id)
    assert arts[f"coverage-{release}"].type == "image"
    counts = arts[f"counts-{release}"]
    assert counts.type == "table"
    rows = json.loads(counts.data)
    assert {r["product"] for r in rows} >= {"enmap", "s2"} and all(r["patches"] >= 0 for r in rows)
    timings = json.loads(arts[f"timings-{release}"].data)
    assert [r["stage"] for r in timings][-1] == "total"
    assert {"search", "colocate", "tile", "validate", "publish"} <= {r["stage"] for r in timings}
    assert any(k.startswith(f"quicklook-{release}-") for k in arts)

    # the release event started train/after-release on this release's store
    train_run = _wait_completed(served, "train/after-release", "release", str(store.resolve()), 900)
    model_dir = served.data / "models" / f"{release}-tiny"
    assert (model_dir / "checkpoint.pt").exists()
    # ... and the trained-model event started evaluate/after-train on that encoder, which reports
    def evaluated():
        runs = [r for r in flow_runs(served, "evaluate/after-train")
                if str(model_dir) in r.parameters.get("checkpoint", "")]
        return runs[0] if runs and runs[0].state.is_final() else None

    eval_run = wait_for(evaluated, 600, "evaluate/after-train to finish", interval=2)
    assert eval_run.state.is_completed(), eval_run.state.message
    assert eval_run.created >= train_run.created
    assert (served.data / "reports" / f"{release}-tiny-linear" / "report.md").exists()


def _flow_run_processes(flow_run_id) -> list[int]:
    """Pids of the processes the runner started for ``flow_run_id`` (their PREFECT__FLOW_RUN_ID)."""
    needle = f"PREFECT__FLOW_RUN_ID={flow_run_id}".encode()
    pids = []
    for env in Path("/proc").glob("[0-9]*/environ"):
        try:
            if needle in env.read_bytes().split(b"\0"):
                pids.append(int(env.parent.name))
        except OSError:  # gone, or not ours
            continue
    return pids


def _kill_run_after_its_first_part(server: PrefectServer, release: str, store: Path) -> None:
    """SIGKILL the curate run of ``release`` once its first index part is committed (mid-tiling)."""
    run = wait_for(lambda: _run_by_release(server, "curate/region", "release", release), 120,
                   f"the curate run of {release}", interval=0.5)
    pids = wait_for(lambda: _flow_run_processes(run.id), 300, f"the process of flow run {run.id}")
    wait_for(lambda: list((store / "index" / "patches").glob("*/part-*.parquet")), 600,
             f"a first index part in {store}", interval=0.1)
    assert os.getpid() not in pids
    for pid in pids:
        os.kill(pid, signal.SIGKILL)


def test_a_killed_curate_run_rerun_keeps_its_finished_cells(served):
    release = "crash-demo"
    store = served.data / "releases" / f"{release}.zarr"
    cells = json.dumps(_plan_cells(served, SOME_CELLS))
    params = ["--param", f"release={release}", "--param", f"cells={cells}"]
    started = run_prefect(served, "deployment", "run", "curate/region", *params)
    assert started.returncode == 0, started.stdout + started.stderr

    _kill_run_after_its_first_part(served, release, store)
    def final_run():
        run = _run_by_release(served, "curate/region", "release", release)
        return run if run is not None and run.state.is_final() else None

    crashed = wait_for(final_run, 120, "the killed curate run to be marked final", interval=1)
    assert crashed.state.is_crashed() or crashed.state.is_failed(), crashed.state
    assert not (store / "release.json").exists()
    before = _index(store)
    done_cells = set(before["cell_id"])
    assert len(done_cells) < SOME_CELLS

    rerun = run_prefect(served, "deployment", "run", "curate/region", "--watch", "--watch-timeout", "900",
                        *params, timeout=960)
    assert rerun.returncode == 0, rerun.stdout + rerun.stderr
    after = _index(store)
    assert set(after["cell_id"]) == set(json.loads(cells))
    assert 0 < len(before) < len(after)
    # the finished cells were not redone: same rows, same bytes
    kept = after[after["patch_id"].isin(before["patch_id"])].reset_index(drop=True)
    pd.testing.assert_frame_equal(kept, before)
    latest = flow_runs(served, "curate/region")[0]
    assert latest.parameters["release"] == release and latest.state.is_completed()
    text = _artifacts(served, latest.id)[f"release-{release}"].data
    summary = json.loads(text.split("```json\n", 1)[1].split("```", 1)[0])
    assert summary["patches_written"] == len(after) - len(before)  # only the missing patches
