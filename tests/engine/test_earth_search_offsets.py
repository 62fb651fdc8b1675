"""Sentinel-2 on Earth Search decodes to the same reflectance whatever copy a scene comes from.

The items are the real recorded ones (tests/data/fixtures/stac/earth_search): tile 20EPT of
2025-07-31 as ``sentinel-2-c1-l2a`` (raster:bands offset -0.1, the -1000 DN offset in the pixels)
and as ``sentinel-2-l2a`` (``earthsearch:boa_offset_applied: true``: the offset already taken out
of the pixels, although raster:bands still lists -0.1), and a 2020 baseline 02.14 item (offset 0).
Their band assets point at small SYNTHESIZED COGs served over HTTP by a local range server, on
each asset's real grid (CRS, origin and pixel size from the item's proj:transform, uint16, nodata
0, SCL uint8): the pixels are what each provider copy holds for one known reflectance field.
"""

from __future__ import annotations

import copy
import json
import logging
import math
from pathlib import Path

import numpy as np
import pytest
import rasterio
import xarray as xr
from affine import Affine
from servers.http_range import serve

from spectralearth_data.catalog import load_sensor
from spectralearth_data.engine import tile
from spectralearth_data.engine.readers import SceneRef, read_scene
from spectralearth_data.engine.readers.encoding import PLAUSIBLE_MIN_MEDIAN, ClearSample, scene_encoding
from spectralearth_data.grid import Cell

from .synth import batch_group, plan_rows

FIX = Path(__file__).resolve().parents[1] / "data" / "fixtures" / "stac" / "earth_search"
EXTENT_M = 2560  # the synthesized COGs cover this much of the tile, from its top-left corner
S2 = load_sensor("s2")
ES_KEYS = S2.provider("earth-search").asset_map
#: A cell inside the top-left 2.56 km of tile 20EPT (EPSG:32720, origin 600000 / 3300040).
CELL_20EPT = Cell(32720, 625, 3436, 960)
#: ... and of tile 13SCV (EPSG:32613, origin 300000 / 4000020), the 2020 baseline 02.14 item.
CELL_13SCV = Cell(32613, 313, 4165, 960)


def _page_items() -> dict[str, dict]:
    out = {}
    for n in (1, 2):
        for f in json.loads((FIX / "search_pages_20250731" / f"page{n}.json").read_text())["features"]:
            out[f["id"]] = f
    return out


ITEMS = _page_items()
C1 = ITEMS["S2B_T20EPT_20250731T131905_L2A"]
L2A = ITEMS["S2B_20EPT_20250731_0_L2A"]
OLD = next(f for f in json.loads((FIX / "items" / "sentinel-2-l2a_2020-04_baseline02.14_24items.json").read_text())["features"]
           if f["id"] == "S2A_13SCV_20200413_0_L2A")


def reflectance(i: int, cols: np.ndarray) -> np.ndarray:
    """The true reflectance of band ``i`` (vegetation-like: 0.03 in B01 up to 0.305 in B12),
    plus 1e-4 per 10 m column so that an aligned read is checked pixel by pixel."""
    return 0.03 + 0.025 * i + 1e-4 * cols


def serve_item(item: dict, root: Path, url: str, dn_offset: int) -> dict:
    """Write the item's band and SCL COGs (DN = 10000 * reflectance + ``dn_offset``) under
    ``root``; return a copy of the item whose hrefs point at them on ``url``."""
    it = copy.deepcopy(item)
    epsg = it["properties"]["proj:epsg"]
    folder = root / it["id"]
    folder.mkdir(parents=True, exist_ok=True)
    for i, band in enumerate(S2.bands + ("SCL",)):
        key = ES_KEYS[band if band == "SCL" else band.asset]
        asset = it["assets"][key]
        gsd, _, x0, _, _, y0 = asset["proj:transform"]
        n = math.ceil(EXTENT_M / gsd)
        if band == "SCL":
            arr, dtype = np.full((1, n, n), 4, np.uint8), "uint8"  # 4 = vegetation: clear
        else:
            cols = np.broadcast_to(np.arange(n) * (gsd / 10.0) if gsd == 10 else np.zeros(n), (n, n))
            arr = np.rint(10000 * reflectance(i, cols) + dn_offset).astype(np.uint16)[None]
            dtype = "uint16"
        name = asset["href"].rsplit("/", 1)[-1]
        with rasterio.open(folder / name, "w", driver="GTiff", width=n, height=n, count=1, dtype=dtype,
                           crs=f"EPSG:{epsg}", transform=Affine(gsd, 0, x0, 0, -gsd, y0), nodata=0,
                           tiled=True, blockxsize=128, blockysize=128, compress="deflate") as ds:
            ds.write(arr)
        asset["href"] = f"{url}/{it['id']}/{name}"
    return it


def scene(item: dict) -> SceneRef:
    assets = {k: a["href"] for k, a in item["assets"].items()}
    return SceneRef(scene_id=item["id"], source="earth-search", assets=assets, item=item)


def decoded(data: np.ndarray) -> np.ndarray:
    """Plain CF decoding with the catalog's (= the release's) scale/offset."""
    return np.stack([data[i].astype(np.float64) * b.scale + b.offset for i, b in enumerate(S2.bands)])


def truth(cell: Cell) -> np.ndarray:
    cols = np.broadcast_to(np.arange(96) + (cell.bounds[0] - (600000 if cell.epsg == 32720 else 300000)) / 10, (96, 96))
    out = []
    for i, b in enumerate(S2.bands):
        native_10m = (b.gsd_m or S2.gsd_m) == 10
        out.append(reflectance(i, cols if native_10m else np.zeros((96, 96))))
    return np.stack(out)


@pytest.fixture
def www(tmp_path):
    root = tmp_path / "www"
    root.mkdir()
    with serve(root) as srv:
        yield root, srv.url


def test_recorded_items_state_what_the_tests_assume():
    assert C1["collection"] == "sentinel-2-c1-l2a" and "earthsearch:boa_offset_applied" not in C1["properties"]
    assert L2A["collection"] == "sentinel-2-l2a" and L2A["properties"]["earthsearch:boa_offset_applied"] is True
    for it in (C1, L2A):
        assert it["properties"]["s2:processing_baseline"] == "05.11"
        assert it["assets"]["red"]["raster:bands"][0]["offset"] == -0.1  # the contradictory l2a listing
    assert OLD["properties"]["earthsearch:boa_offset_applied"] is False
    assert OLD["properties"]["s2:processing_baseline"] == "02.14"
    assert OLD["assets"]["red"]["raster:bands"][0]["offset"] == 0


def test_c1_and_offset_applied_l2a_copies_decode_alike(www):
    root, url = www
    c1 = serve_item(C1, root, url, dn_offset=1000)  # Collection 1: the -1000 DN offset is in the pixels
    l2a = serve_item(L2A, root, url, dn_offset=0)  # boa_offset_applied: already taken out
    gb = CELL_20EPT.geobox(10.0)
    a = read_scene(S2, scene(c1), gb)
    b = read_scene(S2, scene(l2a), gb)
    assert (a.mask == 0).all() and (b.mask == 0).all()
    np.testing.assert_array_equal(a.data, b.data)
    np.testing.assert_allclose(decoded(a.data), truth(CELL_20EPT), atol=0.6e-4)
    assert {e.offset for e in b.encoding} == {0.0} and "earthsearch:boa_offset_applied" in b.encoding[0].origin
    assert {e.offset for e in a.encoding} == {-0.1} and a.encoding[0].origin == "item raster:bands"


def test_planetary_computer_style_item_decodes_like_collection_1(www):
    """The same pixels as Planetary Computer delivers them: no raster:bands on the assets, the
    offset from s2:processing_baseline (05.11 -> -0.1)."""
    root, url = www
    c1 = serve_item(C1, root, url, dn_offset=1000)
    pc = copy.deepcopy(c1)
    for a in pc["assets"].values():
        a.pop("raster:bands", None)
    gb = CELL_20EPT.geobox(10.0)
    ref = read_scene(S2, scene(c1), gb).data
    got = read_scene(S2, scene(pc), gb)
    np.testing.assert_array_equal(got.data, ref)
    assert got.encoding[0].origin.startswith("offset_rule")


def test_baseline_02_14_item_has_no_offset(www):
    root, url = www
    old = serve_item(OLD, root, url, dn_offset=0)
    out = read_scene(S2, scene(old), CELL_13SCV.geobox(10.0))
    assert {e.offset for e in out.encoding} == {0.0}
    np.testing.assert_allclose(decoded(out.data), truth(CELL_13SCV), atol=0.6e-4)


def test_flag_would_be_needed_without_it(www):
    """Guard on the fixture semantics: read as its raster:bands alone say (-0.1), the l2a copy
    comes out exactly 0.1 too low; the flag is what makes it right."""
    root, url = www
    l2a = serve_item(L2A, root, url, dn_offset=0)
    ignored = copy.deepcopy(l2a)
    ignored["properties"]["earthsearch:boa_offset_applied"] = False
    gb = CELL_20EPT.geobox(10.0)
    right = decoded(read_scene(S2, scene(l2a), gb).data)
    wrong = decoded(read_scene(S2, scene(ignored), gb).data)
    np.testing.assert_allclose(right - wrong, 0.1, atol=1e-9)


def _tile_one(item: dict, tmp_path: Path, caplog) -> tuple[Path, list[str]]:
    """Tile ``item`` over one cell; the store and the implausible-reflectance warnings."""
    assets = {k: a["href"] for k, a in item["assets"].items()}
    plan = plan_rows("s2", item["id"], [CELL_20EPT], assets, source="earth-search", epsg=32720)
    plan["item"] = json.dumps(item)
    store = tmp_path / f"{item['id']}.zarr"
    with caplog.at_level(logging.WARNING, logger="spectralearth_data.engine.tasks"):
        summary = tile(plan, store, scheduler="synchronous", progress=False)
    logged = [r.getMessage() for r in caplog.records if "implausible reflectance" in r.getMessage()]
    assert summary.suspect == logged  # recorded in the run's summary as well as logged
    assert summary.patches_written == 1  # flagged, not dropped: the patch is written
    return store, logged


def test_release_decodes_both_copies_to_the_truth_and_flags_a_mislabelled_one(www, tmp_path, caplog):
    root, url = www
    c1 = serve_item(C1, root, url, dn_offset=1000)
    l2a = serve_item(L2A, root, url, dn_offset=0)
    for it in (c1, l2a):
        store, warned = _tile_one(it, tmp_path, caplog)
        ds = xr.open_zarr(store, group=batch_group(store, "s2"), consolidated=False)  # plain CF decoding
        np.testing.assert_allclose(ds["data"][0].values, truth(CELL_20EPT), atol=0.6e-4)
        assert warned == []
    # Element84/earth-search #71: a sentinel-2-l2a item saying boa_offset_applied: false whose
    # pixels already had the offset taken out. Read as it says, it is 0.1 too low: flagged.
    mislabelled = copy.deepcopy(l2a)
    mislabelled["id"] = "S2B_20EPT_20250731_0_L2A_mislabelled"
    mislabelled["properties"]["earthsearch:boa_offset_applied"] = False
    caplog.clear()
    _, warned = _tile_one(mislabelled, tmp_path, caplog)
    assert len(warned) == 1
    assert "S2B_20EPT_20250731_0_L2A_mislabelled" in warned[0] and "item raster:bands" in warned[0]
    assert "offset looks wrong" in warned[0]


def test_clear_sample_verdict_thresholds():
    bands = S2.bands
    n = 32
    data = np.full((len(bands), n, n), 1000 + 500, np.uint16)  # 0.05 everywhere: plausible
    mask = np.zeros((n, n), np.uint8)
    s = ClearSample(bands)
    s.add(data, mask)
    assert s.verdict("s2", "x") is None
    data[1] = 1000 - 300  # B02 at -0.03: implausible
    s = ClearSample(bands)
    s.add(data, mask)
    msg = s.verdict("s2", "x")
    assert msg and "B02 -0.030" in msg and f"{PLAUSIBLE_MIN_MEDIAN:g}" in msg
    # the same values under cloud, or on too few clear pixels, give no verdict
    s = ClearSample(bands)
    s.add(data, np.full((n, n), 2, np.uint8))
    assert s.verdict("s2", "x") is None
    s = ClearSample(bands)
    s.add(data[:, :8, :8], mask[:8, :8])
    assert s.verdict("s2", "x") is None


def test_encoding_without_raster_bands_or_rule_is_the_catalog():
    landsat = load_sensor("landsat")
    sc = SceneRef("LC", "local", {b.asset: f"/x/{b.asset}.tif" for b in landsat.bands}, {"properties": {}, "assets": {}})
    enc = scene_encoding(landsat, sc, landsat.bands)
    assert all((e.scale, e.offset, e.origin) == (b.scale, b.offset, "catalog") for e, b in zip(enc, landsat.bands))


@pytest.mark.parametrize("source", ["earth-search", "local"])
def test_sentinel_1_grd_scene_is_refused_at_read_time(source):
    """A plan row holding a real Earth Search GRD item (or a copy of it in a local catalogue) is
    not read as gamma0: the reader names the reason instead of tiling uint16 amplitude."""
    from spectralearth_data.errors import InputDataError

    s1 = load_sensor("s1")
    grd = next(f for f in ITEMS.values() if f["collection"] == "sentinel-1-grd")
    sc = SceneRef(grd["id"], source, {k: a["href"] for k, a in grd["assets"].items()}, grd)
    with pytest.raises(InputDataError, match=rf"s1 scene {grd['id']} \({source}, sentinel-1-grd\):.*not gamma0"):
        read_scene(s1, sc, CELL_20EPT.geobox(10.0))
