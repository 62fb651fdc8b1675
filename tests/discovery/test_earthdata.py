"""earthaccess against a local CMR-compatible server replaying the recorded EMIT CMR response.

The records are the real response of ``earthaccess.search_data(short_name="EMITL2ARFL", ...)``
(tests/data/fixtures/emit/emit_l2a_umm_3granules.json, 3 granules off Santa Barbara): served
unchanged and in their recorded order, data links included (RFL, MASK, RFLUNCERT).
"""

from __future__ import annotations

import json
import shutil

import pytest
import shapely.geometry
from discovery_helpers import CMR_RECORDS, REPO, write_region

from spectralearth_data.catalog import load_sensor
from spectralearth_data.errors import SourceError
from spectralearth_data.sources import search
from spectralearth_data.sources.earthdata import granule_to_item
from tests.servers import CmrReplayServer, FaultProxy

#: The recording's search box and days (MANIFEST.md section 9).
SANTA_BARBARA = (-121.0, 34.0, -119.8, 35.1)
START, END = "2023-04-20", "2023-04-25"
RECORDED = json.loads(CMR_RECORDS.read_text())
IDS = [g["umm"]["GranuleUR"] for g in RECORDED]


@pytest.fixture
def cmr():
    with CmrReplayServer(json.loads(CMR_RECORDS.read_text())) as server:
        yield server


@pytest.fixture
def region(tmp_path):
    return write_region(tmp_path / "santa_barbara.geojson", SANTA_BARBARA)


def _data_links(granule: dict) -> list[str]:
    return [u["URL"] for u in granule["umm"]["RelatedUrls"] if u["Type"] == "GET DATA" and u["URL"].startswith("https")]


def test_the_recording_lists_mask_before_uncertainty():
    """Why position cannot name the assets: CMR's order is RFL, MASK, RFLUNCERT (not the CMR-STAC
    item's data, data1 = RFLUNCERT, data2 = MASK)."""
    for g in RECORDED:
        names = [u.rsplit("/", 1)[-1].split("_")[2] for u in _data_links(g)]
        assert names == ["RFL", "MASK", "RFLUNCERT"], g["umm"]["GranuleUR"]
        assert _data_links(g) == g["links"]  # earthaccess data_links() gave the same order


@pytest.mark.parametrize("index", range(3), ids=IDS)
def test_granule_to_item_keys_each_recorded_file_by_name(index):
    granule = RECORDED[index]
    patterns = load_sensor("emit").provider("earthdata-cmr").asset_patterns
    item = granule_to_item(granule, patterns)
    rfl, mask, unc = _data_links(granule)
    assert "_RFL_" in rfl and "_MASK_" in mask and "_RFLUNCERT_" in unc
    assets = item["assets"]
    assert {k: a["href"] for k, a in assets.items() if "data" in a["roles"]} == {
        "data": rfl, "mask": mask, "uncertainty": unc}
    assert assets["browse"]["href"].endswith(granule["umm"]["GranuleUR"] + ".png")
    assert item["id"] == granule["umm"]["GranuleUR"] and item["collection"] == "EMITL2ARFL"
    assert item["properties"]["eo:cloud_cover"] == granule["umm"]["CloudCover"]


def test_catalog_names_the_qa_and_data_assets_by_those_keys():
    emit = load_sensor("emit")
    patterns = emit.provider("earthdata-cmr").asset_patterns
    assert emit.data_asset == "data" and emit.qa.asset == "mask"
    assert set(patterns) == {"data", "mask", "uncertainty"}


def test_emit_search_serves_the_recorded_granules(cmr, region, fast_retry):
    scenes = search("earthdata-cmr", region, START, END, ["emit"], url=cmr.search_url, retry=fast_retry)
    assert list(scenes["scene_id"]) == IDS
    assert set(scenes["sensor"]) == {"emit"} and set(scenes["source"]) == {"earthdata-cmr"}
    assert set(scenes["collection"]) == {"EMITL2ARFL"}
    assert list(scenes["cloud_cover"]) == [17, 40, 83]
    assert str(scenes.iloc[0]["datetime"]) == "2023-04-22 19:59:12+00:00"
    for (_, row), granule in zip(scenes.iterrows(), RECORDED):
        assets = json.loads(row["assets"])
        rfl, mask, unc = _data_links(granule)
        assert (assets["data"], assets["mask"], assets["uncertainty"]) == (rfl, mask, unc)
        assert not {"data1", "data2"} & set(assets)
        ring = [(p["Longitude"], p["Latitude"]) for p in
                granule["umm"]["SpatialExtent"]["HorizontalSpatialDomain"]["Geometry"]["GPolygons"][0]["Boundary"]["Points"]]
        assert row["geometry"].symmetric_difference(shapely.geometry.Polygon(ring)).area < 1e-12
    query = cmr.requests[0]
    assert "short_name=EMITL2ARFL" in query and "provider=LPCLOUD" in query and "bounding_box" in query
    assert "version=001" in query


def test_search_is_pinned_to_the_catalog_collection_version(cmr, region, fast_retry, tmp_path, monkeypatch):
    """A catalog pinned to another version finds none of the recorded V001 granules."""
    root = tmp_path / "catalogs"
    shutil.copytree(REPO / "catalogs", root)
    yaml = root / "sensors" / "emit.yaml"
    text = yaml.read_text()
    assert text.count('version: "001"') == 1
    yaml.write_text(text.replace('version: "001"', 'version: "002"'))
    monkeypatch.setenv("SPECTRALEARTH_CATALOGS", str(root))
    assert len(search("earthdata-cmr", region, START, END, ["emit"], url=cmr.search_url, retry=fast_retry)) == 0
    assert "version=002" in cmr.requests[-1]


def test_cloud_period_and_region_filters(cmr, region, tmp_path, fast_retry):
    low = search("earthdata-cmr", region, START, END, ["emit"], max_cloud=20, url=cmr.search_url, retry=fast_retry)
    assert list(low["scene_id"]) == IDS[:1]
    assert "cloud_cover=0,20" in cmr.requests[-1]
    assert len(search("earthdata-cmr", region, "2023-05-01", "2023-06-01", ["emit"], url=cmr.search_url, retry=fast_retry)) == 0
    elsewhere = write_region(tmp_path / "x.geojson", (10.0, 50.0, 11.0, 51.0))
    assert len(search("earthdata-cmr", elsewhere, START, END, ["emit"], url=cmr.search_url, retry=fast_retry)) == 0


def test_cmr_url_from_environment(cmr, region, fast_retry, monkeypatch):
    monkeypatch.setenv("SPECTRALEARTH_CMR_URL", cmr.search_url)
    assert len(search("earthdata-cmr", region, START, END, sensors=["emit"], retry=fast_retry)) == 3


def test_cmr_500_and_429_then_success(cmr, region, fast_retry):
    with FaultProxy(cmr.url, faults=[500, (429, {"Retry-After": "0"})]) as proxy:
        scenes = search("earthdata-cmr", region, START, END, sensors=["emit"], url=proxy.url + "/search", retry=fast_retry)
    assert len(scenes) == 3
    assert [r.status for r in proxy.log] == [500, 429, 200]


def test_cmr_always_failing_names_the_source(cmr, region, fast_retry):
    with FaultProxy(cmr.url, always=500) as proxy, \
            pytest.raises(SourceError, match=r"source 'earthdata-cmr' \(http://127\.0\.0\.1:\d+/search/\): unreachable"):
        search("earthdata-cmr", region, sensors=["emit"], url=proxy.url + "/search", retry=fast_retry)
