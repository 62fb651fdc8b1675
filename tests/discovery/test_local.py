"""Local sources: an ItemCollection, a static catalog, a stac-geoparquet file (all holding the real
recorded items) and a folder of EnMAP orders; the demo source's missing-catalog error."""

from __future__ import annotations

import json
import shutil

import pytest
from discovery_helpers import COLORADO, PC_ITEMS, REPO, write_region
from pyproj import Transformer

from spectralearth_data.errors import CatalogError, SourceError
from spectralearth_data.schema import SCENE_COLUMNS
from spectralearth_data.sources import search

COLORADO_BOX = (-106.5, 39.0, -102.5, 41.5)
TASMANIA = (146.0, -45.0, 152.0, -37.0)


def colorado_items():
    return [json.loads(p.read_text()) for p in sorted(COLORADO.glob("*.json"))]


def landsat_items():
    return json.loads((PC_ITEMS / "landsat-c2-l2_4items.geojson").read_text())["features"]


@pytest.fixture
def colorado(tmp_path):
    return write_region(tmp_path / "colorado.geojson", COLORADO_BOX)


@pytest.fixture
def item_collection(tmp_path):
    path = tmp_path / "items.json"
    path.write_text(json.dumps({"type": "FeatureCollection", "features": colorado_items()}))
    return path


def test_item_collection(item_collection, colorado):
    scenes = search(f"local:{item_collection}", colorado)
    assert tuple(scenes.columns) == SCENE_COLUMNS
    assert scenes.groupby("sensor")["scene_id"].first().to_dict() == {
        "landsat": "LC08_L2SP_033032_20231008_02_T1", "lst": "LC08_L2SP_033032_20231008_02_T1",
        "s2": "S2A_13TDE_20231008_0_L2A"}
    assert (scenes["source"] == "local").all() and set(scenes["epsg"]) == {32613}
    only_s2 = search(f"local:{item_collection}", colorado, sensors=["s2"], max_cloud=0.01)
    assert list(only_s2["scene_id"]) == ["S2A_13TDE_20231008_0_L2A"]
    assert len(search(f"local:{item_collection}", colorado, "2023-10-09", "2023-12-31")) == 0


def test_item_without_geometry_or_assets_is_skipped_others_kept(tmp_path, colorado, caplog):
    s2, landsat = sorted(colorado_items(), key=lambda i: i["collection"], reverse=True)
    broken = [{**s2, "id": "no-geometry", "geometry": None}, {**s2, "id": "no-assets", "assets": {}}]
    path = tmp_path / "items.json"
    path.write_text(json.dumps({"type": "FeatureCollection", "features": [s2, landsat, *broken]}))
    scenes = search(f"local:{path}", colorado, sensors=["s2", "landsat"])
    assert sorted(scenes["scene_id"]) == ["LC08_L2SP_033032_20231008_02_T1", "S2A_13TDE_20231008_0_L2A"]
    assert "skipped 2 items without footprint, time or assets" in caplog.text


def test_static_catalog_with_relative_hrefs(tmp_path):
    import pystac

    root = tmp_path / "catalog"
    cat = pystac.Catalog(id="test", description="real PC Landsat items")
    for d in landsat_items():
        d = {**d, "links": []}
        d["assets"] = {**d["assets"], "local_copy": {"href": "./lwir11.tif", "roles": ["data"]}}
        cat.add_item(pystac.Item.from_dict(d))
    cat.normalize_hrefs(str(root))
    cat.save(catalog_type=pystac.CatalogType.SELF_CONTAINED)
    region = write_region(tmp_path / "tas.geojson", TASMANIA)
    scenes = search(f"local:{root / 'catalog.json'}", region, sensors=["landsat"], max_cloud=50)
    assert sorted(scenes["cloud_cover"].round(1)) == [25.4, 25.5, 42.9]
    hrefs = [json.loads(a)["local_copy"] for a in scenes["assets"]]
    assert all(h.startswith(str(root)) and h.endswith("lwir11.tif") for h in hrefs)
    assert search(f"local:{root}", region, sensors=["landsat"]).shape[0] == 4  # the folder works too


def test_stac_geoparquet_gives_the_same_scenes_as_json(tmp_path, colorado, item_collection):
    from stac_geoparquet.arrow import parse_stac_items_to_arrow, to_parquet

    path = tmp_path / "items.parquet"
    to_parquet(parse_stac_items_to_arrow(colorado_items()), path)
    from_parquet = search(f"local:{path}", colorado)
    from_json = search(f"local:{item_collection}", colorado)
    cols = ["scene_id", "sensor", "datetime", "cloud_cover", "assets", "epsg"]
    assert from_parquet[cols].equals(from_json[cols])
    assert from_parquet.geometry.geom_equals_exact(from_json.geometry, 1e-9).all()


_METADATA = """<?xml version="1.0" encoding="UTF-8"?>
<level_X>
  <metadata><name>{name}-METADATA.XML</name></metadata>
  <base>
    <level>L2A</level>
    <temporalCoverage><startTime>2022-07-24T10:45:26.000000Z</startTime></temporalCoverage>
    <spatialCoverage><boundingPolygon>{points}</boundingPolygon></spatialCoverage>
  </base>
  <product><image><cloudCover>3</cloudCover></image></product>
</level_X>
"""


def write_enmap_order(folder, name="ENMAP01-____L2A-DT0000001867_20220724T104526Z_008_V010302_20230628T165614Z"):
    """An EnMAP L2A order folder: a METADATA.XML in DLR's ``level_X`` layout (written here; its
    footprint and time are those of the real Potsdam scene in tests/data/fixtures/enmap) and a real
    EnMAP tile standing in for the spectral image."""
    folder.mkdir(parents=True)
    inv = Transformer.from_crs(32633, 4326, always_xy=True)
    x0, y1 = 362175.0, 5809965.0  # the scene's top-left corner, 330 x 200 px of 30 m
    x1, y0 = x0 + 330 * 30, y1 - 200 * 30
    corners = {"upper_left": (x0, y1), "upper_right": (x1, y1), "lower_right": (x1, y0), "lower_left": (x0, y0)}
    points = "".join(
        f"<point><frame>{k}</frame><latitude>{inv.transform(*xy)[1]}</latitude><longitude>{inv.transform(*xy)[0]}</longitude></point>"
        for k, xy in corners.items())
    (folder / f"{name}-METADATA.XML").write_text(_METADATA.format(name=name, points=points))
    shutil.copy(REPO / "spectralearth_model/evaluate/data/enmap_potsdam/images/enmap_potsdam_tile_128_0.tif", folder / f"{name}-SPECTRAL_IMAGE.TIF")
    return name


def test_enmap_order_folder(tmp_path):
    name = write_enmap_order(tmp_path / "orders" / "order1")
    region = write_region(tmp_path / "potsdam.geojson", (12.8, 52.2, 13.3, 52.6))
    scenes = search(f"local:{tmp_path / 'orders'}", region)
    assert list(scenes["scene_id"]) == [name] and list(scenes["sensor"]) == ["enmap"]
    row = scenes.iloc[0]
    assert str(row["datetime"]) == "2022-07-24 10:45:26+00:00" and row["cloud_cover"] == 3.0
    assets = json.loads(row["assets"])
    assert set(assets) == {"spectral_image", "metadata"} and assets["spectral_image"].endswith("-SPECTRAL_IMAGE.TIF")
    lon0, lat0, lon1, lat1 = row["geometry"].bounds
    assert 12.95 < lon0 < lon1 < 13.15 and 52.35 < lat0 < lat1 < 52.45  # Potsdam


def test_broken_local_inputs_name_the_file(tmp_path, colorado):
    empty = tmp_path / "empty"
    empty.mkdir()
    with pytest.raises(SourceError, match=r"empty: no \*METADATA.XML \(EnMAP/DESIS order\) found"):
        search(f"local:{empty}", colorado)
    bad_xml = tmp_path / "bad" / "X-METADATA.XML"
    bad_xml.parent.mkdir()
    bad_xml.write_text("<level_X><base>")
    with pytest.raises(SourceError, match=r"X-METADATA.XML: not readable XML"):
        search(f"local:{bad_xml.parent}", colorado)
    not_stac = tmp_path / "x.json"
    not_stac.write_text('{"type": "Topology"}')
    with pytest.raises(SourceError, match=r"x.json: type: expected a STAC Catalog, Collection, ItemCollection or Item, got 'Topology'"):
        search(f"local:{not_stac}", colorado)
    with pytest.raises(SourceError, match="no such file or folder"):
        search(f"local:{tmp_path / 'missing.json'}", colorado)
    with pytest.raises(SourceError, match="demo source: .*catalog.json not found; run `spectralearth demo-scenes"):
        search("demo", colorado, demo_dir=tmp_path / "nodemo")


@pytest.mark.parametrize("content, message", [
    pytest.param("{not json", r"not valid JSON \(line 1", id="not-json"),
    pytest.param('{"type": "Feature", "geometry": {"type": "Point", "coordinates": [1, 2]}}',
                 r"geometry.type: expected Polygon or MultiPolygon, got 'Point'", id="point"),
    pytest.param('{"type": "Polygon", "coordinates": [[[500, 0], [501, 0], [501, 1], [500, 0]]]}',
                 "outside lon/lat range", id="projected-coordinates"),
])
def test_malformed_region_file(tmp_path, item_collection, content, message):
    region = tmp_path / "region.geojson"
    region.write_text(content)
    with pytest.raises(CatalogError, match=message):
        search(f"local:{item_collection}", str(region))
