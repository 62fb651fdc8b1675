"""Flow parameters are checked against the real catalog before any work (no server needed)."""

from __future__ import annotations


import pytest

from flows.curate import chunk_cells
from flows.params import ParameterError, check_curate, default_release_id


def test_demo_defaults_resolve_from_the_region_file():
    req = check_curate("demo")
    assert (req.start, req.end) == ("2024-05-01", "2024-09-30")  # the region's suggested period
    assert req.sources == ("demo",)
    assert req.release_id == "demo-960m"
    assert req.sensors is None and req.cells is None


@pytest.mark.parametrize(
    "kwargs, message",
    [
        pytest.param({"region": "atlantis"}, r"region: unknown region 'atlantis'; known regions: .*demo", id="unknown-region"),
        pytest.param({"sensors": ["enmap", "hyperion9"]}, r"sensors: unknown product 'hyperion9'", id="unknown-sensor"),
        pytest.param({"anchors": ["modis"]}, r"anchors: unknown product 'modis'", id="unknown-anchor"),
        pytest.param({"start": "2024-09-01", "end": "2024-05-01"}, r"start=2024-09-01 is after end=2024-05-01", id="reversed-dates"),
        pytest.param({"start": "yesterday"}, r"start='yesterday' is not a date; use YYYY-MM-DD", id="bad-date"),
        pytest.param({"source": "copernicus-hub"}, r"source: unknown source 'copernicus-hub'; known sources: ", id="unknown-source"),
        pytest.param({"sensors": ["s2"], "cell_m": 965}, r"cell_m: cell size 965 m is not a multiple", id="cell-not-multiple"),
        pytest.param({"cell_m": 0}, r"cell_m=0: expected a positive", id="cell-zero"),
        pytest.param({"release": "../escape"}, r"release='../escape': use letters", id="release-path"),
        pytest.param({"max_cloud": 120}, r"max_cloud=120", id="cloud-over-100"),
        pytest.param({"window_days": {"s2": -3}}, r"window_days: windows must be > 0", id="negative-window"),
        pytest.param({"cells": ["32633_99999_99999"]}, r"cells: 32633_99999_99999 not in region 'demo' at cell_m=960",
                     id="cell-outside-region"),
        pytest.param({"cells": ["32633_00379_06047"], "cell_m": 3840}, r"cells: 32633_00379_06047 not in region 'demo' "
                     r"at cell_m=3840", id="cell-of-another-size"),
        pytest.param({"cells": ["33U_1_2"]}, r"cells: malformed cell id '33U_1_2'", id="cell-malformed"),
    ],
)
def test_bad_parameters_name_the_parameter(kwargs, message):
    args = {"region": "demo", **kwargs}
    with pytest.raises(ParameterError, match=message):
        check_curate(**args)


def test_local_sources_and_lists_are_accepted():
    req = check_curate("demo", source=["demo", "local:scenes/catalog.json"], sensors=["enmap", "s2"])
    assert req.sources == ("demo", "local:scenes/catalog.json")
    assert req.sensors == ("enmap", "s2")


def test_release_ids_are_stable_per_region():
    assert default_release_id("demo", 960) == "demo-960m"
    assert default_release_id("/data/regions/my farm.geojson", 3840) == "my-farm-3840m"


def test_chunks_cover_every_cell_once_in_order():
    cells = [f"32633_{i:05d}_00001" for i in range(10)]
    chunks = chunk_cells(cells, 4)
    assert [len(c) for c in chunks] == [4, 4, 2]
    assert [c for chunk in chunks for c in chunk] == cells
    with pytest.raises(ValueError):
        chunk_cells(cells, 0)


def test_the_evaluate_flow_checks_heads_against_the_harness_registry(monkeypatch):
    from flows.evaluate import check_head
    from spectralearth_model.evaluate import heads

    for head in heads.HEADS:
        check_head(head)
    with pytest.raises(ParameterError, match="head='mlp': expected one of linear, knn, upernet"):
        check_head("mlp")
    monkeypatch.setattr(heads, "HEADS", ("linear",))  # the flow has no list of its own
    with pytest.raises(ParameterError, match="expected one of linear$"):
        check_head("knn")
