"""Pure parsers on real recorded items (PC, Earth Search, NASA CMR-STAC)."""

from __future__ import annotations

import json
import math
from datetime import UTC, datetime

import pytest
from discovery_helpers import COLORADO, EMIT_ITEMS, FIX, PC_ITEMS

from spectralearth_data.catalog import load_sensor
from spectralearth_data.errors import SourceError
from spectralearth_data.schema import SCENE_COLUMNS, stac_epsg
from spectralearth_data.sources.base import (
    item_rows,
    matches_query,
    parse_epsg,
    parse_footprint,
    scenes_frame,
    to_utc,
    unsigned_href,
)


def _features(path):
    doc = json.loads(path.read_text())
    return doc["features"] if doc.get("type") == "FeatureCollection" else [doc]


def test_pc_sentinel2_item_becomes_one_scene_row():
    item = _features(PC_ITEMS / "sentinel-2-l2a_4items.geojson")[0]
    rows = item_rows(item, [load_sensor("s2")], "planetary-computer", "eo:cloud_cover")
    assert len(rows) == 1
    row = rows[0]
    assert row["scene_id"] == item["id"] and row["sensor"] == "s2"
    assert row["epsg"] == item["properties"]["proj:epsg"]
    assert row["cloud_cover"] == pytest.approx(item["properties"]["eo:cloud_cover"])
    assets = json.loads(row["assets"])
    assert {"B04", "B8A", "SCL"} <= set(assets)
    assert assets["B04"] == item["assets"]["B04"]["href"]
    assert row["datetime"].tzinfo is not None


def test_landsat_item_feeds_both_landsat_and_lst():
    item = _features(COLORADO / "landsat-c2-l2_LC08_L2SP_033032_20231008_02_T1.json")[0]
    rows = item_rows(item, [load_sensor("landsat"), load_sensor("lst")], "earth-search", "eo:cloud_cover")
    assert [r["sensor"] for r in rows] == ["landsat", "lst"]
    assert rows[0]["scene_id"] == rows[1]["scene_id"] == "LC08_L2SP_033032_20231008_02_T1"


def test_s1_grd_antimeridian_item_with_empty_polygon_part():
    item = _features(PC_ITEMS / "sentinel-1-grd_S1A_EW_GRDM_1SSH_20150129T081916.json")[0]
    assert item["geometry"]["coordinates"][0] == []  # the real item carries an empty part
    rows = item_rows(item, [load_sensor("s1")], "planetary-computer", None)
    assert len(rows) == 1
    geom = rows[0]["geometry"]
    assert geom.is_valid and geom.area > 0
    assert rows[0]["epsg"] is None  # GRD is in radar geometry: no proj:*
    assert math.isnan(rows[0]["cloud_cover"])


def test_unsplit_antimeridian_polygon_is_split():
    ring = [[179.0, -70.0], [-179.0, -70.0], [-179.0, -69.0], [179.0, -69.0], [179.0, -70.0]]
    geom = parse_footprint({"type": "Polygon", "coordinates": [ring]})
    assert geom.geom_type == "MultiPolygon"
    minx, _, maxx, _ = geom.bounds
    assert minx == pytest.approx(-180.0) and maxx == pytest.approx(180.0)
    assert geom.area == pytest.approx(2.0)


def test_emit_cmr_stac_item_has_no_epsg_and_data_assets():
    item = next(f for f in _features(EMIT_ITEMS) if f["collection"] == "C2408750690-LPCLOUD")
    rows = item_rows(item, [load_sensor("emit")], "local", "eo:cloud_cover")
    assert rows[0]["epsg"] is None and rows[0]["cloud_cover"] == 31
    assert set(json.loads(rows[0]["assets"])) >= {"data", "data1", "data2"}


def test_dlr_desis_item_with_null_proj_epsg_and_text_numbers():
    """Recorded DLR DESIS item: "proj:epsg": null beside "proj:code": "EPSG:32611", numbers as
    text ("desis:nodata": "-32768"), proj:* only on the `image` asset."""
    item = json.loads((FIX / "dlr/desis_l2a_search_3items.json").read_text())["features"][0]
    props = item["properties"]
    assert props["proj:epsg"] is None and props["desis:nodata"] == "-32768"
    rows = item_rows(item, [load_sensor("desis")], "dlr-geoservice", "eo:cloud_cover")
    assert rows[0]["epsg"] == 32611
    assert rows[0]["cloud_cover"] == pytest.approx(props["eo:cloud_cover"])
    assert json.loads(rows[0]["properties"])["desis:nodata"] == "-32768"  # kept as recorded
    assert set(json.loads(rows[0]["assets"])) == {"image", "quality", "quality2", "metadata", "overview", "thumbnail"}
    # with no item-level CRS at all, the one asset that states it (image) decides
    bare = {k: v for k, v in props.items() if not k.startswith("proj:")}
    assert parse_epsg(bare) is None and parse_epsg(bare, item["assets"]) == 32611


def test_dlr_enmap_item_text_numbers_and_int_cloud_cover():
    item = json.loads((FIX / "dlr/enmap_l2a_search_3items.json").read_text())["features"][0]
    props = item["properties"]
    assert props["raster:nodata"] == "null" and props["enmap:tileID"] == "33"
    rows = item_rows(item, [load_sensor("enmap")], "dlr-geoservice", "eo:cloud_cover")
    assert rows[0]["epsg"] == 32632 and rows[0]["cloud_cover"] == 0.0


@pytest.mark.parametrize(
    ("fields", "epsg"),
    [
        ({"proj:epsg": 32632}, 32632),
        ({"proj:epsg": None, "proj:code": "EPSG:32611"}, 32611),
        ({"proj:epsg": "32633"}, 32633),
        ({"proj:epsg": 32634.0}, 32634),
        ({"proj:epsg": "null", "proj:code": "epsg:32635"}, 32635),
        ({"proj:epsg": True}, None),
        ({"proj:code": "EPSG:not-a-code"}, None),
        ({"proj:code": "IAU_2015:30100"}, None),
        ({"proj:wkt2": "PROJCS[...]"}, None),
        ({}, None),
    ],
)
def test_stac_epsg_reads_proj_epsg_or_proj_code(fields, epsg):
    assert stac_epsg(fields) == epsg


@pytest.mark.parametrize("broken", ["no-geometry", "no-assets", "empty-geometry"])
def test_item_without_geometry_or_assets_is_skipped(broken):
    item = _features(PC_ITEMS / "sentinel-2-l2a_4items.geojson")[0]
    item = dict(item)
    if broken == "no-geometry":
        item["geometry"] = None
    elif broken == "no-assets":
        item["assets"] = {}
    else:
        item["geometry"] = {"type": "MultiPolygon", "coordinates": [[]]}
    assert item_rows(item, [load_sensor("s2")], "planetary-computer", "eo:cloud_cover") == []


def test_signed_hrefs_are_stored_unsigned():
    href = "https://sentinel2l2a01.blob.core.windows.net/sentinel2-l2/a/b/B04.tif"
    signed = href + "?st=2024-01-01T00%3A00%3A00Z&se=2024-01-02&sp=rl&sv=2021-06-08&sr=c&sig=AbC%2Fd"
    assert unsigned_href(signed) == href
    assert unsigned_href("https://x.org/a.tif?version=2") == "https://x.org/a.tif?version=2"
    item = _features(PC_ITEMS / "sentinel-2-l2a_4items.geojson")[0]
    item = {**item, "assets": {"B04": {**item["assets"]["B04"], "href": signed}}}
    row = item_rows(item, [load_sensor("s2")], "planetary-computer", "eo:cloud_cover")[0]
    assert "sig=" not in row["assets"] and "sig=" not in row["item"]


def test_scenes_frame_has_contract_columns_even_when_empty():
    empty = scenes_frame([])
    assert tuple(empty.columns) == SCENE_COLUMNS and len(empty) == 0 and empty.crs.to_epsg() == 4326


def test_query_evaluation_and_dates():
    props = {"platform": "landsat-9", "eo:cloud_cover": 25.4}
    assert matches_query(props, {"platform": {"in": ["landsat-8", "landsat-9"]}})
    assert not matches_query(props, {"eo:cloud_cover": {"lte": 20}})
    with pytest.raises(SourceError, match="unsupported operator 'like'"):
        matches_query(props, {"platform": {"like": "x"}})
    assert to_utc("2024-05-01") == datetime(2024, 5, 1, tzinfo=UTC)
    assert to_utc("2024-05-01", end=True).hour == 23
    with pytest.raises(SourceError, match="'01/05/2024': not an ISO date"):
        to_utc("01/05/2024")
