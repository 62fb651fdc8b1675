"""Physical units from the catalog: plain CF decoding of a release gives reflectance and kelvin.

Landsat SR: DN * 2.75e-5 - 0.2; Landsat ST: DN * 0.00341802 + 149 K; Sentinel-2 L2A: (DN - 1000)
/ 10000 from processing baseline 04.00, DN / 10000 before (stored re-encoded, so one set of CF
attributes decodes both). Also Landsat QA_PIXEL bits -> mask flags through ``tile``.
"""

from __future__ import annotations

import geopandas as gpd
import numpy as np
import pandas as pd
import pytest
import xarray as xr

from spectralearth_data.catalog import load_sensor
from spectralearth_data.engine import tile
from spectralearth_data.release.validate import validate_store as validate
from spectralearth_data.masks import MaskFlag

from .synth import batch_group, cover_transform, demo_cells, plan_rows, write_tif


def _constant_scene(d, sensor, cells, dn: int, qa=None, qa_asset=None, qa_dtype=np.uint16):
    spec = load_sensor(sensor)
    d.mkdir(parents=True)
    tr, shape = cover_transform(cells, spec.gsd_m if sensor != "s2" else 10.0)
    assets = {b.asset: str(write_tif(d / f"{b.asset}.tif", np.full((1, *shape), dn, np.uint16), tr, 32633, nodata=0))
              for b in spec.bands}
    q = np.zeros((1, *shape), qa_dtype) if qa is None else qa(shape)
    assets[qa_asset or spec.qa.asset] = str(write_tif(d / "qa.tif", q, tr, 32633))
    return assets


def _decoded(store, sensor, row):
    ds = xr.open_zarr(store, group=batch_group(store, sensor), consolidated=False)  # plain xarray: CF mask_and_scale
    return ds["data"][row].values, ds["data"].attrs


def test_landsat_sr_and_st_decode_to_reflectance_and_kelvin(tmp_path):
    cells = demo_cells(1)
    clear = 1 << 6

    def qa_pixel(shape):
        q = np.full((1, *shape), clear, np.uint16)
        q[:, 8:12, :] = (1 << 3) | (1 << 1)  # cloud + dilated cloud: the cell's rows 0..3
        q[:, 12:14, :] = 1 << 4  # cloud shadow: rows 4..5
        q[:, 20:, 8:10] = 1 << 7  # water: columns 0..1 below row 11
        return q

    sr = _constant_scene(tmp_path / "sr", "landsat", cells, 20000, qa=qa_pixel)
    st = _constant_scene(tmp_path / "st", "lst", cells, 44000, qa=qa_pixel)
    plan = pd.concat([plan_rows("landsat", "LC_U", cells, sr), plan_rows("lst", "LC_U_ST", cells, st)], ignore_index=True)
    store = tmp_path / "u.zarr"
    tile(plan, store, scheduler="synchronous", progress=False)
    assert validate(store) == []
    refl, a = _decoded(store, "landsat", 0)
    assert a["units"] == "reflectance"
    np.testing.assert_allclose(refl, 20000 * 2.75e-5 - 0.2, rtol=1e-6)  # 0.35
    kelvin, a = _decoded(store, "lst", 0)
    assert a["units"] == "kelvin"
    np.testing.assert_allclose(kelvin, 44000 * 0.00341802 + 149.0, rtol=1e-6)  # 299.39 K
    m = xr.open_zarr(store, group=batch_group(store, "landsat"), consolidated=False)["mask"][0].values
    assert (m[:4] == MaskFlag.CLOUD).all() and (m[4:6] == MaskFlag.CLOUD_SHADOW).all()
    assert (m[12:, :2] == MaskFlag.WATER).all() and (m[6:, 2:] == 0).all()
    idx = gpd.read_parquet(store / "index" / "patches").set_index("sensor")
    assert idx.loc["landsat", "cloud_fraction"] == pytest.approx(6 * 32 / (32 * 32))


@pytest.mark.parametrize(("baseline", "dn"), [("05.10", 2500), ("04.00", 2500), ("03.01", 1500)])
def test_s2_offset_by_processing_baseline(tmp_path, baseline, dn):
    """Reflectance 0.15 is DN 2500 from baseline 04.00 on (BOA_ADD_OFFSET -1000), DN 1500 before."""
    cells = demo_cells(1)
    assets = _constant_scene(tmp_path / "s2", "s2", cells, dn, qa_asset="SCL", qa_dtype=np.uint8,
                             qa=lambda shape: np.full((1, *shape), 4, np.uint8))
    plan = plan_rows("s2", f"S2_{baseline}", cells, assets, props={"s2:processing_baseline": baseline})
    store = tmp_path / "s.zarr"
    tile(plan, store, scheduler="synchronous", progress=False)
    refl, a = _decoded(store, "s2", 0)
    assert a["units"] == "reflectance"
    np.testing.assert_allclose(refl, 0.15, atol=1e-6)
