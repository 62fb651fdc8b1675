"""Discoverable (issue 18, items 7 and 8): publish writes a STAC Collection and stac-geoparquet
items that pystac validates, a Croissant description that mlcroissant loads and lists the patches
from, and a dataset card; a synthesized release says SYNTHESIZED in each, licences carry their
year, and no builder's local path is stored in any of them."""

from __future__ import annotations

import copy
import json

import pyarrow.parquet as pq
import pystac
import pystac.validation
import pytest
from release.publish_helpers import published_demo

from spectralearth_data.release import reader
from spectralearth_data.release.catalogue import EO_EXTENSION


@pytest.fixture(scope="module")
def store(tmp_path_factory):
    return published_demo(tmp_path_factory.getbasetemp())


def _core(d: dict) -> dict:
    """``d`` without its extension schemas (pystac ships the core STAC 1.1 schemas; the extension
    schemas would be fetched from the network, which tests never reach)."""
    out = copy.deepcopy(d)
    out["stac_extensions"] = []
    return out


def test_stac_collection_and_items_validate_and_describe_every_product(store):
    import stac_geoparquet.arrow as sga

    d = json.loads((store / "stac" / "collection.json").read_text())
    assert pystac.validation.validate_dict(_core(d))
    col = pystac.Collection.from_dict(d)
    assert col.title.startswith("SYNTHESIZED") and "SYNTHESIZED" in col.description
    assert EO_EXTENSION in d["stac_extensions"]
    idx = reader.read_index(store)
    assert set(d["item_assets"]) == set(idx["sensor"])
    s2 = {b["name"]: b for b in d["item_assets"]["s2"]["bands"]}
    assert s2["B04"]["eo:center_wavelength"] == pytest.approx(0.665, abs=0.005) and s2["B04"]["eo:full_width_half_max"] > 0
    assert len(d["item_assets"]["enmap"]["bands"]) > 200
    assert "2024" in " ".join(p.name for p in col.providers)
    xmin, ymin, xmax, ymax = idx.total_bounds
    assert col.extent.spatial.bboxes[0] == pytest.approx([xmin, ymin, xmax, ymax])
    items = list(sga.stac_table_to_items(pq.read_table(store / "stac" / "items.parquet")))
    assert sorted(i["id"] for i in items) == sorted(set(idx["cell_id"]))
    for item in items:
        assert pystac.validation.validate_dict(_core(item))
        assert item["properties"]["description"].startswith("SYNTHESIZED")
        assert item["properties"]["proj:code"] == "EPSG:32633"
        n = sum(len(a["spectralearth:rows"]) for a in item["assets"].values())
        assert n == item["properties"]["spectralearth:patches"] == int((idx["cell_id"] == item["id"]).sum())


def test_croissant_loads_in_mlcroissant_and_lists_the_patches(store):
    import mlcroissant as mlc

    ds = mlc.Dataset(jsonld=store / "croissant.json")
    assert "SYNTHESIZED" in ds.metadata.description
    records = list(ds.records("patches"))
    idx = reader.read_index(store)
    assert sorted(r["patches/patch_id"].decode() for r in records) == sorted(idx["patch_id"])


def test_card_and_version_record_say_synthesized_with_licence_years_and_no_local_paths(store):
    card = (store / "README.md").read_text()
    assert card.startswith("> **SYNTHESIZED DEMO DATA")
    assert "Contains modified Copernicus Sentinel data 2024" in card and "[year]" not in card
    assert "@misc{" in card and "open_release(" in card
    record = json.loads((store / "versions" / "v000001.json").read_text())
    assert record["synthesized"] is True and record["note"].startswith("SYNTHESIZED")
    scenes = str(store.parent.parent / "demo-scenes")
    for name in ("README.md", "croissant.json", "stac/collection.json", "versions/v000001.json", "release.json"):
        text = (store / name).read_text()
        assert scenes not in text and str(store) not in text, name
    items = pq.read_table(store / "stac" / "items.parquet").to_pylist()
    assert scenes not in json.dumps(items, default=str)
