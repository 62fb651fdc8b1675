"""earthaccess against a local CMR-compatible server replaying the recorded EMIT granules."""

from __future__ import annotations

import json

import pytest
import shapely.geometry
from discovery_helpers import CMR_RECORDS, EMIT_ITEMS, write_region

from spectralearth_data.errors import SourceError
from spectralearth_data.sources import search
from tests.servers import CmrReplayServer, FaultProxy

OHIO = (-84.0, 40.0, -81.0, 42.0)


@pytest.fixture
def cmr():
    with CmrReplayServer(json.loads(CMR_RECORDS.read_text())) as server:
        yield server


@pytest.fixture
def ohio(tmp_path):
    return write_region(tmp_path / "ohio.geojson", OHIO)


def _recorded_l2a():
    return next(f for f in json.loads(EMIT_ITEMS.read_text())["features"] if f["collection"] == "C2408750690-LPCLOUD")


def test_emit_search_matches_the_recorded_item(cmr, ohio, fast_retry):
    scenes = search("earthdata-cmr", ohio, "2024-01-01", "2024-03-01", ["emit"], url=cmr.search_url, retry=fast_retry)
    item = _recorded_l2a()
    assert len(scenes) == 1
    row = scenes.iloc[0]
    assert row["scene_id"] == "EMIT_L2A_RFL_001_20240201T174151_2403212_032"
    assert row["sensor"] == "emit" and row["source"] == "earthdata-cmr" and row["collection"] == "EMITL2ARFL"
    assert row["cloud_cover"] == 31
    assert str(row["datetime"]) == "2024-02-01 17:41:51+00:00"
    assets = json.loads(row["assets"])
    assert {k: assets[k] for k in ("data", "data1", "data2")} == {k: item["assets"][k]["href"] for k in ("data", "data1", "data2")}
    assert row["geometry"].equals_exact(shapely.geometry.shape(item["geometry"]), 1e-9) or \
        row["geometry"].symmetric_difference(shapely.geometry.shape(item["geometry"])).area < 1e-12
    assert json.loads(row["properties"])["cmr:concept_id"] == "G2855238895-LPCLOUD"
    query = cmr.requests[0]
    assert "short_name=EMITL2ARFL" in query and "provider=LPCLOUD" in query and "bounding_box" in query


def test_cloud_period_and_region_filters(cmr, ohio, tmp_path, fast_retry):
    assert len(search("earthdata-cmr", ohio, sensors=["emit"], max_cloud=20, url=cmr.search_url, retry=fast_retry)) == 0
    assert "cloud_cover=0,20" in cmr.requests[-1]
    assert len(search("earthdata-cmr", ohio, "2024-03-01", "2024-04-01", ["emit"], url=cmr.search_url, retry=fast_retry)) == 0
    elsewhere = write_region(tmp_path / "x.geojson", (10.0, 50.0, 11.0, 51.0))
    assert len(search("earthdata-cmr", elsewhere, sensors=["emit"], url=cmr.search_url, retry=fast_retry)) == 0


def test_cmr_url_from_environment(cmr, ohio, fast_retry, monkeypatch):
    monkeypatch.setenv("SPECTRALEARTH_CMR_URL", cmr.search_url)
    assert len(search("earthdata-cmr", ohio, sensors=["emit"], retry=fast_retry)) == 1


def test_cmr_500_and_429_then_success(cmr, ohio, fast_retry):
    with FaultProxy(cmr.url, faults=[500, (429, {"Retry-After": "0"})]) as proxy:
        scenes = search("earthdata-cmr", ohio, sensors=["emit"], url=proxy.url + "/search", retry=fast_retry)
    assert len(scenes) == 1
    assert [r.status for r in proxy.log] == [500, 429, 200]


def test_cmr_always_failing_names_the_source(cmr, ohio, fast_retry):
    with FaultProxy(cmr.url, always=500) as proxy, \
            pytest.raises(SourceError, match=r"source 'earthdata-cmr' \(http://127\.0\.0\.1:\d+/search/\): unreachable"):
        search("earthdata-cmr", ohio, sensors=["emit"], url=proxy.url + "/search", retry=fast_retry)
