"""The projections of the grid: UTM zones and UPS caps, and lon/lat geometry into them.

Pure functions, no I/O. ``zone = floor((lon + 180) / 6) + 1``, EPSG ``32600 + zone`` north of the
equator and ``32700 + zone`` south of it; UPS north (EPSG:32661) above 84 N, UPS south
(EPSG:32761) below 80 S.
"""

from __future__ import annotations

import math
from functools import lru_cache

import numpy as np
import shapely
from pyproj import CRS, Transformer
from shapely.geometry import box
from shapely.geometry.base import BaseGeometry

UPS_NORTH = 32661
UPS_SOUTH = 32761
UTM_MAX_LAT = 84.0
UTM_MIN_LAT = -80.0


def zone_epsg(lon: float, lat: float) -> int:
    """EPSG code of the UTM zone (or UPS cap) containing ``(lon, lat)``."""
    if lat > UTM_MAX_LAT:
        return UPS_NORTH
    if lat < UTM_MIN_LAT:
        return UPS_SOUTH
    zone = int(math.floor((((lon + 180.0) % 360.0)) / 6.0)) + 1
    zone = min(zone, 60)
    return (32600 if lat >= 0 else 32700) + zone


def is_zone_epsg(epsg: int) -> bool:
    """True for the EPSG codes of the grid: the 120 UTM zones and the two UPS caps."""
    return 32601 <= epsg <= 32660 or 32701 <= epsg <= 32760 or epsg in (UPS_NORTH, UPS_SOUTH)


@lru_cache(maxsize=256)
def to_lonlat(epsg: int) -> Transformer:
    """The (cached) transformer from ``epsg`` x/y to EPSG:4326 lon/lat (``always_xy``)."""
    return Transformer.from_crs(CRS.from_epsg(epsg), CRS.from_epsg(4326), always_xy=True)


@lru_cache(maxsize=256)
def from_lonlat(epsg: int) -> Transformer:
    """The (cached) transformer from EPSG:4326 lon/lat to ``epsg`` x/y (``always_xy``)."""
    return Transformer.from_crs(CRS.from_epsg(4326), CRS.from_epsg(epsg), always_xy=True)


def project(geoms, epsg: int):
    """Lon/lat geometries into ``epsg``: one geometry, or an array of them (then an array).

    Edges are densified to 0.05 degrees first, so the projected outline follows the true curve;
    a geometry that projecting made invalid is repaired with ``make_valid``.
    """
    fwd = from_lonlat(epsg)
    dense = shapely.segmentize(geoms, 0.05)
    proj = shapely.transform(dense, lambda xy: np.column_stack(fwd.transform(xy[:, 0], xy[:, 1])))
    if isinstance(proj, BaseGeometry):
        return proj if proj.is_valid else shapely.make_valid(proj)
    bad = ~shapely.is_valid(proj)
    if bad.any():
        proj[bad] = shapely.make_valid(proj[bad])
    return proj


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
