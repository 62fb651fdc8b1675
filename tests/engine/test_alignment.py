"""Pixel-exact placement: a pattern that encodes each source pixel's global grid position lands
on exactly the expected cell pixels, at 10, 30 and 60 m, through the whole ``tile`` path."""

from __future__ import annotations

import geopandas as gpd
import numpy as np
import pandas as pd
import pytest
import zarr
from affine import Affine

from spectralearth_data.catalog import load_sensor
from spectralearth_data.engine import TileConfig, tile
from spectralearth_data.release.validate import validate_store as validate
from spectralearth_data.engine.readers.cog import read_onto
from spectralearth_data.engine.tasks import strip_geobox
from spectralearth_data.grid import Cell

from .synth import cover_transform, demo_cells, plan_rows, write_tif


def code(col_g: np.ndarray, row_g: np.ndarray) -> np.ndarray:
    """A uint16 value that names a pixel of the zone's grid (unique within 150 x 150 pixels, and
    inside Landsat's valid DN range so no pixel is flagged)."""
    return (8000 + (col_g % 150) * 200 + (row_g % 150)).astype(np.uint16)


def coded_raster(tr: Affine, shape: tuple[int, int], gsd: float) -> np.ndarray:
    """``code`` of the global grid position (floor(x/gsd), floor(y/gsd)) of each pixel centre."""
    h, w = shape
    cols, rows = np.meshgrid(np.arange(w) + 0.5, np.arange(h) + 0.5)
    x, y = tr @ (cols, rows)
    return code(np.floor(np.asarray(x) / gsd).astype(np.int64), np.floor(np.asarray(y) / gsd).astype(np.int64))


def expected(cell: Cell, gsd: float) -> np.ndarray:
    """What cell pixel (i, j) must hold: the source pixel whose centre is the cell pixel's centre."""
    P = round(cell.cell_m / gsd)
    x0, _, _, y1 = cell.bounds
    j, i = np.meshgrid(np.arange(P), np.arange(P))
    return code(round(x0 / gsd) + j, round(y1 / gsd) - 1 - i)


@pytest.mark.parametrize("gsd", [10.0, 30.0, 60.0], ids=["10m", "30m", "60m"])
def test_pattern_lands_on_expected_pixels_of_a_strip(tmp_path, gsd):
    """The reader onto a strip of three adjacent cells (what a task reads in one go)."""
    cells = demo_cells(3)
    tr, shape = cover_transform(cells, gsd, margin_px=5)
    path = write_tif(tmp_path / "p.tif", coded_raster(tr, shape, gsd)[None], tr, cells[0].epsg, nodata=0)
    out = read_onto(str(path), strip_geobox(cells, gsd), dtype="uint16", nodata=0)[0]
    P = round(cells[0].cell_m / gsd)
    for k, cell in enumerate(cells):
        np.testing.assert_array_equal(out[:, k * P : (k + 1) * P], expected(cell, gsd))


def _landsat_scene(d, cells):
    spec = load_sensor("landsat")
    d.mkdir(parents=True)
    tr, shape = cover_transform(cells, 30.0, margin_px=7)
    base = coded_raster(tr, shape, 30.0)
    assets = {b.asset: str(write_tif(d / f"{b.asset}.tif", base[None], tr, 32633, nodata=0)) for b in spec.bands}
    assets["qa_pixel"] = str(write_tif(d / "qa.tif", np.full((1, *shape), 1 << 6, np.uint16), tr, 32633))
    return assets


def _s2_scene(d, cells):
    spec = load_sensor("s2")
    d.mkdir(parents=True)
    tr, shape = cover_transform(cells, 10.0, margin_px=3)
    base = coded_raster(tr, shape, 10.0)
    assets = {b.asset: str(write_tif(d / f"{b.asset}.tif", base[None], tr, 32633, nodata=0)) for b in spec.bands}
    assets["SCL"] = str(write_tif(d / "SCL.tif", np.full((1, *shape), 4, np.uint8), tr, 32633))
    return assets


def test_tile_puts_every_pixel_where_it_belongs(tmp_path):
    """Through ``tile``: 2 x 2 cells (two strips, shards of 3 so a shard spans strips) at 10 and
    30 m; every stored patch equals the expected pixels of its cell."""
    cells = demo_cells(2, 2)
    plan = pd.concat([
        plan_rows("landsat", "LC_ALIGN", cells, _landsat_scene(tmp_path / "l", cells)),
        plan_rows("s2", "S2_ALIGN", cells, _s2_scene(tmp_path / "s", cells)),
    ], ignore_index=True)
    store = tmp_path / "a.zarr"
    s = tile(plan, store, scheduler="synchronous", progress=False, config=TileConfig(patches_per_shard=3))
    assert s.patches_written == 8 and validate(store) == []
    idx = gpd.read_parquet(store / "index" / "patches")
    root = zarr.open_group(str(store), mode="r")
    by_id = {c.id: c for c in cells}
    for r in idx.itertuples():
        gsd = 10.0 if r.sensor == "s2" else 30.0
        patch = root[r.sensor][r.batch]["data"][int(r.row)]
        for band in patch:
            np.testing.assert_array_equal(band, expected(by_id[r.cell_id], gsd), err_msg=r.patch_id)
        assert (root[r.sensor][r.batch]["mask"][int(r.row)] == 0).all()


def test_tile_scattered_cells_land_exactly(tmp_path):
    cells = demo_cells(3, 3)
    scattered = [cells[0], cells[2], cells[4], cells[6]]  # 4 of 9, few of them adjacent
    plan = plan_rows("s2", "S2_SCAT", scattered, _s2_scene(tmp_path / "s", cells))
    store = tmp_path / "a.zarr"
    tile(plan, store, scheduler="synchronous", progress=False, config=TileConfig(coreg=False))
    idx = gpd.read_parquet(store / "index" / "patches")
    root = zarr.open_group(str(store), mode="r")
    by_id = {c.id: c for c in scattered}
    assert len(idx) == 4
    for r in idx.itertuples():
        np.testing.assert_array_equal(root["s2"][r.batch]["data"][int(r.row)][0], expected(by_id[r.cell_id], 10.0))
