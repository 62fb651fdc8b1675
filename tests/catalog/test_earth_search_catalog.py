"""The Earth Search entries of the sensor catalog against the recorded Earth Search pages
(tests/data/fixtures/stac/earth_search/search_pages_20250731, 2025-07-31) and 2020 items."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from spectralearth_data.catalog import ProviderSpec, load_sensor
from spectralearth_data.errors import CatalogError

ES = Path(__file__).resolve().parents[1] / "data" / "fixtures" / "stac" / "earth_search"


def _recorded() -> list[dict]:
    return [f for n in (1, 2) for f in json.loads((ES / "search_pages_20250731" / f"page{n}.json").read_text())["features"]]


def _es(sensor: str) -> list[ProviderSpec]:
    return [p for p in load_sensor(sensor).providers if p.source == "earth-search"]


def test_collection_1_is_the_earth_search_default_for_s2():
    s2 = load_sensor("s2")
    assert s2.provider("earth-search").collection == "sentinel-2-c1-l2a"
    assert [p.collection for p in _es("s2")] == ["sentinel-2-c1-l2a", "sentinel-2-l2a"]
    assert s2.provider_for("earth-search", "sentinel-2-l2a").offset_applied_property == "earthsearch:boa_offset_applied"
    assert s2.provider_for("earth-search", "sentinel-2-c1-l2a").offset_applied_property is None
    assert s2.offset_applied_properties == ("earthsearch:boa_offset_applied",)


@pytest.mark.parametrize("collection", ["sentinel-2-c1-l2a", "sentinel-2-l2a"])
def test_asset_keys_and_encoding_match_the_recorded_items(collection):
    s2 = load_sensor("s2")
    p = s2.provider_for("earth-search", collection)
    items = [f for f in _recorded() if f["collection"] == collection]
    assert items
    for it in items:
        for b in s2.bands:
            rb = it["assets"][p.asset_map[b.asset]]["raster:bands"][0]
            # what the items list; for sentinel-2-l2a the flag overrides the offset (reader)
            assert (rb["scale"], rb["offset"], rb["nodata"], rb["data_type"]) == (b.scale, b.offset, b.nodata, b.dtype)
        assert p.asset_map[s2.qa.asset] in it["assets"]
        flag = it["properties"].get("earthsearch:boa_offset_applied")
        assert flag is (True if collection == "sentinel-2-l2a" else None)


def test_l1c_copies_are_not_an_s2_collection():
    l1c = {f["collection"] for f in _recorded() if f["id"].endswith("_L1C")}
    assert l1c == {"sentinel-2-l1c"}
    assert all(p.collection not in l1c for p in load_sensor("s2").providers)


def test_sentinel_1_grd_is_listed_as_unsupported_everywhere():
    s1 = load_sensor("s1")
    grd = [p for p in s1.providers if p.collection == "sentinel-1-grd"]
    assert {p.source for p in grd} == {"earth-search", "planetary-computer"}
    assert all(p.unsupported and "not gamma0" in p.unsupported for p in grd)
    assert s1.provider("planetary-computer").collection == "sentinel-1-rtc" and not s1.provider("planetary-computer").unsupported
    recorded = {f["collection"] for f in _recorded() if f["id"].startswith("S1")}
    assert recorded == {"sentinel-1-grd"}


def test_unknown_provider_field_is_rejected(tmp_path):
    from spectralearth_data.catalog import catalog_root, parse_sensor

    text = (catalog_root() / "sensors" / "s1.yaml").read_text()
    bad = tmp_path / "s1.yaml"
    bad.write_text(text.replace("unsupported:", "unsuported:", 1))
    with pytest.raises(CatalogError, match=r"s1.yaml: providers\.1\.unsuported"):
        parse_sensor(bad)
