"""Partitions of the grid (spectralearth_data.grid.partitions): ids, one partition per cell, and
the partitions a footprint is given to cover every partition its cells fall in.

Expected values are recomputed here independently (the band of a cell from its centre's latitude
with pyproj, the zone from the EPSG code), and literal ids pin the naming across runs."""

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
from spectralearth_data.grid import cell_for, footprint_cells
from spectralearth_data.grid.partitions import (
    Partition,
    PartitionScheme,
    cell_partition,
    footprint_partition_keys,
    partition_keys,
    partition_of,
    region_partitions,
    world_partitions,
)

SETTINGS = settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.too_slow])
SCHEMES = [PartitionScheme(), PartitionScheme(zones=6, band_deg=8.0), PartitionScheme(zones=1, band_deg=0.5),
           PartitionScheme(zones=15, band_deg=45.0)]


def independent_partition_id(epsg: int, col: int, row: int, cell_m: int, scheme: PartitionScheme) -> str:
    """The partition id by the module docstring's rule, with pyproj directly."""
    lat = Transformer.from_crs(epsg, 4326, always_xy=True).transform((col + 0.5) * cell_m, (row + 0.5) * cell_m)[1]
    lo, hi = {32661: (84, 90), 32761: (-90, -80)}.get(epsg, (0, 84) if epsg < 32700 else (-80, 0))
    band = min(max(math.floor(lat / scheme.band_deg), math.floor(lo / scheme.band_deg)),
               math.ceil(hi / scheme.band_deg) - 1)
    if epsg in (32661, 32761):
        return f"{epsg}_b{band:+03d}"
    base, zone = divmod(epsg, 100)
    first = (zone - 1) // scheme.zones * scheme.zones + 1
    last = min(first + scheme.zones - 1, 60)
    names = f"{base * 100 + first}" if first == last else f"{base * 100 + first}-{base * 100 + last}"
    return f"{names}_b{band:+03d}"


# (lon, lat, scheme) -> partition id, pinned: a change renames every partition of a running build
PINNED = [
    (13.03, 52.40, PartitionScheme(), "32633_b+06"),  # Potsdam
    (13.03, 44.00, PartitionScheme(), "32633_b+05"),
    (13.03, 52.40, PartitionScheme(zones=6), "32631-32636_b+06"),
    (151.2, -33.9, PartitionScheme(), "32756_b-05"),  # Sydney
    (151.2, -33.9, PartitionScheme(zones=6), "32755-32760_b-05"),
    (100.0, 85.0, PartitionScheme(), "32661_b+10"),  # UPS north
    (0.0, -85.0, PartitionScheme(), "32761_b-11"),  # UPS south
    (-105.0, 40.0, PartitionScheme(zones=15, band_deg=45.0), "32601-32615_b+00"),
]


@pytest.mark.parametrize(("lon", "lat", "scheme", "expected"), PINNED)
def test_pinned_partition_ids(lon, lat, scheme, expected):
    cell = cell_for(lon, lat, 3840)
    assert cell_partition(cell, scheme).id == expected
    assert independent_partition_id(cell.epsg, cell.col, cell.row, 3840, scheme) == expected


@SETTINGS
@given(lon=st.floats(-179.99, 179.99), lat=st.floats(-89.9, 89.9), cell_m=st.sampled_from([960, 3840, 7680]),
       scheme=st.sampled_from(SCHEMES))
def test_every_cell_has_the_one_partition_of_its_zone_group_and_centre_band(lon, lat, cell_m, scheme):
    cell = cell_for(lon, lat, cell_m)
    part = cell_partition(cell, scheme)
    assert part.id == independent_partition_id(cell.epsg, cell.col, cell.row, cell_m, scheme)
    assert part.epsg0 <= cell.epsg <= part.epsg1
    # the partition's box holds the cell's centre (up to the clamp at the projection's edges, ~1 cell)
    clon, clat = cell.center_lonlat()
    lon0, lat0, lon1, lat1 = part.bounds
    pad = cell_m / 100_000
    assert lat0 - pad <= clat <= lat1 + pad
    if cell.epsg not in (32661, 32761):
        clon = clon + 360 if clon < lon0 - 180 else clon - 360 if clon > lon1 + 180 else clon  # across 180
        assert lon0 - 0.5 <= clon <= lon1 + 0.5
    # the key round-trips and the vectorized form agrees
    assert partition_of(part.key, scheme) == part
    assert partition_keys([cell.epsg], [cell.col], [cell.row], cell_m, scheme)[0] == part.key


def test_world_partitions_are_unique_and_hold_every_cell():
    scheme = PartitionScheme()
    world = world_partitions(scheme)
    # 60 zones x (11 north + 10 south bands of 8 degrees) + 2 bands in each UPS cap
    assert len(world) == 60 * 21 + 4
    assert len({p.id for p in world}) == len(world) == len({p.key for p in world})
    assert [p.key for p in world] == sorted(p.key for p in world)
    assert len(world_partitions(PartitionScheme(zones=6, band_deg=8.0))) == 10 * 21 + 4
    assert len(world_partitions(PartitionScheme(zones=15, band_deg=45.0))) == 4 * 4 + 2
    keys = {p.key for p in world}
    rng = np.random.default_rng(3)
    for lon, lat in zip(rng.uniform(-180, 180, 200), rng.uniform(-90, 90, 200)):
        assert cell_partition(cell_for(float(lon), float(lat), 3840), scheme).key in keys
    # the boxes tile the Earth: areas (in square degrees) add up to the whole lon/lat rectangle
    assert sum(p.geometry.area for p in world) == pytest.approx(360 * 180)


# footprints at the places where partitions meet: zone borders, band edges, the equator, 84 N and
# 80 S (UTM/UPS), the antimeridian
CORNERS = [(12.0, 48.0), (0.0, 0.0), (-174.0, 84.0), (179.9, -16.0), (-102.0, -80.0), (18.0, 56.0)]


@SETTINGS
@given(corner=st.sampled_from(CORNERS), dx=st.floats(-0.6, 0.3), dy=st.floats(-0.6, 0.3),
       w=st.floats(0.02, 0.6), h=st.floats(0.02, 0.6), cell_m=st.sampled_from([960, 1920, 3840]),
       scheme=st.sampled_from(SCHEMES))
def test_a_footprint_is_given_every_partition_its_cells_fall_in(corner, dx, dy, w, h, cell_m, scheme):
    lon, lat = corner[0] + dx, corner[1] + dy
    geom = box(lon, lat, lon + w, lat + h)
    if lon + w > 180:  # wraps across the antimeridian, as footprints there do
        geom = shapely.union(box(lon, lat, 180, lat + h), box(-180, lat, lon + w - 360, lat + h))
    cells = footprint_cells([geom], cell_m, 0.0)  # every cell it touches
    want = set(partition_keys(cells["epsg"], cells["col"], cells["row"], cell_m, scheme).tolist())
    fp, keys = footprint_partition_keys([geom], cell_m, scheme)
    assert set(fp.tolist()) <= {0}
    assert want <= set(keys.tolist())


def test_footprint_partition_keys_for_many_footprints_at_once():
    scheme = PartitionScheme(band_deg=1.0)
    geoms = [box(11.9, 47.9, 12.1, 48.1), box(5.0, 10.2, 5.3, 10.5), box(-1.0, -0.2, 0.5, 0.3)]
    fp, keys = footprint_partition_keys(geoms, 960, scheme)
    ids = {i: sorted(partition_of(k, scheme).id for k in keys[fp == i]) for i in range(3)}
    assert ids[0] == ["32632_b+47", "32632_b+48", "32633_b+47", "32633_b+48"]  # a corner of four
    assert ids[1] == ["32631_b+10"]
    # across the equator: north zones keep their cells in band 0, south zones in band -1
    assert ids[2] == ["32630_b+00", "32631_b+00", "32730_b-01", "32731_b-01"]
    assert footprint_partition_keys([], 960, scheme)[0].size == 0


def test_region_partitions_count_every_cell_once():
    region = box(11.5, 47.5, 12.5, 48.5)  # across the zone 32/33 border and the 48 N band edge
    cells = footprint_cells([region], 3840, 0.0)
    parts = region_partitions(region, 3840, PartitionScheme())
    assert [p.id for p, _ in parts] == ["32632_b+05", "32632_b+06", "32633_b+05", "32633_b+06"]
    assert sum(n for _, n in parts) == len(cells) == cells["cell_id"].nunique()
    assert all(n > 0 for _, n in parts)


@pytest.mark.parametrize(("kwargs", "match"), [
    ({"zones": 0}, "zones must be a whole number"),
    ({"zones": 61}, "zones must be a whole number"),
    ({"band_deg": 0.0}, "band must be 0.1..180"),
    ({"band_deg": 200.0}, "band must be 0.1..180"),
])
def test_bad_schemes_name_the_setting(kwargs, match):
    with pytest.raises(GridError, match=match):
        PartitionScheme(**kwargs)


def test_partition_boxes_and_ids():
    p = Partition(32631, 32636, 5, 8.0)
    assert p.id == "32631-32636_b+05"
    assert p.bounds == (0.0, 40.0, 36.0, 48.0)
    assert Partition(32733, 32733, -1, 8.0).bounds == (12.0, -8.0, 18.0, 0.0)
    assert Partition(32633, 32633, 10, 8.0).bounds == (12.0, 80.0, 18.0, 84.0)  # stops at 84 N (UPS above)
    assert Partition(32661, 32661, 10, 8.0).bounds == (-180.0, 84.0, 180.0, 88.0)


# -- the `spectralearth partitions` command (composed here into an app of its own: the lead
#    registers it in spectralearth_data/cli/__init__.py) --------------------------------------------


def partitions_app():
    from spectralearth_data.cli import command_group, make_app
    from spectralearth_data.cli.partitions_cmd import partitions_cmd

    group = command_group()
    group.command("partitions")(partitions_cmd)
    group.command("noop", hidden=True)(lambda: None)  # a group of one command would drop its name
    return make_app(group, help="test")


def run_cli(monkeypatch, *args: str) -> int:
    """Run the command as the console script does (errors: one line, exit 2); the exit code."""
    import sys

    from spectralearth_data.cli import run

    monkeypatch.setattr(sys, "argv", ["spectralearth", *args])
    with pytest.raises(SystemExit) as exit_info:
        run(partitions_app())
    return exit_info.value.code or 0


def test_partitions_command_lists_ids_and_cell_counts(tmp_path, capsys, monkeypatch):
    import json

    region = tmp_path / "across.geojson"
    region.write_text(json.dumps({"type": "Feature", "properties": {"name": "across"},
                                  "geometry": shapely.geometry.mapping(box(11.5, 47.5, 12.5, 48.5))}))
    code = run_cli(monkeypatch, "partitions", str(region), "--cell-m", "960", "--json")
    out = json.loads(capsys.readouterr().out)
    assert code == 0
    assert [r["id"] for r in out] == ["32632_b+05", "32632_b+06", "32633_b+05", "32633_b+06"]
    assert sum(r["cells"] for r in out) == len(footprint_cells([box(11.5, 47.5, 12.5, 48.5)], 960, 0.0))
    assert out[0]["bounds"] == [6.0, 40.0, 12.0, 48.0]
    code = run_cli(monkeypatch, "partitions", "demo", "--cell-m", "960", "--zones", "6")
    table = capsys.readouterr().out
    assert code == 0 and "32631-32636_b+06" in table and "Partitions of demo" in table


def test_partitions_command_bad_input_is_one_line_and_exit_2(capsys, monkeypatch):
    code = run_cli(monkeypatch, "partitions", "demo", "--zones", "0")
    err = capsys.readouterr().err
    assert code == 2 and err.count("\n") == 1 and "--zones" in err and "1..60" in err
    code = run_cli(monkeypatch, "partitions", "no-such-region")
    err = capsys.readouterr().err
    assert code == 2 and "unknown region 'no-such-region'" in err


def test_cell_outlines_of_many_cells_equal_each_cells_own_outline():
    # cell_outlines builds the plan's cell polygons for every cell of a partition at once
    from spectralearth_data.grid import cell_outlines

    cells = [cell_for(lon, lat, 3840) for lon, lat in [(13.03, 52.4), (151.2, -33.9), (179.99, 10.0), (100.0, 85.0)]]
    epsg, col, row = (np.array([getattr(c, a) for c in cells]) for a in ("epsg", "col", "row"))
    for densify in (2, 8):
        polys, lon4, lat4 = cell_outlines(epsg, col, row, 3840, densify)
        for c, p, lo, la in zip(cells, polys, lon4, lat4):
            assert shapely.equals_exact(p, c.polygon_lonlat(densify), 0)
            x0, y0, x1, y1 = c.bounds
            sw = Transformer.from_crs(c.epsg, 4326, always_xy=True).transform(x0, y0)
            assert (lo[0], la[0]) == pytest.approx(sw, abs=1e-9)  # corners SW, SE, NE, NW
