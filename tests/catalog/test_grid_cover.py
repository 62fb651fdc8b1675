"""The grid package's two covers agree, its one cell-id formatter/parser round-trips, and its one
pixels-per-cell check is the one the catalog and the model config apply (DESIGN.md, "The grid").

``footprint_cells`` (all footprints of a zone at once: scanline for y-monotone footprints, a
vectorized shapely test for the rest) must give, per footprint, exactly the cells of the
per-geometry reference ``cells_covering``: checked here on one batch of footprints that mixes
zone interiors with UTM zone borders, the equator, both UTM/UPS borders, the antimeridian,
concave shapes, holes and multi-part footprints.
"""

from __future__ import annotations

import dataclasses
import math
import pickle

import numpy as np
import pytest
import shapely
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from shapely.geometry import box

from spectralearth_data.catalog import load_sensor
from spectralearth_data.errors import CatalogError, GridError, PixelGridError
from spectralearth_data.grid import (
    Cell,
    cell_for,
    cell_ids,
    cells_covering,
    footprint_cell_arrays,
    footprint_cells,
    format_cell_id,
    parse_cell_id,
    pixels_per_cell,
)


def _rotated(lon: float, lat: float, w: float, h: float, deg: float) -> shapely.Polygon:
    """A ``w`` x ``h`` degree rectangle centred on ``(lon, lat)``, rotated by ``deg``."""
    return shapely.affinity.rotate(box(lon - w / 2, lat - h / 2, lon + w / 2, lat + h / 2), deg)


FOOTPRINTS = {
    "inside-zone-33": _rotated(14.6, 47.3, 0.4, 0.3, 12.0),  # y-monotone: the scanline path
    "utm-border-12e": box(11.8, 50.0, 12.2, 50.3),
    "rotated-over-border-6e": _rotated(6.0, 45.0, 0.5, 0.4, -15.0),
    "two-borders": box(5.7, 30.0, 12.3, 30.25),  # zones 31, 32 and 33
    "equator": box(-3.0, -0.2, -2.7, 0.2),
    "equator-and-border": box(-0.2, -0.15, 0.2, 0.15),
    "utm-ups-north": box(5.0, 83.8, 7.0, 84.2),
    "ups-south": box(10.0, -80.3, 12.5, -79.8),
    "zone-border-north": box(-0.2, 80.5, 0.3, 80.9),
    "antimeridian-unsplit": shapely.Polygon([(179.8, -17.3), (-179.8, -17.3), (-179.8, -17.0), (179.8, -17.0)]),
    "concave-L": shapely.Polygon([(12.9, 51.9), (13.4, 51.9), (13.4, 52.05), (13.12, 52.05), (13.12, 52.3), (12.9, 52.3)]),
    "concave-L-on-border": shapely.Polygon([(17.7, 40.0), (18.3, 40.0), (18.3, 40.1), (17.9, 40.1), (17.9, 40.4), (17.7, 40.4)]),
    "hole": box(-105.3, 39.8, -104.8, 40.2).difference(box(-105.1, 39.95, -105.0, 40.05)),
    "multipart": shapely.MultiPolygon([box(151.0, -34.0, 151.2, -33.8), box(152.9, -34.0, 153.1, -33.8)]),
    "sliver": box(13.0, 52.0, 13.01, 52.01),  # smaller than a cell: no full cover
}


def _by_footprint(df, n: int) -> list[set[str]]:
    return [set(df.loc[df["fp"] == i, "cell_id"]) for i in range(n)]


@pytest.mark.parametrize("min_fraction", [1.0, 0.5, 0.0])
def test_vectorized_cover_equals_cells_covering_per_footprint(min_fraction):
    names = list(FOOTPRINTS)
    geoms = np.array([FOOTPRINTS[n] for n in names], dtype=object)
    got = _by_footprint(footprint_cells(geoms, 3840, min_fraction), len(names))
    for name, cells in zip(names, got):
        want = {c.id for c in cells_covering(FOOTPRINTS[name], 3840, min_fraction)}
        assert cells == want, name
    # the batch exercises zone borders on both sides, both caps and both hemispheres
    epsgs = {c[:5] for cells in got for c in cells}
    assert {"32632", "32633", "32661", "32761", "32701", "32760"} <= epsgs
    if min_fraction == 1.0:
        assert got[names.index("sliver")] == set()


@settings(max_examples=25, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(edge=st.integers(-29, 29), lat=st.floats(-79.0, 83.0), dx=st.floats(-0.3, 0.3),
       w=st.floats(0.05, 0.6), h=st.floats(0.05, 0.4), deg=st.floats(-30, 30), cell_m=st.sampled_from([960, 3840]))
def test_vectorized_cover_equals_cells_covering_at_random_zone_borders(edge, lat, dx, w, h, deg, cell_m):
    geom = _rotated(6.0 * edge + dx, lat, w, h, deg)
    got = footprint_cells(np.array([geom], dtype=object), cell_m, 1.0)
    assert set(got["cell_id"]) == {c.id for c in cells_covering(geom, cell_m, 1.0)}


def test_footprint_cell_arrays_are_the_frame_without_ids():
    geoms = np.array(list(FOOTPRINTS.values()), dtype=object)
    fp, epsg, col, row = footprint_cell_arrays(geoms, 3840, 1.0)
    df = footprint_cells(geoms, 3840, 1.0)
    got = sorted(zip(fp.tolist(), cell_ids(epsg, col, row).tolist()))
    assert sorted(set(got)) == sorted(zip(df["fp"], df["cell_id"]))
    with pytest.raises(GridError, match="multiple of 60"):
        footprint_cell_arrays(geoms, 1000, 1.0)


# -- the cell id ------------------------------------------------------------------------------------


@settings(max_examples=60, deadline=None)
@given(epsg=st.sampled_from([32601, 32633, 32660, 32701, 32756, 32760, 32661, 32761]),
       col=st.integers(0, 10**6), row=st.integers(0, 10**7))
def test_one_id_format_and_its_parser_round_trip(epsg, col, row):
    cid = format_cell_id(epsg, col, row)
    assert cid == f"{epsg}_{col:05d}_{row:05d}" == Cell(epsg, col, row, 3840).id
    assert cell_ids(np.array([epsg]), np.array([col]), np.array([row])).tolist() == [cid]
    back = parse_cell_id(cid, 960)
    assert (back.epsg, back.col, back.row, back.cell_m) == (epsg, col, row, 960)


def test_vectorized_ids_match_the_cells_of_points():
    cells = [cell_for(lon, lat, 3840) for lon, lat in [(13.03, 52.4), (-105.0, 40.0), (151.2, -33.9), (100.0, 85.0)]]
    ids = cell_ids(np.array([c.epsg for c in cells], dtype=np.int64), np.array([c.col for c in cells], dtype=np.int64),
                   np.array([c.row for c in cells], dtype=np.int64))
    assert ids.dtype == object and ids.tolist() == [c.id for c in cells]
    assert cell_ids(np.zeros(0, np.int64), np.zeros(0, np.int64), np.zeros(0, np.int64)).shape == (0,)


# -- pixels per cell --------------------------------------------------------------------------------


def test_pixels_per_cell_returns_the_count_or_a_typed_error():
    assert pixels_per_cell(3840, 10) == 384 and pixels_per_cell(3840, 30.0) == 128 and pixels_per_cell(60, 60) == 1
    assert pixels_per_cell(3840, 0.3) == 12800  # 3840 / 0.3 = 12800.000000000002: float rounding only
    for cell_m, gsd in [(965, 10), (30, 60), (3840, 3840.0001), (120.000006, 60)]:
        with pytest.raises(PixelGridError, match=f"cell size {cell_m} m .* {gsd} m pixel") as e:
            pixels_per_cell(cell_m, gsd)
        assert isinstance(e.value, GridError) and (e.value.cell_m, e.value.gsd) == (cell_m, gsd)
        again = pickle.loads(pickle.dumps(e.value))  # raised on Dask workers
        assert str(again) == str(e.value) and again.gsd == gsd


def test_catalog_and_model_config_apply_the_one_check():
    s2 = load_sensor("s2")
    assert s2.patch_px_for(3840) == pixels_per_cell(3840, s2.gsd_m) == s2.patch_px
    with pytest.raises(CatalogError, match=r"cell size 965 m is not a multiple of s2's 10(\.0)? m GSD"):
        s2.patch_px_for(965)
    odd = s2.model_copy(update={"gsd_m": 0.3})
    assert odd.patch_px_for(3840) == pixels_per_cell(3840, 0.3)

    from spectralearth_model.config import ModelConfigError, preset

    cfg = preset("tiny", sensors=["emit", "s2"])
    for token_m in (cfg.token_m, 2 * cfg.token_m):
        assert dataclasses.replace(cfg, token_m=token_m).token_m == token_m
    off = cfg.token_m * (1 + 1e-7)  # within the old 1e-6 of the model config, outside the grid's 1e-9
    assert not math.isclose(off / 60, round(off / 60), abs_tol=1e-9)
    with pytest.raises(ModelConfigError, match=f"token_m={off} is not a multiple of emit's"):
        dataclasses.replace(cfg, token_m=off)
