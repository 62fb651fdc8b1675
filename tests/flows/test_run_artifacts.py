"""What a curate run shows in the Prefect UI (issue 20, item 9), on the session's real server:
run names made of the release and chunk, a progress artifact per chunk, thumbnails rather than
full-size data URLs, the failure reason in the run's state, and a rerun that adds nothing neither
publishes again nor announces the release again."""

from __future__ import annotations

import base64
import json

import pytest

from prefect_helpers import task_runs

from flows.curate import curate

#: Two cells of the demo plan at 960 m (any two of the plan would do).
CELLS = ["32633_00381_06050", "32633_00382_06050"]


def _client(server):
    from prefect import get_client

    return get_client(sync_client=True)


def _flow_run(server, flow_run_id):
    with _client(server) as client:
        return client.read_flow_run(flow_run_id)


def _sub_runs(server, parent_id) -> list:
    from prefect.client.schemas.filters import FlowRunFilter, FlowRunFilterParentFlowRunId

    with _client(server) as client:
        return client.read_flow_runs(flow_run_filter=FlowRunFilter(
            parent_flow_run_id=FlowRunFilterParentFlowRunId(any_=[parent_id])))


def _artifacts(server, flow_run_ids) -> dict:
    from prefect.client.schemas.filters import ArtifactFilter, ArtifactFilterFlowRunId

    with _client(server) as client:
        arts = client.read_artifacts(artifact_filter=ArtifactFilter(flow_run_id=ArtifactFilterFlowRunId(any_=list(flow_run_ids))))
    return {a.key: a for a in arts if a.key}


def test_a_curate_run_is_named_shows_progress_and_thumbnails_and_a_rerun_adds_nothing(prefect_api):
    release = "ui-names"
    state = curate(release=release, cells=CELLS, return_state=True)
    assert state.is_completed(), state.message
    run_id = state.state_details.flow_run_id
    assert _flow_run(prefect_api, run_id).name == f"curate-{release}-2cells"
    subs = _sub_runs(prefect_api, run_id)
    assert [s.name for s in subs] == [f"tile-{release}-1chunks"]
    tile_tasks = [r.name for r in task_runs(prefect_api, subs[0].id)]
    assert tile_tasks == [f"tile-{release}-chunk0001of0001"]

    arts = _artifacts(prefect_api, [run_id, subs[0].id])
    assert arts[f"tiling-{release}"].type == "progress" and float(arts[f"tiling-{release}"].data) == 100.0
    cover = arts[f"coverage-{release}"]
    assert cover.type == "image" and "full size:" in cover.description and "coverage.png" in cover.description
    url = json.loads(cover.data) if cover.data.startswith('"') else cover.data
    png = base64.b64decode(url.split(",", 1)[1])
    assert len(png) <= 96_000
    from io import BytesIO

    from PIL import Image

    assert max(Image.open(BytesIO(png)).size) <= 480

    store = prefect_api.data / "releases" / f"{release}.zarr"
    manifest = (store / "release.json").read_bytes()
    again = curate(release=release, cells=CELLS, return_state=True)
    assert again.is_completed(), again.message
    names = {r.name.split("-")[0] for r in task_runs(prefect_api, again.state_details.flow_run_id)}
    assert "publish" not in names and "validate" in names  # no publish task: no release event either
    assert (store / "release.json").read_bytes() == manifest
    assert again.result().patches_written == 0


def test_the_reason_a_tiling_chunk_failed_is_in_the_run_state(prefect_api):
    release = "ui-failure"
    store = prefect_api.data / "releases" / f"{release}.zarr"
    store.mkdir(parents=True)
    (store / "notes.txt").write_text("not a release")  # a folder that is not a release store
    state = curate(release=release, cells=CELLS[:1], return_state=True)
    assert state.is_failed()
    assert "not a release store" in state.message, state.message


@pytest.mark.slow  # a curate and a training run: about a minute on 2 cores
def test_a_train_run_is_named_after_its_release_and_shows_its_plot_and_summary(prefect_api, tmp_path):
    from flows.train import train

    release = "ui-train"
    assert curate(release=release, cells=CELLS[:1], return_state=True).is_completed()
    store = prefect_api.data / "releases" / f"{release}.zarr"
    state = train(release=str(store), steps=2, out=str(tmp_path / "run"), return_state=True)
    assert state.is_completed(), state.message
    run_id = state.state_details.flow_run_id
    assert _flow_run(prefect_api, run_id).name == f"train-{release}-tiny"
    arts = _artifacts(prefect_api, [run_id])
    assert arts[f"metrics-{release}-tiny"].type == "image"
    rows = {r["field"]: r["value"] for r in json.loads(arts[f"training-{release}-tiny"].data)}
    assert rows["encoder"].endswith("encoder.pt")
