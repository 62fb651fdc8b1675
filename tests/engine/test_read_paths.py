"""The fast read paths of a tiling task give the same pixels as plain per-raster reads:
kept-open datasets, several single-band rasters warped in one call, and row-major tasks."""

from __future__ import annotations

import numpy as np
import rasterio

from spectralearth_data.engine.config import TileConfig
from spectralearth_data.engine.readers import cog
from spectralearth_data.engine.readers.cog import keep_open, read_many_onto, read_onto
from spectralearth_data.engine.tasks import strip_geobox, strips
from spectralearth_data.engine.tile import build_tasks
from spectralearth_data.grid import parse_cell_id

from .synth import CELL_M, demo_cells, plan_rows, s2_scene, write_tif

BANDS = ("B02", "B03", "B04", "B08")


def _alone(assets, keys, gb):
    return [read_onto(assets[k], gb, dtype="uint16", nodata=0) for k in keys]


def test_bands_warped_together_equal_bands_warped_alone(tmp_path):
    cells = demo_cells(3)
    assets, _, _ = s2_scene(tmp_path, "S2_Z32", cells, epsg=32632, tex=3000.0)
    gb = strip_geobox(cells, 10.0)
    with keep_open():
        together = read_many_onto([(assets[k], None, 32632) for k in BANDS], gb, dtype="uint16", nodata=0)
    for a, b in zip(together, _alone(assets, BANDS, gb)):
        assert a.shape == (1, 96, 288)
        np.testing.assert_array_equal(a, b)
    assert all(a.min() > 0 for a in together)  # fully covered, no fill


def test_fill_in_one_band_still_flags_nodata(tmp_path):
    """A band whose sampled window holds the fill value is warped with its nodata (its fill
    pixels stay fill in the output); its neighbours without fill are unaffected."""
    cells = demo_cells(2)
    assets, tr, _ = s2_scene(tmp_path, "S2_FILL", cells, epsg=32632, tex=3000.0)
    with rasterio.open(assets["B04"]) as ds:
        arr = ds.read()
    arr[:, 40:120, 60:160] = 0
    assets["B04"] = str(write_tif(tmp_path / "B04_fill.tif", arr, tr, 32632, nodata=0))
    gb = strip_geobox(cells, 10.0)
    with keep_open():
        together = read_many_onto([(assets[k], None, 32632) for k in BANDS], gb, dtype="uint16", nodata=0)
    alone = _alone(assets, BANDS, gb)
    for a, b in zip(together, alone):
        np.testing.assert_array_equal(a, b)
    holes = together[BANDS.index("B04")] == 0
    assert holes.sum() > 1000
    assert (together[BANDS.index("B03")][holes] > 0).all()


def test_keep_open_reuses_one_dataset_and_closes_it(tmp_path):
    cells = demo_cells(2)
    assets, _, _ = s2_scene(tmp_path, "S2_KEEP", cells, epsg=32632)
    with keep_open():
        first = read_onto(assets["B04"], strip_geobox(cells[:1], 10.0), dtype="uint16", nodata=0)
        second = read_onto(assets["B04"], strip_geobox(cells[1:], 10.0), dtype="uint16", nodata=0)
        kept = dict(cog._KEPT.datasets)
        assert len(kept) == 1
    assert all(ds.closed for ds in kept.values())
    assert cog._KEPT.datasets is None
    both = read_onto(assets["B04"], strip_geobox(cells, 10.0), dtype="uint16", nodata=0)
    assert np.abs(both.astype(int) - np.concatenate([first, second], axis=2)).max() <= 1


def test_tasks_take_cells_row_by_row(tmp_path):
    """A scene over 4 x 4 cells cut into tasks of 4: each task is one grid row, read as one strip."""
    cells = demo_cells(4, 4)
    assets = {k: str(tmp_path / f"{k}.tif") for k in (*BANDS, "SCL")}  # not read by build_tasks
    plan = plan_rows("s2", "S2_ROWS", cells, assets)
    tasks, skipped = build_tasks(plan, CELL_M, set(), {}, TileConfig(patches_per_shard=4))
    assert skipped == 0 and len(tasks) == 4
    for t in tasks:
        task_cells = [parse_cell_id(c.cell_id, CELL_M) for c in t.cells]
        assert len({c.row for c in task_cells}) == 1
        assert [len(run) for run in strips(task_cells)] == [4]
