"""``rebuild`` (issue 19, items 2-3) in this process on the session's real Prefect server, on the
SYNTHESIZED demo scenes: the region is built partition by partition (two at a time, each into its
own batch) into one release version."""

from __future__ import annotations

import json

import pytest
from prefect_helpers import task_runs

from flows.rebuild import rebuild, source_limit
from spectralearth_data import open_release

#: Narrow latitude bands, so the demo region (a few km across) spans more than one partition.
BAND_DEG = 0.1


def _partitions_table(server, flow_run_id) -> list[dict]:
    from prefect import get_client
    from prefect.client.schemas.filters import ArtifactFilter, ArtifactFilterFlowRunId

    with get_client(sync_client=True) as client:
        arts = client.read_artifacts(artifact_filter=ArtifactFilter(flow_run_id=ArtifactFilterFlowRunId(any_=[flow_run_id])))
    tables = [a for a in arts if a.key == "partitions-demo"]
    return json.loads(tables[0].data)


@pytest.mark.timeout(600)
def test_a_rebuild_builds_partitions_concurrently_into_one_version(prefect_api):
    first = rebuild(regions=["demo"], cell_m=960, end="2024-06-30", partition_band_deg=BAND_DEG, return_state=True)
    assert first.is_completed(), first.message
    [res] = first.result()
    assert res.version == "v000001" and res.patches_written > 0
    parts = [p for p in res.partitions if p.status == "done"]
    assert len(res.partitions) >= 2 and parts and not [p for p in res.partitions if p.status == "failed"]
    assert sum(p.patches for p in parts) == res.patches_written
    table = _partitions_table(prefect_api, first.state_details.flow_run_id)
    assert {r["partition"] for r in table} == {p.partition for p in res.partitions}
    names = [r.name for r in task_runs(prefect_api, first.state_details.flow_run_id)]
    assert any(n.startswith(f"partition-{res.release_id}-") for n in names)
    rel = open_release(res.store)
    assert rel.version == "v000001" and len(rel.index) == res.patches_written, (res.partitions, rel.index.groupby("batch").size())
    # every partition tiled into its own batch
    assert rel.index["batch"].str.split("-").str[0].nunique() == len(parts)



def test_each_source_has_a_prefect_concurrency_limit_named_after_it():
    assert source_limit("earth-search") == "spectralearth-source-earth-search"
    assert source_limit("local:/data/catalog.json") == "spectralearth-source-local"
