"""Property tests of the global grid (DESIGN.md, "The grid").

Expected cells are recomputed here independently with pyproj (zone from the longitude formula,
projected x/y floored by cell_m); the literal ids pin the contract across runs and machines.
"""

from __future__ import annotations

import math

import numpy as np
import pytest
import shapely
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from pyproj import Transformer
from shapely.geometry import box

from spectralearth_data.errors import GridError
from spectralearth_data.grid import Cell, cell_for, cells_covering, parse_cell_id, pixels_per_cell

GRID_SETTINGS = settings(
    max_examples=40, deadline=None, suppress_health_check=[HealthCheck.too_slow]
)

lons = st.floats(-179.999, 179.999, allow_nan=False)
lats = st.floats(-89.9, 89.9, allow_nan=False)
cell_sizes = st.sampled_from([960, 1920, 3840, 7680])


def independent_cell(lon: float, lat: float, cell_m: int) -> str:
    """The cell id by the DESIGN rule, using pyproj directly (points away from zone borders)."""
    if lat > 84:
        epsg = 32661
    elif lat < -80:
        epsg = 32761
    else:
        zone = int(math.floor((lon + 180) / 6)) + 1
        epsg = (32600 if lat >= 0 else 32700) + zone
    x, y = Transformer.from_crs(4326, epsg, always_xy=True).transform(lon, lat)
    return f"{epsg}_{math.floor(x / cell_m):05d}_{math.floor(y / cell_m):05d}"


# (lon, lat, cell_m) -> id pinned once; a change here breaks every published release.
PINNED = [
    (13.03, 52.40, 3840, "32633_00095_01512"),  # Potsdam (demo region)
    (13.03, 52.40, 960, "32633_00381_06049"),
    (-105.0, 40.0, 3840, "32613_00130_01153"),  # Colorado Front Range
    (151.2, -33.9, 3840, "32756_00086_01626"),  # Sydney, southern hemisphere
    (100.0, 85.0, 3840, "32661_00663_00545"),  # UPS north
    (0.0, -85.0, 3840, "32761_00520_00665"),  # UPS south
]


@pytest.mark.parametrize(("lon", "lat", "cell_m", "expected"), PINNED)
def test_pinned_ids_match_pyproj_and_stay_stable(lon, lat, cell_m, expected):
    assert independent_cell(lon, lat, cell_m) == expected
    assert cell_for(lon, lat, cell_m).id == expected


def test_polar_caps_use_ups():
    assert cell_for(15.0, 84.5, 3840).epsg == 32661
    assert cell_for(15.0, 83.5, 3840).epsg == 32633
    assert cell_for(15.0, -80.5, 3840).epsg == 32761
    assert cell_for(15.0, -79.5, 3840).epsg == 32733
    cells = cells_covering(box(-10, 86, 10, 86.05), 3840)
    assert cells and {c.epsg for c in cells} == {32661}


@GRID_SETTINGS
@given(lon=lons, lat=lats, cell_m=cell_sizes)
def test_id_round_trip_and_point_inside(lon, lat, cell_m):
    cell = cell_for(lon, lat, cell_m)
    assert parse_cell_id(cell.id, cell_m) == cell
    assert cell_for(lon, lat, cell_m) == cell  # deterministic
    x, y = Transformer.from_crs(4326, cell.epsg, always_xy=True).transform(lon, lat)
    x0, y0, x1, y1 = cell.bounds
    assert x0 <= x < x1 and y0 <= y < y1


@GRID_SETTINGS
@given(lon=lons, lat=st.floats(-79.0, 83.0), cell_m=cell_sizes)
def test_pixel_grids_nest_inside_the_cell(lon, lat, cell_m):
    cell = cell_for(lon, lat, cell_m)
    x0, y0, x1, y1 = cell.bounds
    boxes = {gsd: cell.geobox(gsd) for gsd in (10, 30, 60)}
    for gsd, gb in boxes.items():
        n = pixels_per_cell(cell_m, gsd)
        assert gb.shape == (n, n)
        bb = gb.extent.boundingbox
        assert (bb.left, bb.bottom, bb.right, bb.top) == pytest.approx((x0, y0, x1, y1), abs=1e-6)
        # every pixel edge is on the zone-wide gsd lattice
        assert gb.transform.c % gsd == 0 and gb.transform.f % gsd == 0
    # a 60 m pixel is exactly 2x2 30 m and 6x6 10 m pixels
    assert boxes[60].transform.a == 2 * boxes[30].transform.a == 6 * boxes[10].transform.a


@pytest.mark.parametrize("cell_m", [0, 100, 1000, 200_000])
def test_bad_cell_sizes_raise(cell_m):
    with pytest.raises(GridError):
        cell_for(13.0, 52.0, cell_m)


def test_bad_ids_raise_naming_the_id():
    for bad in ("33_1_2", "12345_00001_00002", "32633-00001-00002"):
        with pytest.raises(GridError, match=bad):
            parse_cell_id(bad, 3840)


@GRID_SETTINGS
@given(zone_edge=st.integers(1, 59), lat=st.floats(-79.5, 83.5))
def test_zone_border_points_get_one_cell_that_contains_them(zone_edge, lat):
    lon = -180.0 + 6.0 * zone_edge
    cell = cell_for(lon, lat, 960)
    assert cell.epsg % 100 in (zone_edge, zone_edge + 1)
    assert cell.polygon_lonlat(densify=16).buffer(1e-7).contains(shapely.Point(lon, lat))
    assert cell_for(lon, lat, 960) == cell


@settings(max_examples=15, deadline=None)
@given(zone_edge=st.integers(1, 59), lat=st.floats(-70.0, 70.0))
def test_coverage_across_a_zone_border_has_no_gaps(zone_edge, lat):
    lon = -180.0 + 6.0 * zone_edge
    area = box(lon - 0.01, lat, lon + 0.01, lat + 0.01)
    cells = cells_covering(area, 960)
    assert {c.epsg % 100 for c in cells} == {zone_edge, zone_edge + 1}
    union = shapely.union_all([c.polygon_lonlat(densify=16) for c in cells])
    assert union.buffer(1e-7).covers(area)
    # every point's owning cell is among the covering cells
    rng = np.random.default_rng(zone_edge)
    ids = {c.id for c in cells}
    for px, py in zip(rng.uniform(lon - 0.01, lon + 0.01, 20), rng.uniform(lat, lat + 0.01, 20)):
        assert cell_for(float(px), float(py), 960).id in ids


def _shift_east(geom):
    """Longitudes in [0, 360) so shapes reaching across 180 stay valid."""
    return shapely.transform(
        geom,
        lambda xy: np.column_stack([np.where(xy[:, 0] < 0, xy[:, 0] + 360, xy[:, 0]), xy[:, 1]]),
    )


@pytest.mark.parametrize("lon", [179.999, -179.999])
def test_cell_outline_across_the_antimeridian_is_split_not_global(lon):
    outline = cell_for(lon, -16.5, 3840).polygon_lonlat()
    assert outline.is_valid and outline.geom_type == "MultiPolygon"
    assert outline.area < 0.01  # a 3.84 km square, not a band around the globe
    assert outline.buffer(1e-9).contains(shapely.Point(lon, -16.5))


def test_antimeridian_polygon_is_covered_on_both_sides():
    # written unsplit, as many GeoJSON writers do: longitudes jump from 179.98 to -179.98
    ring = [
        (179.98, -16.52),
        (-179.98, -16.52),
        (-179.98, -16.48),
        (179.98, -16.48),
        (179.98, -16.52),
    ]
    cells = cells_covering(shapely.Polygon(ring), 960)
    assert {c.epsg for c in cells} == {32760, 32701}
    union = shapely.union_all([_shift_east(c.polygon_lonlat(densify=16)) for c in cells])
    west, east = box(179.98, -16.52, 180.0, -16.48), box(180.0, -16.52, 180.02, -16.48)
    assert union.buffer(1e-7).covers(west) and union.buffer(1e-7).covers(east)
    # the zone-1 cells alone cover the eastern half, the zone-60 cells the western half
    z1 = shapely.union_all(
        [_shift_east(c.polygon_lonlat(densify=16)) for c in cells if c.epsg == 32701]
    )
    z60 = shapely.union_all(
        [_shift_east(c.polygon_lonlat(densify=16)) for c in cells if c.epsg == 32760]
    )
    assert z1.buffer(1e-7).covers(east) and z60.buffer(1e-7).covers(west)


def _brute_fraction(geom, cell: Cell) -> float:
    """Share of the cell covered by a lon/lat geometry, computed in the cell's CRS."""
    fwd = Transformer.from_crs(4326, cell.epsg, always_xy=True)
    dense = geom.segmentize(0.001)
    proj = shapely.transform(dense, lambda xy: np.column_stack(fwd.transform(xy[:, 0], xy[:, 1])))
    square = box(*cell.bounds)
    return proj.intersection(square).area / square.area


@settings(max_examples=25, deadline=None)
@given(
    lon=st.floats(-170.0, 170.0),
    lat=st.floats(-75.0, 80.0),
    w=st.floats(0.01, 0.08),
    h=st.floats(0.01, 0.05),
    skew=st.floats(-0.4, 0.4),
)
def test_min_fraction_one_keeps_exactly_the_fully_covered_cells(lon, lat, w, h, skew):
    tilt = skew * h  # a convex quadrilateral, never self-intersecting
    geom = shapely.Polygon(
        [(lon, lat), (lon + w, lat + tilt), (lon + w, lat + h), (lon, lat + h + tilt)]
    )
    full = set(cells_covering(geom, 960, min_fraction=1.0))
    touched = set(cells_covering(geom, 960, min_fraction=0.0))
    assert full <= touched
    for cell in touched:
        frac = _brute_fraction(geom, cell)
        if cell in full:
            assert frac > 1 - 1e-6
        else:
            assert frac < 1 - 1e-9


@pytest.mark.parametrize(("lat0", "cap"), [(83.99, 32661), (-80.01, 32761)])
def test_coverage_across_a_polar_cap_border_has_no_gaps(lat0, cap):
    area = box(10.0, lat0, 10.2, lat0 + 0.02)
    cells = cells_covering(area, 960)
    assert cap in {c.epsg for c in cells} and len({c.epsg for c in cells}) == 2
    union = shapely.union_all([c.polygon_lonlat(densify=16) for c in cells])
    assert union.buffer(1e-7).covers(area)
