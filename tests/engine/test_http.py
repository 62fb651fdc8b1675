"""Real fixture rasters served over HTTP with range requests (local server with fault injection)."""

from __future__ import annotations

import shutil
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import rasterio
from servers.http_range import serve

from spectralearth_data.engine import TileConfig, tile
from spectralearth_data.release.validate import validate_store as validate
from spectralearth_data.engine.readers.cog import read_onto
from spectralearth_data.errors import InputDataError
from spectralearth_data.grid import cell_for

from .synth import demo_cells, plan_rows, s2_scene

FIXTURES = Path(__file__).resolve().parents[1] / "data" / "fixtures"
ENMAP_TILE = FIXTURES.parents[2] / "spectralearth_model/evaluate/data/enmap_potsdam" / "images" / "enmap_potsdam_tile_128_0.tif"


@pytest.fixture()
def served(tmp_path):
    root = tmp_path / "www"
    root.mkdir()
    shutil.copy(ENMAP_TILE, root / "enmap.tif")
    shutil.copy(FIXTURES / "geotiff" / "RGB.byte.tif", root / "rgb.tif")
    with serve(root) as srv:
        yield srv, root


def _enmap_cell():
    with rasterio.open(ENMAP_TILE) as ds:
        b = ds.bounds
        lonlat = rasterio.warp.transform(ds.crs, "EPSG:4326", [(b.left + b.right) / 2], [(b.top + b.bottom) / 2])
    return cell_for(lonlat[0][0], lonlat[1][0], 960)


def test_real_enmap_tile_over_http_equals_local_read(served):
    srv, root = served
    cell = _enmap_cell()
    gb = cell.geobox(30.0)
    kw = {"indexes": [1, 50, 100], "dtype": "int16", "nodata": -32768}
    local = read_onto(str(root / "enmap.tif"), gb, **kw)
    remote = read_onto(f"{srv.url}/enmap.tif", gb, **kw)
    np.testing.assert_array_equal(local, remote)
    assert srv.range_requests["enmap.tif"] > 0
    # the real EnMAP grid sits half a pixel off the 30 m UTM grid, so it is resampled onto the
    # cell: inside the tile the values stay in the tile's range
    with rasterio.open(ENMAP_TILE) as ds:
        src = ds.read(50)
    got = local[1][local[1] != -32768]
    assert got.size > 0 and src.min() - 1 <= got.min() and got.max() <= src.max() + 1


def test_real_rgb_over_http_to_another_crs(served):
    """RGB.byte.tif (EPSG:32618, 300 m) read onto a 32618 grid at 300 m: aligned path, exact."""
    srv, root = served
    from affine import Affine
    from odc.geo.geobox import GeoBox

    gb = GeoBox((64, 64), Affine(300.0379266750948, 0, 101985.0 + 300.0379266750948 * 100, 0, -300.041782729805, 2826915.0 - 300.041782729805 * 200), "EPSG:32618")
    out = read_onto(f"{srv.url}/rgb.tif", gb, dtype="uint8", nodata=0)
    with rasterio.open(root / "rgb.tif") as ds:
        ref = ds.read(window=rasterio.windows.Window(100, 200, 64, 64))
    np.testing.assert_array_equal(out, ref)


@pytest.mark.parametrize("fault", ["truncate", 500], ids=["truncated-download", "server-error"])
def test_http_faults_raise_clear_errors(served, fault):
    srv, _root = served
    srv.faults["enmap.tif"] = fault
    gb = _enmap_cell().geobox(30.0)
    with pytest.raises(InputDataError, match="enmap.tif"):
        read_onto(f"{srv.url}/enmap.tif", gb, indexes=[1], dtype="int16", nodata=-32768)


def test_tile_over_http_with_one_broken_scene_keeps_a_valid_store(tmp_path):
    cells = demo_cells(2)
    www = tmp_path / "www"
    good, _, _ = s2_scene(www, "S2_GOOD", cells)
    bad, _, _ = s2_scene(www, "S2_BAD", cells)
    with serve(www) as srv:
        to_url = lambda assets: {k: f"{srv.url}/{Path(v).relative_to(www)}" for k, v in assets.items()}
        srv.faults[str(Path(bad["B08"]).relative_to(www))] = "truncate"
        plan = pd.concat([plan_rows("s2", "S2_GOOD", cells, to_url(good)), plan_rows("s2", "S2_BAD", cells, to_url(bad))], ignore_index=True)
        store = tmp_path / "out.zarr"
        with pytest.raises(InputDataError, match="S2_BAD|B08"):
            tile(plan, store, scheduler="synchronous", progress=False, config=TileConfig(patches_per_shard=2))
        assert srv.range_requests[str(Path(good["B04"]).relative_to(www))] > 0
    assert validate(store) == []
    import geopandas as gpd

    idx = gpd.read_parquet(store / "index" / "patches")
    assert set(idx["scene_id"]) == {"S2_GOOD"} and len(idx) == 2
    assert all(a.startswith('{"B01": "http://127.0.0.1') for a in idx["assets"])


def test_read_time_signature_is_used_and_never_written(tmp_path, monkeypatch):
    """A source whose hrefs are signed at read time (``auth: planetary-computer``, its SAS signer
    replaced by one for the local server): the server sees the signature, the store and the error
    messages never do."""
    from spectralearth_data import credentials

    secret = "sig=SECRET-b7e1"
    monkeypatch.setitem(credentials.AUTHS, "planetary-computer", credentials.ReadAuth(sign=lambda href: f"{href}?{secret}"))
    cells = demo_cells(2)
    www = tmp_path / "www"
    good, _, _ = s2_scene(www, "S2_SIG", cells)
    bad, _, _ = s2_scene(www, "S2_SIG_BAD", cells)
    with serve(www) as srv:
        to_url = lambda assets: {k: f"{srv.url}/{Path(v).relative_to(www)}" for k, v in assets.items()}
        srv.faults[str(Path(bad["B02"]).relative_to(www))] = 500
        plan = pd.concat([plan_rows("s2", "S2_SIG", cells, to_url(good), source="planetary-computer"),
                          plan_rows("s2", "S2_SIG_BAD", cells, to_url(bad), source="planetary-computer")], ignore_index=True)
        store = tmp_path / "out.zarr"
        with pytest.raises(InputDataError, match="S2_SIG_BAD") as err:
            tile(plan, store, scheduler="synchronous", progress=False)
        assert secret in srv.queries
    assert "SECRET" not in str(err.value)
    assert validate(store) == []
    leaked = [p for p in store.rglob("*") if p.is_file() and b"SECRET" in p.read_bytes()]
    assert leaked == []
