"""A search that finds nothing says why (the region misses the catalogue's coverage, perhaps with
lat/lon swapped, or the period does), and a region file of several features is their union or,
with ``--feature NAME``, one of them (issue 20, item 8)."""

from __future__ import annotations

import json

import pytest
from discovery_helpers import run

from spectralearth_data.catalog import load_region, parse_region
from spectralearth_data.errors import CatalogError
from spectralearth_data.sources import search


def _box(x0, y0, x1, y1):
    return {"type": "Polygon", "coordinates": [[[x0, y0], [x1, y0], [x1, y1], [x0, y1], [x0, y0]]]}


def _item(item_id, box):
    return {"type": "Feature", "stac_version": "1.0.0", "id": item_id, "collection": "s2", "geometry": _box(*box),
            "properties": {"datetime": "2023-06-01T10:00:00Z", "eo:cloud_cover": 5.0},
            "assets": {"B04": {"href": f"https://example.invalid/{item_id}/B04.tif"}}}


@pytest.fixture
def catalog(tmp_path):
    """Two scenes in the Beauce (lon 1..2 and 3..4, lat 48..49)."""
    path = tmp_path / "items.json"
    items = [_item("west", (1.0, 48.0, 2.0, 49.0)), _item("east", (3.0, 48.0, 4.0, 49.0))]
    path.write_text(json.dumps({"type": "FeatureCollection", "features": items}))
    return path


def _feature(name, box):
    return {"type": "Feature", "properties": {"name": name}, "geometry": _box(*box)}


@pytest.fixture
def two_fields(tmp_path):
    path = tmp_path / "fields.geojson"
    path.write_text(json.dumps({"type": "FeatureCollection", "features": [
        _feature("field-a", (1.2, 48.2, 1.4, 48.4)), _feature("field-b", (3.2, 48.2, 3.4, 48.4))]}))
    return path


def test_swapped_lat_lon_region_says_it_misses_the_coverage(monkeypatch, capsys, tmp_path, catalog):
    region = tmp_path / "swapped.geojson"
    region.write_text(json.dumps(_feature("beauce", (48.2, 1.2, 48.4, 1.4))))  # lat, lon
    out = tmp_path / "scenes.parquet"
    code, _, err = run(monkeypatch, capsys, "search", "--source", f"local:{catalog}", "--region", str(region),
                       "-o", str(out))
    assert code == 2
    (line,) = err.strip().splitlines()
    assert "does not overlap the catalogue's coverage" in line and "lat/lon swapped" in line
    assert not out.exists()
    assert len(search(f"local:{catalog}", str(region))) == 0  # the library still returns an empty table (flows)


def test_period_without_scenes_names_the_period(monkeypatch, capsys, tmp_path, catalog, two_fields):
    code, _, err = run(monkeypatch, capsys, "search", "--source", f"local:{catalog}", "--region", str(two_fields),
                       "--start", "2020-01-01", "--end", "2020-02-01", "-o", str(tmp_path / "s.parquet"))
    assert code == 2
    assert "no scene of it falls in the period (2023-06-01 to 2023-06-01)" in err


def test_remote_source_empty_search_explains_coverage(tmp_path):
    from spectralearth_data.sources import explain_no_scenes

    path = tmp_path / "r.geojson"
    path.write_text(json.dumps(_feature("beauce", (48.2, 1.2, 48.4, 1.4))))
    region = parse_region(path)
    msg = explain_no_scenes("planetary-computer", region, "2023-01-01", "2023-02-01", ["s2"])
    assert "does not overlap the catalogue's coverage for that period" in msg and "lon, lat" in msg
    assert "\n" not in msg


def test_several_features_are_their_union(monkeypatch, capsys, tmp_path, catalog, two_fields):
    region = parse_region(two_fields)
    assert region.shape.geom_type == "MultiPolygon"
    assert region.shape.area == pytest.approx(2 * 0.2 * 0.2)
    out = tmp_path / "scenes.parquet"
    code, stdout, _ = run(monkeypatch, capsys, "search", "--source", f"local:{catalog}", "--region",
                          str(two_fields), "-o", str(out))
    assert code == 0 and stdout.startswith("2 scenes")


def test_feature_option_picks_one_feature(monkeypatch, capsys, tmp_path, catalog, two_fields):
    out = tmp_path / "scenes.parquet"
    code, stdout, _ = run(monkeypatch, capsys, "search", "--source", f"local:{catalog}", "--region",
                          str(two_fields), "--feature", "field-b", "-o", str(out))
    assert code == 0 and stdout.startswith("1 scenes")
    assert load_region(two_fields, feature="field-a").shape.bounds == (1.2, 48.2, 1.4, 48.4)
    with pytest.raises(CatalogError, match="no feature named 'field-c'; features: field-a, field-b"):
        load_region(two_fields, feature="field-c")
