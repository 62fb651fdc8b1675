"""Grid cells: sizes, ids, the cell of a point and cell outlines. Pure functions, no I/O."""

from __future__ import annotations

import math
import re
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
import shapely
from shapely.geometry.base import BaseGeometry

from ..errors import GridError, PixelGridError
from .zones import from_lonlat, is_zone_epsg, split_antimeridian, to_lonlat, zone_epsg

#: The cell id: EPSG code, then column and row zero-padded to 5 digits (``32633_00095_01512``).
#: :func:`format_cell_id` and :func:`cell_ids` are the only places that format it.
CELL_ID_FORMAT = "{}_{:05d}_{:05d}"
_format_id = CELL_ID_FORMAT.format
_ID_RE = re.compile(r"^(\d{5})_(\d+)_(\d+)$")

#: ``pixels_per_cell`` accepts ``cell_m / gsd`` within this of a whole number (float rounding).
PIXEL_TOLERANCE = 1e-9


def pixels_per_cell(cell_m: float, gsd: float) -> int:
    """``cell_m / gsd``, the pixels along a cell side at ``gsd`` metres.

    The one check that a cell (or any length: a token) is a whole number of pixels: raises
    :class:`~spectralearth_data.errors.PixelGridError` (a :class:`GridError` that carries
    ``cell_m`` and ``gsd``) unless the ratio is >= 1 and within :data:`PIXEL_TOLERANCE` of a
    whole number.
    """
    n = cell_m / gsd
    if n < 1 or abs(n - round(n)) > PIXEL_TOLERANCE:
        raise PixelGridError(cell_m, gsd)
    return int(round(n))


def check_cell_m(cell_m: float) -> int:
    """Validate a cell size: a positive multiple of 60 m (so 10/30/60 m grids nest), <= 100 km."""
    if cell_m <= 0 or cell_m % 60 != 0 or cell_m > 100_000:
        raise GridError(f"cell size must be a positive multiple of 60 m up to 100 km, got {cell_m}")
    return int(cell_m)


def format_cell_id(epsg: int, col: int, row: int) -> str:
    """The id of cell ``(epsg, col, row)``: ``f"{epsg}_{col:05d}_{row:05d}"``."""
    return _format_id(epsg, col, row)


def cell_ids(epsg, col, row) -> np.ndarray:
    """:func:`format_cell_id` over aligned integer arrays (an object array of str)."""
    ids = map(_format_id, np.asarray(epsg).tolist(), np.asarray(col).tolist(), np.asarray(row).tolist())
    return np.array(list(ids), dtype=object)


@dataclass(frozen=True, order=True)
class Cell:
    """One grid cell: ``epsg`` and integer ``col``/``row`` of a ``cell_m`` square."""

    epsg: int
    col: int
    row: int
    cell_m: int

    @property
    def id(self) -> str:
        return format_cell_id(self.epsg, self.col, self.row)

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
        lon, lat = to_lonlat(self.epsg).transform(*self.center_xy)
        return float(lon), float(lat)

    def polygon_lonlat(self, densify: int = 8) -> BaseGeometry:
        """The cell outline in EPSG:4326, edges densified to ``densify`` points each.

        A cell reaching across the antimeridian comes back as a MultiPolygon of its two sides
        (not as a ring whose longitudes jump from +180 to -180, which would span the globe).
        :func:`cell_outlines` is the same for many cells at once.
        """
        x0, y0, x1, y1 = self.bounds
        t = np.linspace(0.0, 1.0, densify, endpoint=False)
        xs = np.concatenate([x0 + (x1 - x0) * t, np.full_like(t, x1), x1 - (x1 - x0) * t, np.full_like(t, x0)])
        ys = np.concatenate([np.full_like(t, y0), y0 + (y1 - y0) * t, np.full_like(t, y1), y1 - (y1 - y0) * t])
        lon, lat = to_lonlat(self.epsg).transform(xs, ys)
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


def _cell_in(epsg: int, lon: float, lat: float, cell_m: int) -> Cell:
    x, y = from_lonlat(epsg).transform(lon, lat)
    return Cell(epsg, int(math.floor(x / cell_m)), int(math.floor(y / cell_m)), cell_m)


def cell_for(lon: float, lat: float, cell_m: int = 3840) -> Cell:
    """The one cell of the point ``(lon, lat)`` (EPSG:4326 degrees): the cell of the point's own
    UTM zone (or UPS cap) that contains it."""
    check_cell_m(cell_m)
    if not (-180.0 <= lon <= 180.0 and -90.0 <= lat <= 90.0):
        raise GridError(f"point ({lon}, {lat}) is outside the lon/lat range")
    return _cell_in(zone_epsg(lon, lat), lon, lat, cell_m)


def parse_cell_id(cell_id: str, cell_m: int) -> Cell:
    """The :class:`Cell` of a cell id such as ``32633_00103_01452`` at ``cell_m`` metres
    (the inverse of :func:`format_cell_id`)."""
    m = _ID_RE.match(cell_id)
    if not m:
        raise GridError(f"malformed cell id {cell_id!r}; expected EPSG_COL_ROW like 32633_00103_01452")
    epsg = int(m.group(1))
    if not is_zone_epsg(epsg):
        raise GridError(f"cell id {cell_id!r}: EPSG {epsg} is not a UTM or UPS code")
    return Cell(epsg, int(m.group(2)), int(m.group(3)), check_cell_m(cell_m))


def _rings_to_polygons(xy: np.ndarray) -> np.ndarray:
    """Polygons of ``(n, k, 2)`` open rings: ``shapely.polygons(xy)``, built from one flat closed
    coordinate array (a third faster on the 10^6 cells of a large plan)."""
    n, k = xy.shape[:2]
    closed = np.concatenate([xy, xy[:, :1]], axis=1).reshape(-1, 2)
    offsets = (np.arange(0, n * (k + 1) + 1, k + 1), np.arange(n + 1))
    return shapely.from_ragged_array(shapely.GeometryType.POLYGON, closed, offsets)


def cell_outlines(epsg: np.ndarray, col: np.ndarray, row: np.ndarray, cell_m: int, densify: int = 8):
    """Lon/lat outlines (densified like :meth:`Cell.polygon_lonlat`) and the 4 corner lon/lats of cells.

    Returns ``(polygons, lon (n, 4), lat (n, 4))`` with corners ordered SW, SE, NE, NW.
    """
    n = len(epsg)
    polys = np.empty(n, dtype=object)
    lon4, lat4 = np.zeros((n, 4)), np.zeros((n, 4))
    t = np.linspace(0.0, 1.0, densify, endpoint=False)
    ux = np.concatenate([t, np.ones_like(t), 1 - t, np.zeros_like(t)])
    uy = np.concatenate([np.zeros_like(t), t, np.ones_like(t), 1 - t])
    for e in np.unique(epsg):
        sel = np.flatnonzero(epsg == e)
        x0 = col[sel, None] * float(cell_m)
        y0 = row[sel, None] * float(cell_m)
        inv = to_lonlat(int(e))
        lon, lat = inv.transform(x0 + ux[None, :] * cell_m, y0 + uy[None, :] * cell_m)
        lon, lat = np.asarray(lon), np.asarray(lat)
        polys[sel] = _rings_to_polygons(np.stack([lon, lat], axis=-1))
        corner = [0, densify, 2 * densify, 3 * densify]
        lon4[sel], lat4[sel] = lon[:, corner], lat[:, corner]
    wide: Sequence[int] | np.ndarray = np.flatnonzero(shapely.bounds(polys)[:, 2] - shapely.bounds(polys)[:, 0] > 180.0) if n else []
    for i in wide:  # a cell on the antimeridian: split like footprints are
        polys[i] = split_antimeridian(polys[i])
    return polys, lon4, lat4
