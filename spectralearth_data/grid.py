"""The global grid of cells (DESIGN.md, "The grid"). Pure functions, no I/O.

A cell is a ``cell_m`` x ``cell_m`` square in one projected CRS:

* the UTM zone of the ground it covers, ``zone = floor((lon + 180) / 6) + 1``,
  EPSG ``32600 + zone`` north of the equator and ``32700 + zone`` south of it;
* UPS north (EPSG:32661) for latitudes above 84 N and UPS south (EPSG:32761) below 80 S.

Inside that CRS, ``col = floor(x / cell_m)`` and ``row = floor(y / cell_m)``, so the cell edges fall
on every 10, 30 and 60 m pixel edge of the zone (3840 = 384*10 = 128*30 = 64*60). The cell id is
``f"{epsg}_{col:05d}_{row:05d}"``: the same point, cell size and code give the same id anywhere.

A point belongs to the cell of its own zone (the zone of the point's longitude/latitude), so every
point on Earth has exactly one cell and that cell contains it. Along zone borders the squares of
the two zones overlap (they are squares in two projections): a cell of zone Z is a valid cell
when any part of it lies in Z, and :func:`cells_covering` returns, per zone, the cells that cover
the zone's own part of the geometry, so coverage has no gaps at zone or polar-cap borders.
(Assigning border cells by their centre alone, as an earlier version did, leaves strips up to
half a cell wide that no cell covers.)
"""

from __future__ import annotations

import math
import re
from dataclasses import dataclass
from functools import lru_cache

import numpy as np
import shapely
from pyproj import CRS, Transformer
from shapely.geometry import box
from shapely.geometry.base import BaseGeometry

from .errors import GridError

UPS_NORTH = 32661
UPS_SOUTH = 32761
UTM_MAX_LAT = 84.0
UTM_MIN_LAT = -80.0
_ID_RE = re.compile(r"^(\d{5})_(\d+)_(\d+)$")


@dataclass(frozen=True, order=True)
class Cell:
    """One grid cell: ``epsg`` and integer ``col``/``row`` of a ``cell_m`` square."""

    epsg: int
    col: int
    row: int
    cell_m: int

    @property
    def id(self) -> str:
        return f"{self.epsg}_{self.col:05d}_{self.row:05d}"

    @property
    def bounds(self) -> tuple[float, float, float, float]:
        """``(xmin, ymin, xmax, ymax)`` in the cell's CRS: ``x = col*cell_m``, ``y = row*cell_m``."""
        x0, y0 = self.col * self.cell_m, self.row * self.cell_m
        return (float(x0), float(y0), float(x0 + self.cell_m), float(y0 + self.cell_m))

    @property
    def center_xy(self) -> tuple[float, float]:
        x0, y0, x1, y1 = self.bounds
        return ((x0 + x1) / 2, (y0 + y1) / 2)

    def center_lonlat(self) -> tuple[float, float]:
        lon, lat = _to_lonlat(self.epsg).transform(*self.center_xy)
        return float(lon), float(lat)

    def polygon_lonlat(self, densify: int = 8) -> BaseGeometry:
        """The cell outline in EPSG:4326, edges densified to ``densify`` points each.

        A cell reaching across the antimeridian comes back as a MultiPolygon of its two sides
        (not as a ring whose longitudes jump from +180 to -180, which would span the globe).
        """
        x0, y0, x1, y1 = self.bounds
        t = np.linspace(0.0, 1.0, densify, endpoint=False)
        xs = np.concatenate([x0 + (x1 - x0) * t, np.full_like(t, x1), x1 - (x1 - x0) * t, np.full_like(t, x0)])
        ys = np.concatenate([np.full_like(t, y0), y0 + (y1 - y0) * t, np.full_like(t, y1), y1 - (y1 - y0) * t])
        lon, lat = _to_lonlat(self.epsg).transform(xs, ys)
        return split_antimeridian(shapely.Polygon(np.column_stack([lon, lat])))

    def geobox(self, gsd: float):
        """The sensor pixel grid of this cell at ``gsd`` metres (an :class:`odc.geo.geobox.GeoBox`).

        North-up, top-left corner at ``(xmin, ymax)``, ``cell_m / gsd`` pixels square; pixel
        ``(i, j)`` covers ``x in [xmin + j*gsd, xmin + (j+1)*gsd)``.
        """
        from affine import Affine
        from odc.geo.geobox import GeoBox

        n = pixels_per_cell(self.cell_m, gsd)
        x0, _, _, y1 = self.bounds
        return GeoBox((n, n), Affine(gsd, 0.0, x0, 0.0, -gsd, y1), f"EPSG:{self.epsg}")


def pixels_per_cell(cell_m: float, gsd: float) -> int:
    """``cell_m / gsd``; raises :class:`GridError` unless it is a positive whole number."""
    n = cell_m / gsd
    if n < 1 or abs(n - round(n)) > 1e-9:
        raise GridError(f"cell size {cell_m} m is not a whole multiple of the {gsd} m pixel size")
    return int(round(n))


def check_cell_m(cell_m: float) -> int:
    """Validate a cell size: a positive multiple of 60 m (so 10/30/60 m grids nest), <= 100 km."""
    if cell_m <= 0 or cell_m % 60 != 0 or cell_m > 100_000:
        raise GridError(f"cell size must be a positive multiple of 60 m up to 100 km, got {cell_m}")
    return int(cell_m)


def zone_epsg(lon: float, lat: float) -> int:
    """EPSG code of the UTM zone (or UPS cap) containing ``(lon, lat)``."""
    if lat > UTM_MAX_LAT:
        return UPS_NORTH
    if lat < UTM_MIN_LAT:
        return UPS_SOUTH
    zone = int(math.floor((((lon + 180.0) % 360.0)) / 6.0)) + 1
    zone = min(zone, 60)
    return (32600 if lat >= 0 else 32700) + zone


@lru_cache(maxsize=256)
def _to_lonlat(epsg: int) -> Transformer:
    return Transformer.from_crs(CRS.from_epsg(epsg), CRS.from_epsg(4326), always_xy=True)


@lru_cache(maxsize=256)
def _from_lonlat(epsg: int) -> Transformer:
    return Transformer.from_crs(CRS.from_epsg(4326), CRS.from_epsg(epsg), always_xy=True)


def _cell_in(epsg: int, lon: float, lat: float, cell_m: int) -> Cell:
    x, y = _from_lonlat(epsg).transform(lon, lat)
    return Cell(epsg, int(math.floor(x / cell_m)), int(math.floor(y / cell_m)), cell_m)


def cell_for(lon: float, lat: float, cell_m: int = 3840) -> Cell:
    """The one cell of the point ``(lon, lat)`` (EPSG:4326 degrees): the cell of the point's own
    UTM zone (or UPS cap) that contains it."""
    check_cell_m(cell_m)
    if not (-180.0 <= lon <= 180.0 and -90.0 <= lat <= 90.0):
        raise GridError(f"point ({lon}, {lat}) is outside the lon/lat range")
    return _cell_in(zone_epsg(lon, lat), lon, lat, cell_m)


def parse_cell_id(cell_id: str, cell_m: int) -> Cell:
    """The :class:`Cell` of a cell id such as ``32633_00103_01452`` at ``cell_m`` metres."""
    m = _ID_RE.match(cell_id)
    if not m:
        raise GridError(f"malformed cell id {cell_id!r}; expected EPSG_COL_ROW like 32633_00103_01452")
    epsg = int(m.group(1))
    if not (32601 <= epsg <= 32660 or 32701 <= epsg <= 32760 or epsg in (UPS_NORTH, UPS_SOUTH)):
        raise GridError(f"cell id {cell_id!r}: EPSG {epsg} is not a UTM or UPS code")
    return Cell(epsg, int(m.group(2)), int(m.group(3)), check_cell_m(cell_m))


# -- covering a geometry ---------------------------------------------------------------------------


def split_antimeridian(geom: BaseGeometry) -> BaseGeometry:
    """Split a lon/lat polygon that wraps across +/-180 into parts on each side.

    A polygon whose longitudes span more than 180 degrees is taken to cross the antimeridian
    (GeoJSON writers often emit it unsplit): negative longitudes are shifted by +360, the shape
    is cut at 180 and the eastern part shifted back. A polygon reaching both -180 and +180
    already spans every longitude (a polar cap, a global band) and is returned as it is.
    """
    minx, _, maxx, _ = geom.bounds
    if maxx - minx <= 180.0 or (minx <= -180.0 and maxx >= 180.0):
        return geom
    shifted = shapely.transform(geom, lambda xy: np.column_stack([np.where(xy[:, 0] < 0, xy[:, 0] + 360, xy[:, 0]), xy[:, 1]]))
    west = shifted.intersection(box(0, -90, 180, 90))
    east = shapely.affinity.translate(shifted.intersection(box(180, -90, 360, 90)), xoff=-360)
    return shapely.union(west, east)


def _zone_parts(geom: BaseGeometry) -> list[tuple[int, BaseGeometry, BaseGeometry]]:
    """``(epsg, own, near)`` for every zone the geometry touches: ``own`` is the part inside the
    zone (which the zone's cells must cover), ``near`` the part within 2 degrees of it (to
    measure how much of a border cell, reaching across the border, the geometry covers)."""
    pad = 2.0
    parts: list[tuple[int, BaseGeometry, BaseGeometry]] = []

    def add(epsg: int, x0: float, y0: float, x1: float, y1: float) -> None:
        own = geom.intersection(box(x0, y0, x1, y1))
        if own.is_empty or own.area <= 0:
            return
        near = geom.intersection(box(x0 - pad, max(y0 - pad, -90.0), x1 + pad, min(y1 + pad, 90.0)))
        parts.append((epsg, own, near))

    minx, miny, maxx, maxy = geom.bounds
    if maxy > UTM_MAX_LAT:
        add(UPS_NORTH, -180.0, UTM_MAX_LAT, 180.0, 90.0)
    if miny < UTM_MIN_LAT:
        add(UPS_SOUTH, -180.0, -90.0, 180.0, UTM_MIN_LAT)
    z0 = max(int(math.floor((minx + 180.0) / 6.0)), 0)
    z1 = min(int(math.floor((maxx + 180.0) / 6.0)), 59)
    for z in range(z0, z1 + 1):
        lon0 = -180.0 + 6.0 * z
        add(32600 + z + 1, lon0, 0.0, lon0 + 6.0, UTM_MAX_LAT)
        add(32700 + z + 1, lon0, UTM_MIN_LAT, lon0 + 6.0, 0.0)
    return parts


def _project(part: BaseGeometry, epsg: int) -> BaseGeometry:
    fwd = _from_lonlat(epsg)
    proj = shapely.transform(part.segmentize(0.05), lambda xy: np.column_stack(fwd.transform(xy[:, 0], xy[:, 1])))
    return proj if proj.is_valid else shapely.make_valid(proj)


def cells_covering(geom: BaseGeometry, cell_m: int = 3840, min_fraction: float = 0.0) -> list[Cell]:
    """Cells of the grid that a lon/lat geometry covers, sorted by id.

    Per zone, the cells that overlap the zone's own part of the geometry with positive area.
    ``min_fraction`` is the share of the cell's area the geometry must cover: ``0`` keeps every
    such cell, ``1`` only fully covered cells (within 1e-9).
    """
    check_cell_m(cell_m)
    if not 0.0 <= min_fraction <= 1.0:
        raise GridError(f"min_fraction must be within [0, 1], got {min_fraction}")
    if geom.is_empty:
        return []
    geom = split_antimeridian(geom)
    found: set[Cell] = set()
    for epsg, own_part, near_part in _zone_parts(geom):
        own = _project(own_part, epsg)
        near = _project(near_part, epsg)
        x0, y0, x1, y1 = own.bounds
        c0, c1 = int(math.floor(x0 / cell_m)), int(math.floor(x1 / cell_m))
        r0, r1 = int(math.floor(y0 / cell_m)), int(math.floor(y1 / cell_m))
        cols, rows = np.meshgrid(np.arange(c0, c1 + 1), np.arange(r0, r1 + 1))
        cols, rows = cols.ravel(), rows.ravel()
        boxes = shapely.box(cols * cell_m, rows * cell_m, (cols + 1) * cell_m, (rows + 1) * cell_m)
        shapely.prepare(own)
        hit = shapely.intersects(own, boxes)
        hit[hit] = shapely.area(shapely.intersection(boxes[hit], own)) > 0
        frac = np.zeros(cols.size)
        frac[hit] = shapely.area(shapely.intersection(boxes[hit], near)) / float(cell_m) ** 2
        ok = hit & (frac >= min_fraction - 1e-9)
        found.update(Cell(epsg, int(c), int(r), cell_m) for c, r in zip(cols[ok], rows[ok]))
    return sorted(found, key=lambda c: c.id)
