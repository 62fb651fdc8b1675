"""The demo's static STAC catalog: structure, asset keys, native encodings from the catalog."""

from __future__ import annotations

from datetime import datetime
from pathlib import Path

import numpy as np
import pystac
import pytest
import rasterio
import shapely.geometry

from spectralearth_data.catalog import load_region, load_sensor
from spectralearth_data.demo.scenes import demo_key
from spectralearth_data.demo.stac_items import collection_id

PRODUCTS = ("enmap", "desis", "emit", "s2", "landsat", "lst", "s1")


def expected_keys(name: str) -> set[str]:
    s = load_sensor(name)
    keys = {demo_key(s, s.data_asset)} if s.data_asset else {demo_key(s, b.asset) for b in s.bands}
    if s.qa is not None:
        keys.add(demo_key(s, s.qa.asset))
        if s.qa.kind == "layers" and s.name != "emit" and not s.qa.banded:  # EnMAP: one COG per quality layer
            keys |= {demo_key(s, e.layer) for e in s.qa.entries}
    return keys


def test_cli_says_synthesized_and_lists_every_product(demo_run):
    out, text = demo_run
    assert "SYNTHESIZED" in text
    for name in PRODUCTS:
        assert name in text
    assert (out / "README.txt").read_text().startswith("SYNTHESIZED DEMO DATA")


def test_catalog_loads_with_one_collection_per_product(demo_dir):
    cat = pystac.Catalog.from_file(str(demo_dir / "catalog.json"))
    cols = {c.id: c for c in cat.get_children()}
    assert set(cols) == {collection_id(load_sensor(n)) for n in PRODUCTS}
    for col in cols.values():
        assert col.extra_fields["spectralearth:synthetic"] is True
        assert "SYNTHESIZED" in col.title
        items = list(col.get_items())
        assert 2 <= len(items) <= 3
        assert len({it.datetime.date() for it in items}) == len(items)


@pytest.mark.parametrize("name", PRODUCTS)
def test_items_are_well_formed_and_cover_the_region(name, demo_items):
    region = load_region("demo").shape
    items = demo_items[collection_id(load_sensor(name))]
    covers_all = 0
    for it in items:
        assert it["type"] == "Feature" and it["stac_version"].startswith("1.")
        props = it["properties"]
        assert props["spectralearth:synthetic"] is True
        assert "SYNTHESIZED" in props["title"]
        dt = datetime.fromisoformat(props["datetime"])
        assert datetime(2024, 5, 1).date() <= dt.date() <= datetime(2024, 9, 30).date()
        assert 0.0 <= props["eo:cloud_cover"] <= 100.0
        geom = shapely.geometry.shape(it["geometry"])
        assert geom.is_valid and geom.intersects(region)
        assert np.allclose(it["bbox"], geom.bounds)
        covers_all += geom.buffer(1e-9).covers(region)
        for key, asset in it["assets"].items():
            assert not asset["href"].startswith("/"), "hrefs must be relative (self-contained catalog)"
            assert (Path(it["_path"]).parent / asset["href"]).resolve().exists(), key
    assert 1 <= covers_all < len(items) + (name in {"emit", "desis"}), "some, not all, scenes are cut"


@pytest.mark.parametrize("name", PRODUCTS)
def test_asset_keys_match_catalog_and_real_items(name, demo_items, real_asset_keys):
    want = expected_keys(name)
    for it in demo_items[collection_id(load_sensor(name))]:
        assert want <= set(it["assets"]), sorted(want - set(it["assets"]))
    real = {"s2": "s2", "landsat": "landsat", "lst": "landsat", "s1": "s1", "emit": "emit"}.get(name)
    if real:
        assert want <= real_asset_keys(real)


@pytest.mark.parametrize("name", ["enmap", "desis", "s2", "landsat", "lst", "s1"])
def test_cog_dtype_nodata_bands_and_proj_match(name, demo_items):
    s = load_sensor(name)
    seen_nodata = False
    for it in demo_items[collection_id(s)]:
        assert isinstance(it["properties"]["proj:epsg"], int)
        base = Path(it["_path"]).parent
        for band in s.bands if not s.data_asset else [None]:
            key = demo_key(s, s.data_asset) if band is None else demo_key(s, band.asset)
            asset = it["assets"][key]
            with rasterio.open(base / asset["href"]) as ds:
                ref = s.bands[0] if band is None else band
                assert ds.count == (len(s.bands) if band is None else 1)
                assert ds.dtypes[0] == ref.dtype
                assert ds.nodata == ref.nodata
                assert ds.crs.to_epsg() == it["properties"]["proj:epsg"]
                assert list(asset["proj:shape"]) == [ds.height, ds.width]
                assert np.allclose(asset["proj:transform"], list(ds.transform)[:6])
                assert ds.profile.get("compress", "").lower() == "deflate"
                assert ds.block_shapes[0] == (256, 256) or max(ds.shape) < 256
                gsd = (band.gsd_m if band is not None and band.gsd_m else s.gsd_m)
                assert ds.res == (gsd, gsd)
                rb = asset["raster:bands"][0]
                assert rb["data_type"] == ref.dtype and rb.get("nodata") == ref.nodata
                seen_nodata |= bool((ds.read(1) == ref.nodata).any())
    assert seen_nodata, "a scene with a footprint edge has nodata pixels"


def test_s2_bands_native_resolutions_and_zone_32_scene(demo_items):
    items = demo_items[collection_id(load_sensor("s2"))]
    assert {it["properties"]["proj:epsg"] for it in items} == {32632, 32633}
    for it in items:
        assert it["properties"]["s2:processing_baseline"] == "05.10"
        res = {k: a["gsd"] for k, a in it["assets"].items() if k.startswith("B")}
        assert (res["B02"], res["B05"], res["B01"]) == (10.0, 20.0, 60.0)


def test_landsat_grid_origin_is_half_pixel_offset(demo_items):
    for it in demo_items[collection_id(load_sensor("landsat"))]:
        for key in ("red", "lwir11", "qa_pixel"):
            t = it["assets"][key]["proj:transform"]
            assert t[2] % 30 == 15 and t[5] % 30 == 15


def test_out_dir_with_other_files_is_refused(tmp_path):
    from spectralearth_data.demo import make_demo_scenes
    from spectralearth_data.errors import InputDataError

    (tmp_path / "precious.txt").write_text("keep me")
    with pytest.raises(InputDataError, match="not empty"):
        make_demo_scenes(tmp_path)
    assert (tmp_path / "precious.txt").read_text() == "keep me"
