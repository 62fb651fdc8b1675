"""Partitions of the grid: the units a world-scale build searches, co-locates and tiles one at a time.

Pure functions, no I/O. A :class:`PartitionScheme` cuts the grid into **UTM zone groups x
latitude bands**:

* the zone group of a cell is its own zone's (the cell's EPSG), ``zones`` adjacent UTM zones per
  group (1 by default: one zone, one hemisphere), counted from zone 1; each UPS cap is its own group;
* the band of a cell is ``floor(lat / band_deg)`` of the latitude of the cell's **centre**, clamped
  to the bands of its projection's own latitude range (UTM north 0..84, south -80..0, UPS north
  84..90, UPS south -90..-80), so a border cell reaching a little across the equator, 84 N or 80 S
  stays with its own projection.

Every cell therefore has exactly one partition (:func:`partition_keys`, :func:`cell_partition`),
whatever footprint or region it was found from: cells on partition borders are neither lost nor
doubled. A partition's id names its EPSG codes and its band, ``32633_b+05`` (zone 33 north,
40..48 N with 8 degree bands) or ``32631-32636_b+05`` for a group of six zones; ids depend on the
scheme, never on ``cell_m``. :attr:`Partition.bounds` is its lon/lat box; the cells it owns lie in
that box up to one cell (zone-border cells and cells whose centre is just inside a band edge reach
out of it).

:func:`footprint_partition_keys` gives, for many lon/lat footprints at once, every partition whose
cells a footprint may cover (a superset: the footprint's latitude range padded by a cell), which
is what assigns scenes to partitions; :func:`region_partitions` lists the partitions of a region
with their cell counts.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import shapely
from shapely.geometry import box
from shapely.geometry.base import BaseGeometry

from ..errors import GridError
from .cells import Cell, check_cell_m
from .cover import footprint_cells
from .zones import UPS_NORTH, UPS_SOUTH, UTM_MAX_LAT, UTM_MIN_LAT, split_antimeridian, to_lonlat

#: A partition key is ``first_epsg * KEY_BASE + band + KEY_BASE // 2`` (int64: zone group, then band).
KEY_BASE = 100_000

#: Degrees of latitude a cell's centre can lie beyond the latitude range of the footprint part it
#: covers, per metre of cell size: half a diagonal (0.7072 cell) over >= 110.5 km per degree and a
#: grid scale factor <= 1.002, rounded up (1/100 km, ~1.5x the worst case).
_PAD_DEG_PER_M = 1.0 / 100_000


@dataclass(frozen=True)
class PartitionScheme:
    """How the grid is cut: ``zones`` adjacent UTM zones x ``band_deg`` degrees of latitude.

    The default (one zone, 8 degrees, like the MGRS latitude bands) gives ~1,200 partitions over
    land; ``PartitionScheme(zones=6, band_deg=8)`` ~160 over the inhabited latitudes and
    ``PartitionScheme(zones=15, band_deg=45)`` 16.
    """

    zones: int = 1
    band_deg: float = 8.0

    def __post_init__(self) -> None:
        if not (isinstance(self.zones, int) and 1 <= self.zones <= 60):
            raise GridError(f"partition zones must be a whole number of UTM zones in 1..60, got {self.zones}")
        if not 0.1 <= self.band_deg <= 180.0:
            raise GridError(f"partition band must be 0.1..180 degrees of latitude, got {self.band_deg}")


@dataclass(frozen=True, order=True)
class Partition:
    """One partition: the EPSG codes of its zone group (``epsg0..epsg1``), its latitude band and
    the scheme's band height. Ordered as :attr:`key`: by zone group, then band from south to north."""

    epsg0: int
    epsg1: int
    band: int
    band_deg: float

    @property
    def key(self) -> int:
        return self.epsg0 * KEY_BASE + self.band + KEY_BASE // 2

    @property
    def id(self) -> str:
        zones = f"{self.epsg0}" if self.epsg0 == self.epsg1 else f"{self.epsg0}-{self.epsg1}"
        return f"{zones}_b{self.band:+03d}"

    @property
    def bounds(self) -> tuple[float, float, float, float]:
        """``(lon0, lat0, lon1, lat1)``: the zone group's longitudes x the band within the
        projection's own latitudes."""
        lat_lo, lat_hi = _lat_range(self.epsg0)
        lat0 = max(lat_lo, self.band * self.band_deg)
        lat1 = min(lat_hi, (self.band + 1) * self.band_deg)
        if self.epsg0 in (UPS_NORTH, UPS_SOUTH):
            return (-180.0, lat0, 180.0, lat1)
        return (-180.0 + 6.0 * (self.epsg0 % 100 - 1), lat0, -180.0 + 6.0 * (self.epsg1 % 100), lat1)

    @property
    def geometry(self) -> BaseGeometry:
        """The lon/lat box of :attr:`bounds` (EPSG:4326)."""
        return box(*self.bounds)


def _lat_range(epsg: int) -> tuple[float, float]:
    if epsg == UPS_NORTH:
        return (UTM_MAX_LAT, 90.0)
    if epsg == UPS_SOUTH:
        return (-90.0, UTM_MIN_LAT)
    return (0.0, UTM_MAX_LAT) if epsg < 32700 else (UTM_MIN_LAT, 0.0)


def _band_limits(epsg: np.ndarray, band_deg: float) -> tuple[np.ndarray, np.ndarray]:
    """First and last band of each EPSG's own latitude range."""
    lo = np.select([epsg == UPS_NORTH, epsg == UPS_SOUTH, epsg < 32700], [UTM_MAX_LAT, -90.0, 0.0], UTM_MIN_LAT)
    hi = np.select([epsg == UPS_NORTH, epsg == UPS_SOUTH, epsg < 32700], [90.0, UTM_MIN_LAT, UTM_MAX_LAT], 0.0)
    return np.floor(lo / band_deg).astype(np.int64), np.ceil(hi / band_deg).astype(np.int64) - 1


def _group_epsg(epsg: np.ndarray, zones: int) -> np.ndarray:
    """The first EPSG code of each code's zone group (UPS codes are their own group)."""
    ups = (epsg == UPS_NORTH) | (epsg == UPS_SOUTH)
    base = np.where(epsg < 32700, 32600, 32700)
    zone = epsg - base
    return np.where(ups, epsg, base + ((zone - 1) // zones) * zones + 1)


def _keys(epsg: np.ndarray, band: np.ndarray, scheme: PartitionScheme) -> np.ndarray:
    lo, hi = _band_limits(epsg, scheme.band_deg)
    band = np.clip(band, lo, hi)
    return _group_epsg(epsg, scheme.zones) * KEY_BASE + band + KEY_BASE // 2


def partition_of(key: int, scheme: PartitionScheme) -> Partition:
    """The :class:`Partition` of a key from :func:`partition_keys` or :func:`footprint_partition_keys`."""
    epsg0, band = divmod(int(key), KEY_BASE)
    band -= KEY_BASE // 2
    if epsg0 in (UPS_NORTH, UPS_SOUTH):
        epsg1 = epsg0
    else:
        base = 32600 if epsg0 < 32700 else 32700
        epsg1 = min(epsg0 + scheme.zones - 1, base + 60)
    return Partition(epsg0, epsg1, band, scheme.band_deg)


def cell_center_lat(epsg: np.ndarray, col: np.ndarray, row: np.ndarray, cell_m: int) -> np.ndarray:
    """Latitude of the centre of cells ``(epsg, col, row)`` (aligned integer arrays)."""
    epsg, col, row = (np.asarray(a, dtype=np.int64) for a in (epsg, col, row))
    lat = np.empty(epsg.size)
    for e in np.unique(epsg):
        sel = np.flatnonzero(epsg == e)
        lat[sel] = to_lonlat(int(e)).transform((col[sel] + 0.5) * float(cell_m), (row[sel] + 0.5) * float(cell_m))[1]
    return lat


def partition_keys(epsg, col, row, cell_m: int, scheme: PartitionScheme) -> np.ndarray:
    """The partition key (int64) of each cell ``(epsg, col, row)``: its zone group and the band
    of its centre's latitude. Exactly one per cell; the same for the same cell in any call."""
    check_cell_m(cell_m)
    epsg = np.asarray(epsg, dtype=np.int64)
    if epsg.size == 0:
        return np.zeros(0, dtype=np.int64)
    band = np.floor(cell_center_lat(epsg, col, row, cell_m) / scheme.band_deg).astype(np.int64)
    return _keys(epsg, band, scheme)


def cell_partition(cell: Cell, scheme: PartitionScheme) -> Partition:
    """The one partition of a :class:`Cell`."""
    key = partition_keys([cell.epsg], [cell.col], [cell.row], cell.cell_m, scheme)[0]
    return partition_of(int(key), scheme)


def footprint_partition_keys(geoms, cell_m: int, scheme: PartitionScheme) -> tuple[np.ndarray, np.ndarray]:
    """``(fp, key)``: every partition whose cells footprint ``geoms[fp]`` may cover (lon/lat).

    A superset, from bounds alone: per part of the footprint (split at the antimeridian), the
    zones its longitudes meet, in each projection its latitudes meet (as the grid's cover picks
    zones), and the bands of its latitude range padded by the distance a covered cell's centre can
    lie outside it. Unique pairs, sorted by footprint then key.
    """
    check_cell_m(cell_m)
    geoms = np.asarray(geoms, dtype=object)
    if geoms.size == 0:
        return np.zeros(0, dtype=np.int64), np.zeros(0, dtype=np.int64)
    b = shapely.bounds(geoms)
    wide = np.flatnonzero(b[:, 2] - b[:, 0] > 180.0)
    if wide.size:
        geoms = geoms.copy()
        geoms[wide] = [split_antimeridian(g) for g in geoms[wide]]
    parts, idx = shapely.get_parts(geoms, return_index=True)
    pb = shapely.bounds(parts)
    ok = np.isfinite(pb).all(axis=1)
    parts, idx, pb = parts[ok], idx[ok], pb[ok]
    z0 = np.clip(np.floor((pb[:, 0] + 180.0) / 6.0).astype(np.int64), 0, 59)
    z1 = np.clip(np.floor((pb[:, 2] + 180.0) / 6.0).astype(np.int64), 0, 59)
    n = z1 - z0 + 1
    rep = np.repeat(np.arange(idx.size), n)
    zone = z0[rep] + (np.arange(rep.size) - np.repeat(np.cumsum(n) - n, n)) + 1
    pad = cell_m * _PAD_DEG_PER_M
    fps, epsgs, lat0s, lat1s = [], [], [], []

    def add(sel: np.ndarray, part: np.ndarray, epsg: np.ndarray, lo: float, hi: float) -> None:
        fps.append(idx[part[sel]])
        epsgs.append(epsg[sel])
        lat0s.append(np.maximum(pb[part[sel], 1], lo) - pad)
        lat1s.append(np.minimum(pb[part[sel], 3], hi) + pad)

    # the same tests as the grid's cover (cover._zone_boxes), with >= / <= to stay a superset
    add((pb[rep, 3] >= 0) & (pb[rep, 1] <= UTM_MAX_LAT), rep, 32600 + zone, 0.0, UTM_MAX_LAT)
    add((pb[rep, 1] <= 0) & (pb[rep, 3] >= UTM_MIN_LAT), rep, 32700 + zone, UTM_MIN_LAT, 0.0)
    every = np.arange(idx.size)
    add(pb[:, 3] >= UTM_MAX_LAT, every, np.full(idx.size, UPS_NORTH), UTM_MAX_LAT, 90.0)
    add(pb[:, 1] <= UTM_MIN_LAT, every, np.full(idx.size, UPS_SOUTH), -90.0, UTM_MIN_LAT)
    fp, epsg = np.concatenate(fps), np.concatenate(epsgs).astype(np.int64)
    lo, hi = _band_limits(epsg, scheme.band_deg)
    b0 = np.clip(np.floor(np.concatenate(lat0s) / scheme.band_deg).astype(np.int64), lo, hi)
    b1 = np.clip(np.floor(np.concatenate(lat1s) / scheme.band_deg).astype(np.int64), lo, hi)
    nb = b1 - b0 + 1
    rep = np.repeat(np.arange(fp.size), nb)
    band = b0[rep] + (np.arange(rep.size) - np.repeat(np.cumsum(nb) - nb, nb))
    keys = _keys(epsg[rep], band, scheme)
    pairs = np.unique(np.column_stack([fp[rep], keys]), axis=0)
    return pairs[:, 0].astype(np.int64), pairs[:, 1].astype(np.int64)


def region_partitions(region: BaseGeometry, cell_m: int, scheme: PartitionScheme,
                      min_fraction: float = 0.0) -> list[tuple[Partition, int]]:
    """The partitions of a lon/lat region and how many of the region's cells each owns.

    The cells are those covering the region by ``min_fraction`` (``0``: every cell it touches);
    partitions without cells are left out. In key order (zone group, then band).
    """
    if not 0.0 <= min_fraction <= 1.0:
        raise GridError(f"min_fraction must be within [0, 1], got {min_fraction}")
    cells = footprint_cells([region], cell_m, min_fraction)
    keys = partition_keys(cells["epsg"].to_numpy(), cells["col"].to_numpy(), cells["row"].to_numpy(), cell_m, scheme)
    uniq, counts = np.unique(keys, return_counts=True)
    return [(partition_of(int(k), scheme), int(c)) for k, c in zip(uniq, counts)]


def world_partitions(scheme: PartitionScheme) -> list[Partition]:
    """Every partition of the scheme over the whole Earth, in key order (zone group, then band)."""
    out = []
    for base in (32600, 32700):
        for first in range(1, 61, scheme.zones):
            epsg = base + first
            lo, hi = _band_limits(np.array([epsg]), scheme.band_deg)
            out += [partition_of(int(epsg) * KEY_BASE + b + KEY_BASE // 2, scheme) for b in range(lo[0], hi[0] + 1)]
    for epsg in (UPS_NORTH, UPS_SOUTH):
        lo, hi = _band_limits(np.array([epsg]), scheme.band_deg)
        out += [partition_of(epsg * KEY_BASE + b + KEY_BASE // 2, scheme) for b in range(lo[0], hi[0] + 1)]
    return sorted(out)


__all__ = [
    "KEY_BASE",
    "Partition",
    "PartitionScheme",
    "cell_center_lat",
    "cell_partition",
    "footprint_partition_keys",
    "partition_keys",
    "partition_of",
    "region_partitions",
    "world_partitions",
]
