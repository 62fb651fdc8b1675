"""The curate flow (in this process, on the session's real Prefect server) stops with a reason
before tiling when the plan gives it nothing to do (issue 20, items 3 and 4)."""

from __future__ import annotations

from prefect_helpers import task_runs

from flows.curate import curate

#: A 960 m cell inside the demo region but in no hyperspectral scene's footprint (not in the plan).
IN_REGION_NOT_IN_PLAN = "32633_00381_06046"


def _tasks(server, state) -> set[str]:
    return {r.name.split("-")[0] for r in task_runs(server, state.state_details.flow_run_id)}


def test_cells_that_are_not_in_the_plan_stop_the_run_before_tiling(prefect_api):
    release = "cells-not-in-plan"
    state = curate(release=release, cells=[IN_REGION_NOT_IN_PLAN], return_state=True)
    assert state.is_failed()
    assert f"cells: {IN_REGION_NOT_IN_PLAN} not in the plan of 'demo'" in state.message, state.message
    assert "give cell ids from the plan" in state.message
    assert "tile" not in _tasks(prefect_api, state) and "validate" not in _tasks(prefect_api, state)
    assert not (prefect_api.data / "releases" / f"{release}.zarr").exists()


def test_cells_larger_than_the_scenes_say_so_and_name_a_cell_size(prefect_api):
    release = "cells-too-large"
    state = curate(release=release, cell_m=3840, return_state=True)
    assert state.is_failed()
    assert "no 3840 m cell is fully covered" in state.message, state.message
    assert "use smaller cells, e.g. cell_m=1920" in state.message
    assert "tile" not in _tasks(prefect_api, state)
    assert not (prefect_api.data / "releases" / f"{release}.zarr").exists()
