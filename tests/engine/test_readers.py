"""Readers: known patterns land on the expected cell pixels; QA -> mask flags; clear errors."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
from pyproj import Transformer

from spectralearth_data.catalog import load_sensor
from spectralearth_data.engine.readers import SceneRef, read_scene
from spectralearth_data.engine.readers.cog import read_onto
from spectralearth_data.errors import InputDataError
from spectralearth_data.masks import MaskFlag

from .synth import cover_transform, demo_cells, enmap_scene, item, ramp, s2_scene, write_tif


def _ref(scene_id, assets, epsg=32633, props=None):
    return SceneRef(scene_id, "local", assets, item(scene_id, "2024-06-01T10:00:00Z", assets, epsg, props))


def test_s2_same_zone_is_bit_exact(tmp_path):
    cell = demo_cells(1)[0]
    assets, tr, _ = s2_scene(tmp_path, "S2A_same", [cell])
    spec = load_sensor("s2")
    out = read_scene(spec, _ref("S2A_same", assets), cell.geobox(10.0))
    # the cell's pixel (i, j) must hold the source pixel at the same map position
    expect = ramp(cell.geobox(10.0).affine, (96, 96), 2000.0, 2.0, 1.0, tr.c, tr.f).astype(np.uint16)
    assert out.data.shape == (12, 96, 96)
    np.testing.assert_array_equal(out.data[3], expect + 30)
    assert out.mask.max() == 0


def test_s2_neighbour_zone_is_warped_onto_cell(tmp_path):
    cell = demo_cells(1)[0]
    assets, tr, _ = s2_scene(tmp_path, "S2A_z32", [cell], epsg=32632)
    out = read_scene(load_sensor("s2"), _ref("S2A_z32", assets, epsg=32632), cell.geobox(10.0))
    gb = cell.geobox(10.0)
    cols, rows = np.meshgrid(np.arange(96) + 0.5, np.arange(96) + 0.5)
    x, y = gb.affine @ (cols, rows)
    sx, sy = Transformer.from_crs(cell.epsg, 32632, always_xy=True).transform(x, y)
    expect = 2000.0 + 2.0 * (sx - tr.c) + 1.0 * (tr.f - sy)
    # bilinear of a linear ramp (20 DN per pixel in x) is exact up to integer rounding and GDAL's
    # 0.125 px approximate transformer; a half-pixel misplacement would be off by ~10 DN
    err = out.data[0].astype(float) - expect
    assert np.abs(err).max() <= 0.25 * 20
    assert abs(err.mean()) <= 1.0


def test_half_pixel_offset_landsat_like_bilinear(tmp_path):
    """A 30 m source shifted by half a pixel: bilinear gives the ramp at the cell pixel centres."""
    cell = demo_cells(1)[0]
    gb = cell.geobox(30.0)
    x0, y1 = cell.bounds[0] - 15.0 - 30 * 4, cell.bounds[3] + 15.0 + 30 * 4
    from affine import Affine

    tr = Affine(30, 0, x0, 0, -30, y1)
    src = ramp(tr, (42, 42), 10000.0, 2.0, 1.0, x0, y1).astype(np.float32)
    path = write_tif(tmp_path / "l.tif", src[None], tr, 32633, nodata=0)
    out = read_onto(str(path), gb, dtype="float32", nodata=0)
    expect = ramp(gb.affine, (32, 32), 10000.0, 2.0, 1.0, x0, y1)
    np.testing.assert_allclose(out[0], expect, atol=1e-2)


def test_enmap_cube_and_quality_layers_to_mask(tmp_path):
    cell = demo_cells(1)[0]
    assets, _tr, _shape = enmap_scene(tmp_path, "ENMAP_1", [cell])
    # cloud in the scene's top rows: the catalog's cloud layer = 1
    import rasterio

    spec = load_sensor("enmap")
    cloud_layer = next(e.layer for e in spec.qa.entries if e.flags == ("cloud",))
    with rasterio.open(assets[cloud_layer], "r+") as ds:
        a = ds.read()
        a[:, :12, :] = 1
        ds.write(a)
    out = read_scene(spec, _ref("ENMAP_1", assets), cell.geobox(30.0))
    assert out.data.shape == (224, 32, 32) and out.data.dtype == np.int16
    # 8 px margin: source rows 8..11 are the cell's rows 0..3
    assert (out.mask[:4] & MaskFlag.CLOUD).all() and not (out.mask[4:] & MaskFlag.CLOUD).any()
    # unusable all-nodata bands do not flag pixels
    assert not (out.mask & (MaskFlag.NODATA | MaskFlag.SATURATED)).any()


DESIS_RESPONSE = Path(__file__).resolve().parents[1] / "data/fixtures/dlr/desis_l2a_search_3items.json"


def _desis_scene(tmp_path, code: str = "EPSG:32633"):
    """A DESIS scene shaped like a recorded DLR item (asset keys image / quality2 / quality ...,
    proj:* only on `image`, item "proj:epsg": null beside proj:code), its two rasters written
    locally: a 235-band int16 cube and a 10-band uint8 QL_QUALITY-2 with known layers set."""
    import json

    cell = demo_cells(1)[0]
    tr, shape = cover_transform([cell], 30.0)  # 8 px margin: source row/col 8 = cell row/col 0
    cube = np.full((235, *shape), 1200, np.int16)
    ql2 = np.zeros((10, *shape), np.uint8)
    ql2[6, 8:12] = 1  # band 7, cloud over water -> cell rows 0..3
    ql2[5, 12:14] = 1  # band 6, cloud over land -> cell rows 4..5
    ql2[0, 14:16] = 1  # band 1, shadow -> rows 6..7
    ql2[2, 16:18] = 1  # band 3, snow -> rows 8..9
    ql2[7, :, 8:12] = 1  # band 8, water -> cols 0..3
    ql2[3:5, 18:20] = 1  # bands 4-5, haze over land / water: no flag
    ql2[1] = 1  # band 2, land everywhere: no flag
    ql2[8], ql2[9] = 15, 60  # AOT550 x 100 and water vapour x 42: values, not flags
    item = json.loads(DESIS_RESPONSE.read_text())["features"][0]
    item["assets"]["image"]["href"] = str(write_tif(tmp_path / "SPECTRAL_IMAGE.tif", cube, tr, 32633, nodata=-32768))
    item["assets"]["image"]["proj:epsg"] = 32633
    item["assets"]["quality2"]["href"] = str(write_tif(tmp_path / "QL_QUALITY-2.tif", ql2, tr, 32633))
    item["properties"]["proj:code"] = code
    assets = {k: a["href"] for k, a in item["assets"].items()}
    return cell, SceneRef(item["id"], "dlr-geoservice", assets, item)


def test_desis_ql_quality_2_bands_to_mask(tmp_path):
    cell, scene = _desis_scene(tmp_path)
    spec = load_sensor("desis")
    assert scene.item["properties"]["proj:epsg"] is None
    out = read_scene(spec, scene, cell.geobox(30.0))
    m = out.mask[:, 4:]  # right of the water columns
    assert out.data.shape == (235, 32, 32)
    assert (m[:6] == MaskFlag.CLOUD).all()  # cloud over water (rows 0..3) or over land (4..5)
    assert (m[6:8] == MaskFlag.CLOUD_SHADOW).all()
    assert (m[8:10] == MaskFlag.SNOW_ICE).all()
    assert (m[10:] == 0).all()  # haze, land, AOT550 and water vapour set no flag
    assert (out.mask[10:, :4] == MaskFlag.WATER).all()


def test_desis_quality2_crs_is_checked_against_the_items_proj_code(tmp_path):
    """quality2 carries no proj:* of its own: the item's proj:code (with proj:epsg null) is what
    its raster must match."""
    cell, scene = _desis_scene(tmp_path, code="EPSG:32632")
    with pytest.raises(InputDataError, match="QL_QUALITY-2.tif.*EPSG:32632"):
        read_scene(load_sensor("desis"), scene, cell.geobox(30.0))


def test_scl_classes_and_nodata_propagate(tmp_path):
    cell = demo_cells(1)[0]
    from .synth import cover_transform

    _, shape = cover_transform([cell], 10.0)
    scl = np.full((1, *shape), 4, np.uint8)
    scl[:, 8:18, :] = 9  # cloud high probability -> rows 0..9 of the cell
    scl[:, 18:20, :] = 3  # cloud shadow -> rows 10..11
    scl[:, :, 8:12] = 6  # water -> cols 0..3
    assets, _tr, _ = s2_scene(tmp_path, "S2_qa", [cell], scl=scl, nodata_box=(50, 60, 50, 60))
    out = read_scene(load_sensor("s2"), _ref("S2_qa", assets), cell.geobox(10.0))
    m = out.mask
    assert (m[:10, 4:] == MaskFlag.CLOUD).all()
    assert (m[10:12, 4:] == MaskFlag.CLOUD_SHADOW).all()
    assert (m[20:, :4] & MaskFlag.WATER).all()
    assert (m[42:52, 42:52] & MaskFlag.NODATA).all()
    assert not (m[60:, 60:] & MaskFlag.NODATA).any()


def test_old_processing_baseline_is_harmonized(tmp_path):
    cell = demo_cells(1)[0]
    assets, _tr, _ = s2_scene(tmp_path, "S2_old", [cell])
    spec = load_sensor("s2")
    new = read_scene(spec, _ref("S2_old", assets, props={"s2:processing_baseline": "05.10"}), cell.geobox(10.0))
    old = read_scene(spec, _ref("S2_old", assets, props={"s2:processing_baseline": "03.01"}), cell.geobox(10.0))
    # same DNs; the old-baseline scene has no offset, so it is stored +1000 DN to decode alike
    np.testing.assert_array_equal(old.data.astype(int) - new.data.astype(int), 1000)


@pytest.mark.parametrize("case", ["missing", "corrupt", "truncated", "no-crs", "wrong-crs"])
def test_bad_rasters_raise_clear_errors(tmp_path, case):
    cell = demo_cells(1)[0]
    assets, tr, _ = s2_scene(tmp_path, "S2_bad", [cell])
    epsg = 32633
    target = assets["B04"]
    if case == "missing":
        assets["B04"] = str(tmp_path / "nope.tif")
    elif case == "corrupt":
        Path(target).write_bytes(b"II*\x00garbage" * 100)
    elif case == "truncated":
        data = Path(target).read_bytes()
        Path(target).write_bytes(data[: len(data) // 3])
    elif case == "no-crs":
        src = np.ones((1, 20, 20), np.uint16)
        write_tif(tmp_path / "nocrs.tif", src, tr, None)
        assets["B04"] = str(tmp_path / "nocrs.tif")
    elif case == "wrong-crs":
        epsg = 32632
    with pytest.raises(InputDataError, match="S2_bad|nope.tif|nocrs.tif|B04"):
        read_scene(load_sensor("s2"), _ref("S2_bad", assets, epsg=epsg), cell.geobox(10.0))


def test_warped_patch_barely_depends_on_its_strip_neighbours(tmp_path):
    """A cell warped alone or inside a strip of three (what a resumed run vs a clean run may do)
    gets the same values up to 1 DN of rounding: the bilinear kernel does not widen with the
    extent of the warp."""
    from spectralearth_data.engine.tasks import strip_geobox

    cells = demo_cells(3)
    assets, _, _ = s2_scene(tmp_path, "S2_Z32", cells, epsg=32632, tex=3000.0)
    strip = read_onto(assets["B04"], strip_geobox(cells, 10.0), dtype="uint16", nodata=0)[0]
    for k, cell in enumerate(cells):
        alone = read_onto(assets["B04"], strip_geobox([cell], 10.0), dtype="uint16", nodata=0)[0]
        assert np.abs(alone.astype(int) - strip[:, k * 96 : (k + 1) * 96]).max() <= 1
