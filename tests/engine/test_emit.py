"""EMIT: a synthetic L2A swath with a GLT is orthorectified onto the cell grid (round trip)."""

from __future__ import annotations

import json
import shutil
from pathlib import Path
from typing import Any, NamedTuple
from urllib.parse import urlsplit

import h5netcdf
import h5py
import numpy as np
import pytest
import xarray as xr
from pyproj import Transformer

from spectralearth_data.catalog import load_sensor
from spectralearth_data.engine import tile
from spectralearth_data.release.validate import validate_store as validate
from spectralearth_data.engine.readers import SceneRef, read_scene
from spectralearth_data.errors import InputDataError
from spectralearth_data.masks import MaskFlag

from .synth import batch_group, demo_cells, item, plan_rows

FILL = -9999.0
#: The recorded real CMR response of 3 EMITL2ARFL V001 granules (tests/data/fixtures/MANIFEST.md).
RECORDED_CMR = Path(__file__).resolve().parents[1] / "data/fixtures/emit/emit_l2a_umm_3granules.json"


def _ortho_grid(cells, res=0.0005):
    lon0, lat0, lon1, lat1 = np.array([c.polygon_lonlat().bounds for c in cells]).T
    lon0, lat1 = lon0.min() - 0.002, lat1.max() + 0.002
    nx = int((lon1.max() + 0.002 - lon0) / res)
    ny = int((lat1 - (lat0.min() - 0.002)) / res)
    return (lon0, res, 0.0, lat1, 0.0, -res), ny, nx


def value_at(lon, lat, band):
    """The synthetic reflectance at (lon, lat): smooth in space, linear in band, and inside the
    catalog's valid range (about 0.3-0.8 over the demo cells, so no pixel is flagged)."""
    return 0.1 + 5.0 * (lon - 13.0) + 3.0 * (lat - 52.3) + 0.001 * band


#: EMITL2ARFL V001 ``sensor_band_parameters/mask_bands`` (catalogs/ATTRIBUTION.md).
V001_MASK_BANDS = ["Cloud flag", "Cirrus flag", "Water flag", "Spacecraft Flag", "Dilated Cloud Flag", "AOD550",
                   "H2O (g cm-2)", "Aggregate Flag"]


def write_emit(tmp_path, cells, nbands=285, cloud_rows=0, names=V001_MASK_BANDS):
    """An EMIT-like RFL + MASK pair: the swath is the ortho grid transposed and flipped, so the
    GLT is a non-trivial permutation (1-based, 0 = no data at the grid's left edge). Returns the
    assets under our keys (``data``, ``mask``) and the ortho geotransform."""
    gt, ny, nx = _ortho_grid(cells)
    oy, ox = np.mgrid[0:ny, 0:nx]
    lon = gt[0] + (ox + 0.5) * gt[1]
    lat = gt[3] + (oy + 0.5) * gt[5]
    # swath (line, sample) = (ox, ny-1-oy): downtrack runs west->east
    glt_y = ox + 1
    glt_x = (ny - 1 - oy) + 1
    glt_x[:, :2], glt_y[:, :2] = 0, 0  # no data in the first two ortho columns
    refl = np.full((nx, ny, nbands), FILL, np.float32)
    b = np.arange(nbands)
    refl[ox, ny - 1 - oy, :] = value_at(lon, lat, 0)[..., None] + 0.001 * b
    good = np.ones(nbands, np.uint8)
    good[100:110] = 0
    with h5netcdf.File(tmp_path / "EMIT_L2A_RFL.nc", "w") as f:
        f.dimensions = {"downtrack": nx, "crosstrack": ny, "bands": nbands}
        f.attrs["geotransform"] = np.asarray(gt)
        f.attrs["spatial_ref"] = "EPSG:4326"
        f.create_variable("reflectance", ("downtrack", "crosstrack", "bands"), data=refl).attrs["_FillValue"] = np.float32(FILL)
        g = f.create_group("sensor_band_parameters")
        g.create_variable("good_wavelengths", ("bands",), data=good)
        loc = f.create_group("location")
        loc.dimensions = {"ortho_y": ny, "ortho_x": nx}
        loc.create_variable("glt_x", ("ortho_y", "ortho_x"), data=glt_x.astype(np.int32))
        loc.create_variable("glt_y", ("ortho_y", "ortho_x"), data=glt_y.astype(np.int32))
    mask = np.zeros((nx, ny, len(names)), np.float32)
    mask[:, :, 5] = 0.1  # AOD is continuous, never a flag
    if cloud_rows:
        mask[:, :cloud_rows, 0] = 1.0  # crosstrack = ny-1-oy: the southernmost ortho rows
    with h5netcdf.File(tmp_path / "EMIT_L2A_MASK.nc", "w") as f:
        f.dimensions = {"downtrack": nx, "crosstrack": ny, "bands": len(names)}
        f.create_variable("mask", ("downtrack", "crosstrack", "bands"), data=mask)
        f.create_group("sensor_band_parameters").create_variable(
            "mask_bands", ("bands",), data=np.array(names, dtype=h5py.string_dtype()), dtype=h5py.string_dtype()
        )
    return {"data": str(tmp_path / "EMIT_L2A_RFL.nc"), "mask": str(tmp_path / "EMIT_L2A_MASK.nc")}, gt


class EmitToServe(NamedTuple):
    """EMIT files under ``www`` for ``cells`` (``local`` assets) and the local read they give."""

    www: Path
    cells: list
    local: dict
    spec: Any
    geobox: Any
    want: Any


def emit_to_serve(tmp_path: Path, ncells: int) -> EmitToServe:
    """:func:`write_emit` for ``demo_cells(ncells)`` into ``tmp_path/www`` (a folder to serve),
    with the scene read locally on the first cell's 60 m geobox (what a remote read must equal)."""
    cells = demo_cells(ncells)
    www = tmp_path / "www"
    www.mkdir()
    local, _ = write_emit(www, cells)
    spec = load_sensor("emit")
    gb = cells[0].geobox(60.0)
    want = read_scene(spec, SceneRef("E", "local", local, {}), gb)
    return EmitToServe(www, cells, local, spec, gb, want)


def write_uncertainty(path: Path, like: Path):
    """An EMIT-like RFLUNCERT file beside ``like`` (an RFL file): the same GLT and band
    parameters, variable ``reflectance_uncertainty`` and no ``mask`` (emit-sds-l2a output_conversion.py)."""
    with h5py.File(like, "r") as src, h5netcdf.File(path, "w") as f:
        nx, ny, nb = src["reflectance"].shape
        f.dimensions = {"downtrack": nx, "crosstrack": ny, "bands": nb}
        f.attrs["geotransform"] = np.asarray(src.attrs["geotransform"])
        f.create_variable("reflectance_uncertainty", ("downtrack", "crosstrack", "bands"),
                          data=np.full((nx, ny, nb), 0.01, np.float32))
        f.create_group("sensor_band_parameters").create_variable(
            "good_wavelengths", ("bands",), data=src["sensor_band_parameters/good_wavelengths"][:])
        loc = f.create_group("location")
        loc.dimensions = {"ortho_y": src["location/glt_x"].shape[0], "ortho_x": src["location/glt_x"].shape[1]}
        for v in ("glt_x", "glt_y"):
            loc.create_variable(v, ("ortho_y", "ortho_x"), data=src[f"location/{v}"][:])
    return path


def test_emit_glt_round_trip_lands_on_expected_pixels(tmp_path):
    cell = demo_cells(1)[0]
    assets, gt = write_emit(tmp_path, [cell])
    spec = load_sensor("emit")
    scene = SceneRef("EMIT_1", "local", assets, item("EMIT_1", "2024-06-01T10:00:00Z", assets, None))
    gb = cell.geobox(60.0)
    out = read_scene(spec, scene, gb)
    assert out.data.shape == (len(spec.bands), 16, 16) and out.data.dtype == np.float32
    cols, rows = np.meshgrid(np.arange(16) + 0.5, np.arange(16) + 0.5)
    x, y = gb.affine @ (cols, rows)
    lon, lat = Transformer.from_crs(cell.epsg, 4326, always_xy=True).transform(x, y)
    # nearest: each target pixel takes the ortho pixel its centre falls in
    olon = gt[0] + (np.floor((lon - gt[0]) / gt[1]) + 0.5) * gt[1]
    olat = gt[3] + (np.floor((lat - gt[3]) / gt[5]) + 0.5) * gt[5]
    np.testing.assert_allclose(out.data[0], value_at(olon, olat, 0), rtol=0, atol=1e-6)
    np.testing.assert_allclose(out.data[50], value_at(olon, olat, 0) + 0.05, atol=1e-5)
    assert (out.data[100:110] == FILL).all()  # bad bands -> fill, not flagged per pixel
    assert out.mask.max() == 0


def test_emit_outside_swath_and_cloud_layer_flags(tmp_path):
    cell = demo_cells(1)[0]
    assets, _gt = write_emit(tmp_path, [cell], cloud_rows=6)
    spec = load_sensor("emit")
    scene = SceneRef("EMIT_2", "local", assets, item("EMIT_2", "2024-06-01T10:00:00Z", assets, None))
    out = read_scene(spec, scene, cell.geobox(60.0))
    assert (out.mask[-1] & MaskFlag.CLOUD).all() and not (out.mask[0] & MaskFlag.CLOUD).any()
    assert not (out.mask & MaskFlag.NODATA).any()
    # a cell west of the grid falls on the GLT's no-data columns / outside: all nodata
    far = cell.__class__(cell.epsg, cell.col - 3, cell.row, cell.cell_m)
    out2 = read_scene(spec, scene, far.geobox(60.0))
    assert (out2.mask & MaskFlag.NODATA).all() and (out2.data == FILL).all()


def test_emit_tiles_into_store(tmp_path):
    cells = demo_cells(2)
    assets, _ = write_emit(tmp_path, cells)
    plan = plan_rows("emit", "EMIT_3", cells, assets, epsg=None)
    store = tmp_path / "o.zarr"
    s = tile(plan, store, scheduler="synchronous", progress=False)
    assert s.patches_written == 2
    assert validate(store) == []
    # plain xarray opens the float product and masks its fill value (CF missing_value)
    raw = xr.open_zarr(store, group=batch_group(store, "emit"), mask_and_scale=False)["data"].values
    dec = xr.open_zarr(store, group=batch_group(store, "emit"))["data"].values
    assert (raw == FILL).any() and np.isnan(dec[raw == FILL]).all()
    np.testing.assert_array_equal(dec[raw != FILL], raw[raw != FILL])


def test_emit_over_http_with_earthdata_token_that_never_reaches_the_store(tmp_path, monkeypatch):
    """EMIT NetCDF read over HTTP range requests from an ``earthdata-cmr`` scene: the bearer token
    from $EARTHDATA_TOKEN is sent at read time, the result equals a local read, and the token
    appears nowhere in the store (index, attributes, shards)."""
    from servers.http_range import serve

    token = "test-token-5f3a9c"
    monkeypatch.setenv("EARTHDATA_TOKEN", token)
    www, cells, local, spec, gb, want = emit_to_serve(tmp_path, 2)
    with serve(www) as srv:
        remote = {k: f"{srv.url}/{Path(v).name}" for k, v in local.items()}
        got = read_scene(spec, SceneRef("E", "earthdata-cmr", remote, {}), gb)
        plan = plan_rows("emit", "EMIT_H", cells, remote, epsg=None, source="earthdata-cmr")
        store = tmp_path / "o.zarr"
        tile(plan, store, scheduler="synchronous", progress=False)
        assert srv.authorization[f"Bearer {token}"] > 0 and srv.range_requests["EMIT_L2A_RFL.nc"] > 0
    np.testing.assert_array_equal(got.data, want.data)
    np.testing.assert_array_equal(got.mask, want.mask)
    assert validate(store) == []
    leaked = [p for p in store.rglob("*") if p.is_file() and token.encode() in p.read_bytes()]
    assert leaked == []


def test_emit_mask_with_v002_band_names_is_refused(tmp_path):
    """A V002 EMITL2AMASK file spells the flags "Cloud Flag" ...: read with the V001 catalog it
    would flag nothing, so the reader says so instead."""
    cell = demo_cells(1)[0]
    v002 = ["Cloud Flag", "Cirrus Flag", "Water Flag", "Spacecraft Flag", "Dilated Cloud Flag", "AOD550",
            "H2O (g cm-2)", "Aggregate Flag", "SpecTf-Cloud Probability", "SpecTf-Cloud Flag", "SpecTf-Buffer Distance"]
    assets, _ = write_emit(tmp_path, [cell], cloud_rows=6, names=v002)
    scene = SceneRef("EMIT_V2", "local", assets, {})
    with pytest.raises(InputDataError, match=r"lack the catalog's flag layers \['Cloud flag', 'Cirrus flag', 'Water flag'\]"):
        read_scene(load_sensor("emit"), scene, cell.geobox(60.0))


def test_cmr_granule_qa_is_read_from_its_mask_file(tmp_path, monkeypatch):
    """Search the replayed real CMR response (links RFL, MASK, RFLUNCERT), serve EMIT-like files at
    the recorded paths on localhost, read the scene: the flags come from the MASK file, and the
    RFLUNCERT file is never opened. (The files are placed over the demo cells, not at the
    granule's real footprint: the reader follows the file's GLT, not the CMR polygon.)"""
    from servers import CmrReplayServer
    from servers.http_range import serve

    from spectralearth_data.sources import RetryPolicy, search

    monkeypatch.setenv("EARTHDATA_TOKEN", "test-token-qa")
    region = tmp_path / "santa_barbara.geojson"
    ring = [[-121.0, 34.0], [-119.8, 34.0], [-119.8, 35.1], [-121.0, 35.1], [-121.0, 34.0]]
    region.write_text(json.dumps({"type": "Feature", "properties": {"name": "sb"},
                                  "geometry": {"type": "Polygon", "coordinates": [ring]}}))
    retry = RetryPolicy(attempts=2, backoff_s=0.01, jitter_s=0.0, max_backoff_s=0.05, timeout_s=(2.0, 10.0))
    with CmrReplayServer(json.loads(RECORDED_CMR.read_text())) as cmr:
        scenes = search("earthdata-cmr", region, "2023-04-20", "2023-04-25", ["emit"], url=cmr.search_url, retry=retry)
    row = scenes.iloc[0]
    recorded = json.loads(row["assets"])
    paths = {k: urlsplit(recorded[k]).path.lstrip("/") for k in ("data", "mask", "uncertainty")}
    assert [Path(p).name.split("_")[2] for p in paths.values()] == ["RFL", "MASK", "RFLUNCERT"]

    cell = demo_cells(1)[0]
    (tmp_path / "made").mkdir()
    made, _ = write_emit(tmp_path / "made", [cell], cloud_rows=6)
    www = tmp_path / "www"
    for key in ("data", "mask"):
        (www / paths[key]).parent.mkdir(parents=True, exist_ok=True)
        shutil.copy(made[key], www / paths[key])
    write_uncertainty(www / paths["uncertainty"], Path(made["data"]))
    spec = load_sensor("emit")
    with serve(www) as srv:
        # the recorded hrefs, with the host mapped to the local server
        hrefs = {k: srv.url + urlsplit(v).path for k, v in recorded.items() if k != "browse"}
        out = read_scene(spec, SceneRef(row["scene_id"], "earthdata-cmr", hrefs, json.loads(row["item"])),
                         cell.geobox(60.0))
        assert srv.requests[paths["mask"]] > 0 and srv.requests[paths["data"]] > 0
        assert srv.requests[paths["uncertainty"]] == 0
    assert (out.mask[-1] & MaskFlag.CLOUD).all() and not (out.mask[0] & MaskFlag.CLOUD).any()
    assert not (out.mask & MaskFlag.NODATA).any()
