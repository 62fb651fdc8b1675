"""Co-location: pair scenes on the global grid and write the plan (DESIGN.md "Scenes and the plan").

1. **Anchor cells.** Every anchor scene (by default every hyperspectral product) claims the grid
   cells its footprint covers by at least ``min_fraction`` (default 1: fully covered), computed
   for all footprints at once in each UTM/UPS zone (:func:`footprint_cells`): an exact scanline
   over the projected footprint's boundary for footprints that stay y-monotone (convex ones do),
   a vectorized shapely cover test for the rest.
2. **Candidates.** Per partner product, one STRtree query pairs anchor footprints with partner
   footprints whose boxes meet them; pairs outside the product's time window (``time_window_days``
   in catalogs/sensors: 30 d optical/thermal, 15 d SAR, 1 d between HSI products; or
   ``window_days``) are dropped, the rest must intersect, and each anchor's candidates are ranked
   by cloud cover (unknown last), then ``|dt|``, then scene id.
3. **Choice.** Each (cell, anchor scene, product) takes the best-ranked candidate that covers the
   cell by ``min_fraction``; candidates are tried in rank order, all cells at once per round
   (convex footprints by a numpy point-in-polygon test of the cell's corners, others by shapely).

No Python loop runs over footprint pairs: the loops are over zones, products and rank rounds.
Several anchor acquisitions of one cell are all kept; ``hsi_combo`` records which hyperspectral
products a cell has (``emit+enmap`` ...), as SpectralEarth-MM's pair/triplet groups. The cell
outline in the plan has its corners and edge midpoints (within ~1 m of the true UTM/UPS edge).
benchmarks/colocate.py measures it against a nested loop.
"""

from __future__ import annotations

import json
import os
import threading
from concurrent.futures import ThreadPoolExecutor
from dataclasses import asdict, dataclass, field
from pathlib import Path

import geopandas as gpd
import numpy as np
import pandas as pd
import shapely
from shapely import STRtree

from .catalog import load_catalog
from .errors import InputDataError
from .grid import (
    UPS_NORTH,
    UPS_SOUTH,
    UTM_MAX_LAT,
    UTM_MIN_LAT,
    _from_lonlat,
    _to_lonlat,
    check_cell_m,
    split_antimeridian,
)
from .schema import PLAN_COLUMNS, SCENE_COLUMNS
from .tables import read_table, write_table

_EPS = 1e-9
_PREPARE_LOCK = threading.Lock()
_NS_PER_DAY = 86_400e9


def _ns(times: pd.Series) -> np.ndarray:
    """UTC nanoseconds since the epoch of a (tz-aware) datetime column."""
    return pd.to_datetime(times, utc=True).astype("int64").to_numpy()


# -- anchor cells ------------------------------------------------------------------------------------


def _zone_boxes(geoms: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(footprint index, EPSG, lon/lat zone box) for every zone whose box meets a footprint part.

    Zone boxes as in the grid: UTM zone ``z`` spans ``[-180 + 6(z-1), -180 + 6z]`` in longitude and
    0..84 N (326zz) or 80 S..0 (327zz); the UPS caps span every longitude above 84 N / below 80 S.
    """
    parts, idx = shapely.get_parts(geoms, return_index=True)
    b = shapely.bounds(parts)
    z0 = np.clip(np.floor((b[:, 0] + 180.0) / 6.0).astype(int), 0, 59)
    z1 = np.clip(np.floor((b[:, 2] + 180.0) / 6.0).astype(int), 0, 59)
    n = z1 - z0 + 1
    rep = np.repeat(np.arange(len(parts)), n)
    zone = z0[rep] + (np.arange(rep.size) - np.repeat(np.cumsum(n) - n, n))
    north = (b[rep, 3] > 0) & (b[rep, 1] < UTM_MAX_LAT)
    south = (b[rep, 1] < 0) & (b[rep, 3] > UTM_MIN_LAT)
    ups_n, ups_s = b[:, 3] > UTM_MAX_LAT, b[:, 1] < UTM_MIN_LAT
    fp = np.concatenate([idx[rep[north]], idx[rep[south]], idx[ups_n], idx[ups_s]])
    epsg = np.concatenate([32601 + zone[north], 32701 + zone[south],
                           np.full(ups_n.sum(), UPS_NORTH), np.full(ups_s.sum(), UPS_SOUTH)])
    pairs = np.unique(np.column_stack([fp, epsg]), axis=0).astype(np.int64)
    fp, epsg = pairs[:, 0], pairs[:, 1]
    lon0 = -180.0 + 6.0 * ((epsg % 100) - 1)
    is_n, is_s = (epsg > 32600) & (epsg < 32661), (epsg > 32700) & (epsg < 32761)
    x0 = np.where(is_n | is_s, lon0, -180.0)
    x1 = np.where(is_n | is_s, lon0 + 6.0, 180.0)
    y0 = np.select([is_n, is_s, epsg == UPS_NORTH], [0.0, UTM_MIN_LAT, UTM_MAX_LAT], -90.0)
    y1 = np.select([is_n, is_s, epsg == UPS_NORTH], [UTM_MAX_LAT, 0.0, 90.0], UTM_MIN_LAT)
    return fp, epsg, np.column_stack([x0, y0, x1, y1])


def _project(geoms: np.ndarray, epsg: int) -> np.ndarray:
    """Lon/lat geometries into ``epsg``, edges densified to 0.05 degrees first (as grid does)."""
    fwd = _from_lonlat(epsg)
    dense = shapely.segmentize(geoms, 0.05)
    proj = shapely.transform(dense, lambda xy: np.column_stack(fwd.transform(xy[:, 0], xy[:, 1])))
    bad = ~shapely.is_valid(proj)
    if bad.any():
        proj[bad] = shapely.make_valid(proj[bad])
    return proj


def _dents(geoms: np.ndarray) -> np.ndarray:
    """``convex_hull - geometry`` per geometry (empty for convex ones).

    A box whose corners lie in a footprint lies in its convex hull; it is covered by the footprint
    exactly when it also misses these dents, so only boxes that touch a dent need an area test.
    """
    dents = shapely.difference(shapely.convex_hull(geoms), geoms)
    shapely.prepare(dents)
    return dents


def _covered(geoms: np.ndarray, x0: np.ndarray, y0: np.ndarray, x1: np.ndarray, y1: np.ndarray,
             min_fraction: float, dents: np.ndarray | None = None) -> np.ndarray:
    """True where box ``(x0, y0, x1, y1)`` is covered by ``geoms`` (aligned arrays) by the fraction.

    Full cover: all four corners in the footprint (prepared point tests) and no contact with its
    concave dents, else the exact intersection area decides; partial fractions use the area.
    """
    if geoms.size == 0:
        return np.zeros(0, dtype=bool)
    shapely.prepare(geoms)
    if min_fraction >= 1.0 - _EPS:
        ok = np.ones(geoms.size, dtype=bool)
        for x, y in ((x0, y0), (x1, y0), (x1, y1), (x0, y1)):
            sub = np.flatnonzero(ok)
            ok[sub] = shapely.intersects_xy(geoms[sub], x[sub], y[sub])
        if dents is None:
            dents = _dents(geoms)
        sub = np.flatnonzero(ok & ~shapely.is_empty(dents))
        exact = sub[shapely.intersects(dents[sub], shapely.box(x0[sub], y0[sub], x1[sub], y1[sub]))]
    else:
        ok = np.zeros(geoms.size, dtype=bool)
        exact = np.arange(geoms.size)
    if exact.size:
        boxes = shapely.box(x0[exact], y0[exact], x1[exact], y1[exact])
        hit = shapely.intersects(geoms[exact], boxes)
        frac = np.zeros(exact.size)
        frac[hit] = shapely.area(shapely.intersection(geoms[exact][hit], boxes[hit])) / shapely.area(boxes[hit])
        ok[exact] = hit & (frac > 0) & (frac >= min_fraction - 1e-9)
    return ok


def _ring_edges(geoms: np.ndarray):
    """Edges of the exterior rings of single polygons: ``(ring index, a (m, 2), b (m, 2), signed area)``."""
    coords, ring = shapely.get_coordinates(shapely.get_exterior_ring(geoms), return_index=True)
    same = ring[1:] == ring[:-1]
    a, b, ring = coords[:-1][same], coords[1:][same], ring[:-1][same]
    signed = np.bincount(ring, weights=a[:, 0] * b[:, 1] - b[:, 0] * a[:, 1], minlength=len(geoms)) / 2
    return ring, a, b, signed


def _y_monotone(geoms: np.ndarray) -> np.ndarray:
    """True for polygons without holes whose boundary goes up once and down once (every
    horizontal line meets them in one interval): convex footprints and their projections."""
    ok = (shapely.get_type_id(geoms) == 3) & (shapely.get_num_interior_rings(geoms) == 0)
    idx = np.flatnonzero(ok)
    if not idx.size:
        return ok
    ring, a, b, _ = _ring_edges(geoms[idx])
    dy = np.sign(b[:, 1] - a[:, 1])
    ring, dy = ring[dy != 0], dy[dy != 0]
    changes = np.bincount(ring[1:][(dy[1:] != dy[:-1]) & (ring[1:] == ring[:-1])], minlength=idx.size)
    first = np.searchsorted(ring, np.arange(idx.size))
    last = np.searchsorted(ring, np.arange(idx.size), side="right") - 1
    has = last >= first
    changes[has] += dy[first[has]] != dy[last[has]]
    ok[idx] = has & (changes == 2)
    return ok


def _scanline_cells(geoms: np.ndarray, cell_m: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Cells fully inside y-monotone projected polygons: ``(polygon index, col, row)``.

    Per cell row ``[y0, y1]`` the polygon holds the boxes ``[x0, x1]`` with
    ``x0 >= max L(y)`` and ``x1 <= min R(y)`` over the row, ``L``/``R`` its left/right boundary.
    Both are piecewise linear, so the extremes are at the row's edges or at vertices inside it: each
    boundary edge is clipped to every row it crosses and the clipped ends are reduced per row.
    Exact for y-monotone polygons (no corner sampling), and linear in the number of edges and rows.
    """
    ring, a, b, signed = _ring_edges(geoms)
    c = float(cell_m)
    ylo, yhi = np.minimum(a[:, 1], b[:, 1]), np.maximum(a[:, 1], b[:, 1])
    keep = yhi > ylo  # horizontal edges: their ends belong to the neighbouring edges too
    ring, a, b, ylo, yhi = ring[keep], a[keep], b[keep], ylo[keep], yhi[keep]
    ccw = signed[ring] > 0
    left = (b[:, 1] < a[:, 1]) == ccw  # counter-clockwise rings go down along their left side
    bounds = shapely.bounds(geoms)
    r_first = np.floor(bounds[:, 1] / c).astype(np.int64)
    n_rows = np.floor(bounds[:, 3] / c).astype(np.int64) - r_first + 1
    offset = np.cumsum(n_rows) - n_rows
    e_r0 = np.floor(ylo / c).astype(np.int64)
    n_e = np.floor(yhi / c).astype(np.int64) - e_r0 + 1
    rep = np.repeat(np.arange(ring.size), n_e)
    r = e_r0[rep] + (np.arange(rep.size) - np.repeat(np.cumsum(n_e) - n_e, n_e))
    y_a = np.maximum(ylo[rep], r * c)
    y_b = np.minimum(yhi[rep], (r + 1) * c)
    ax, ay, bx, by = a[rep, 0], a[rep, 1], b[rep, 0], b[rep, 1]
    slope = (bx - ax) / (by - ay)
    x_a, x_b = ax + (y_a - ay) * slope, ax + (y_b - ay) * slope
    slot = offset[ring[rep]] + r - r_first[ring[rep]]
    max_left = np.full(int(n_rows.sum()), -np.inf)
    min_right = np.full(max_left.size, np.inf)
    lf = left[rep]
    np.maximum.at(max_left, slot[lf], np.maximum(x_a, x_b)[lf])
    np.minimum.at(min_right, slot[~lf], np.minimum(x_a, x_b)[~lf])
    poly = np.repeat(np.arange(len(geoms)), n_rows)
    row = r_first[poly] + (np.arange(poly.size) - offset[poly])
    inside = (row * c >= bounds[poly, 1]) & ((row + 1) * c <= bounds[poly, 3])  # the row lies within y-range
    c0 = np.ceil(max_left / c)
    c1 = np.floor(min_right / c) - 1
    n = np.where(inside & np.isfinite(c0) & np.isfinite(c1), c1 - c0 + 1, 0).clip(0).astype(np.int64)
    rep2 = np.repeat(np.arange(poly.size), n)
    col = c0[rep2].astype(np.int64) + (np.arange(rep2.size) - np.repeat(np.cumsum(n) - n, n))
    return poly[rep2], col, row[rep2]


def _anchor_cells(geoms: np.ndarray, cell_m: int, min_fraction: float):
    """``(fp, epsg, col, row)`` arrays of the cells covered by each lon/lat footprint (see
    :func:`footprint_cells`); footprints inside one zone that stay y-monotone once projected take
    the exact scanline path, the rest (zone borders, holes, partial cover) a vectorized shapely test."""
    b = shapely.bounds(geoms)
    wide = np.flatnonzero(b[:, 2] - b[:, 0] > 180.0)
    if wide.size:
        geoms = geoms.copy()
        geoms[wide] = [split_antimeridian(g) for g in geoms[wide]]
    fp_all, epsg_all, zbox = _zone_boxes(geoms)
    g_all = geoms[fp_all]
    whole_all = shapely.contains_properly(shapely.box(*zbox.T), g_all)  # entirely inside the zone box
    own_all = np.where(whole_all, g_all, None)
    cut = np.flatnonzero(~whole_all)
    own_all[cut] = shapely.intersection(g_all[cut], shapely.box(*zbox[cut].T))
    keep = whole_all.copy()
    keep[cut] = shapely.area(own_all[cut]) > 0
    pad = np.array([-2.0, -2.0, 2.0, 2.0])
    pbox = np.clip(zbox + pad, [-180, -90, -180, -90], [180, 90, 180, 90])
    near_all = np.where(whole_all, g_all, None)
    cut = np.flatnonzero(~whole_all & keep)
    near_all[cut] = shapely.intersection(g_all[cut], shapely.box(*pbox[cut].T))
    out = []
    for epsg in np.unique(epsg_all[keep]):
        sel = np.flatnonzero(keep & (epsg_all == epsg))
        fps, whole = fp_all[sel], whole_all[sel]
        near = _project(near_all[sel], int(epsg))
        own = near.copy()
        if (~whole).any():
            own[~whole] = _project(own_all[sel][~whole], int(epsg))
        fast = _y_monotone(near) if min_fraction >= 1.0 - _EPS else np.zeros(sel.size, dtype=bool)
        if fast.any():
            i, col, row = _scanline_cells(near[fast], cell_m)
            # a footprint reaching across the zone border: keep cells that overlap the zone's own part
            chk = np.flatnonzero(~whole[fast][i])
            if chk.size:
                drop = _outside_own(own[fast][i[chk]], zbox[sel][fast][i[chk]], int(epsg), col[chk], row[chk], cell_m)
                i, col, row = (np.delete(x, chk[drop]) for x in (i, col, row))
            out.append((fps[fast][i], np.full(i.size, epsg), col, row))
        slow = np.flatnonzero(~fast)
        if slow.size:
            i, col, row = _tested_cells(near[slow], own[slow], whole[slow], cell_m, min_fraction)
            out.append((fps[slow][i], np.full(i.size, epsg), col, row))
    if not out:
        return tuple(np.zeros(0, dtype=np.int64) for _ in range(4))
    return tuple(np.concatenate([o[k] for o in out]).astype(np.int64) for k in range(4))


def _outside_own(own: np.ndarray, zbox: np.ndarray, epsg: int, col: np.ndarray, row: np.ndarray,
                 cell_m: int) -> np.ndarray:
    """True for cells (inside a footprint) that do not overlap the zone's own part of it with
    positive area. Cells whose corners all lie 0.001 degree (~100 m, far more than a cell edge
    bends in lon/lat) inside or outside the zone box are decided by their corners; only the cells
    on the border line need the exact area of their intersection with the own part."""
    x = np.stack([col, col + 1, col + 1, col], axis=1) * float(cell_m)
    y = np.stack([row, row, row + 1, row + 1], axis=1) * float(cell_m)
    lon, lat = _to_lonlat(epsg).transform(x, y)
    lon, lat = np.asarray(lon), np.asarray(lat)
    m = 1e-3
    inside = ((lon.min(1) >= zbox[:, 0] + m) & (lon.max(1) <= zbox[:, 2] - m)
              & (lat.min(1) >= zbox[:, 1] + m) & (lat.max(1) <= zbox[:, 3] - m))
    out = ((lon.max(1) <= zbox[:, 0] - m) | (lon.min(1) >= zbox[:, 2] + m)
           | (lat.max(1) <= zbox[:, 1] - m) | (lat.min(1) >= zbox[:, 3] + m))
    exact = np.flatnonzero(~inside & ~out)
    if exact.size:
        boxes = shapely.box(x[exact, 0], y[exact, 0], x[exact, 2], y[exact, 2])
        out[exact] = shapely.area(shapely.intersection(own[exact], boxes)) <= 0
    return out


def _tested_cells(near: np.ndarray, own: np.ndarray, whole: np.ndarray, cell_m: int, min_fraction: float):
    """Candidate cells from each own part's projected bounds, then one vectorized cover test:
    covered by ``near`` by ``min_fraction`` and overlapping ``own`` with positive area."""
    pb = shapely.bounds(own)
    ok_b = np.isfinite(pb).all(axis=1)
    c0, c1 = np.floor(pb[:, 0] / cell_m), np.floor(pb[:, 2] / cell_m)
    r0, r1 = np.floor(pb[:, 1] / cell_m), np.floor(pb[:, 3] / cell_m)
    nc = np.where(ok_b, c1 - c0 + 1, 0).astype(np.int64)
    nr = np.where(ok_b, r1 - r0 + 1, 0).astype(np.int64)
    c0, r0 = np.nan_to_num(c0).astype(np.int64), np.nan_to_num(r0).astype(np.int64)
    ncell = nc * nr
    rep = np.repeat(np.arange(near.size), ncell)
    k = np.arange(rep.size) - np.repeat(np.cumsum(ncell) - ncell, ncell)
    col = c0[rep] + k % nc[rep]
    row = r0[rep] + k // nc[rep]
    x0, y0 = col * float(cell_m), row * float(cell_m)
    x1, y1 = x0 + cell_m, y0 + cell_m
    ok = _covered(near[rep], x0, y0, x1, y1, 1.0, _dents(near)[rep])
    # border parts: the cell must also overlap the zone's own part with positive area
    chk = np.flatnonzero(ok & ~whole[rep])
    if chk.size:
        boxes = shapely.box(x0[chk], y0[chk], x1[chk], y1[chk])
        ok[chk] = shapely.area(shapely.intersection(own[rep[chk]], boxes)) > 0
    if min_fraction < 1.0 - _EPS:  # cells not fully covered: measure the covered share
        rest = np.flatnonzero(~ok)
        boxes = shapely.box(x0[rest], y0[rest], x1[rest], y1[rest])
        shapely.prepare(own)
        hit = shapely.intersects(own[rep[rest]], boxes)
        hit[hit] = shapely.area(shapely.intersection(own[rep[rest[hit]]], boxes[hit])) > 0
        frac = np.zeros(rest.size)
        frac[hit] = shapely.area(shapely.intersection(near[rep[rest[hit]]], boxes[hit])) / float(cell_m) ** 2
        ok[rest] = hit & (frac >= min_fraction - 1e-9)
    return rep[ok], col[ok], row[ok]


def footprint_cells(geoms, cell_m: int = 3840, min_fraction: float = 1.0) -> pd.DataFrame:
    """Cells covered by each lon/lat footprint: a DataFrame ``fp, epsg, col, row, cell_id``.

    The same cells as :func:`spectralearth_data.grid.cells_covering` per footprint (per zone, the
    cells that overlap the zone's own part of the footprint with positive area and are covered by
    the footprint by ``min_fraction``), computed for all footprints of a zone at once.
    """
    check_cell_m(cell_m)
    geoms = np.asarray(geoms, dtype=object)
    cols = ["fp", "epsg", "col", "row", "cell_id"]
    if geoms.size == 0:
        return pd.DataFrame({c: pd.Series(dtype="int64" if c != "cell_id" else object) for c in cols})
    fp, epsg, col, row = _anchor_cells(geoms, cell_m, min_fraction)
    df = pd.DataFrame({"fp": fp, "epsg": epsg, "col": col, "row": row}).drop_duplicates()
    df["cell_id"] = cell_ids(df["epsg"].to_numpy(), df["col"].to_numpy(), df["row"].to_numpy())
    return df.sort_values(["fp", "cell_id"]).reset_index(drop=True)[cols]


def cell_ids(epsg: np.ndarray, col: np.ndarray, row: np.ndarray) -> np.ndarray:
    """Vectorized ``f"{epsg}_{col:05d}_{row:05d}"`` (the grid's cell id)."""
    e = pd.Series(epsg, dtype="int64").astype(str)
    c = pd.Series(col, dtype="int64").astype(str).str.zfill(5)
    r = pd.Series(row, dtype="int64").astype(str).str.zfill(5)
    return (e + "_" + c + "_" + r).to_numpy(dtype=object)


def cell_outlines(epsg: np.ndarray, col: np.ndarray, row: np.ndarray, cell_m: int, densify: int = 8):
    """Lon/lat outlines (densified like ``Cell.polygon_lonlat``) and the 4 corner lon/lats of cells.

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
        inv = _to_lonlat(int(e))
        lon, lat = inv.transform(x0 + ux[None, :] * cell_m, y0 + uy[None, :] * cell_m)
        lon, lat = np.asarray(lon), np.asarray(lat)
        polys[sel] = shapely.polygons(np.stack([lon, lat], axis=-1))
        corner = [0, densify, 2 * densify, 3 * densify]
        lon4[sel], lat4[sel] = lon[:, corner], lat[:, corner]
    wide = np.flatnonzero(shapely.bounds(polys)[:, 2] - shapely.bounds(polys)[:, 0] > 180.0) if n else []
    for i in wide:  # a cell on the antimeridian: split like footprints are
        polys[i] = split_antimeridian(polys[i])
    return polys, lon4, lat4


# -- pairing ------------------------------------------------------------------------------------------


def _check_scenes(scenes: gpd.GeoDataFrame) -> gpd.GeoDataFrame:
    missing = [c for c in SCENE_COLUMNS if c not in scenes.columns]
    if missing:
        raise InputDataError(f"scene table: missing columns {missing} (expected {list(SCENE_COLUMNS)})")
    if scenes.crs is not None and scenes.crs.to_epsg() != 4326:
        scenes = scenes.to_crs(4326)
    scenes = scenes[~scenes.geometry.isna() & ~scenes.geometry.is_empty]
    # one row per (product, scene): tables of several sources may list a scene twice
    return scenes.drop_duplicates(["sensor", "scene_id"]).reset_index(drop=True)


def empty_plan() -> gpd.GeoDataFrame:
    df = pd.DataFrame({c: pd.Series(dtype=object) for c in PLAN_COLUMNS if c != "geometry"})
    return gpd.GeoDataFrame(df, geometry=gpd.GeoSeries([], crs="EPSG:4326"), crs="EPSG:4326")[list(PLAN_COLUMNS)]


@dataclass(frozen=True)
class _Scenes:
    """One product's scenes as arrays (what pairing and plan assembly index into)."""

    geoms: np.ndarray
    ns: np.ndarray  # acquisition time, UTC ns since the epoch
    cloud: np.ndarray  # percent, NaN unknown
    rank: np.ndarray  # position in (sensor, scene_id) order over the whole table
    pos: np.ndarray  # row in the whole scene table

    @classmethod
    def of(cls, scenes: gpd.GeoDataFrame, sel: np.ndarray, rank: np.ndarray, ns: np.ndarray) -> _Scenes:
        pos = np.flatnonzero(sel)
        return cls(np.asarray(scenes.geometry.values[pos], dtype=object), ns[pos],
                   scenes["cloud_cover"].to_numpy(dtype=float)[pos], rank[pos], pos)


def _candidates(A: _Scenes, P: _Scenes, window: float, skip_anchor: np.ndarray):
    """Anchor/partner footprint pairs within the window, ranked per anchor by cloud cover (unknown
    last), ``|dt|``, then scene id. Returns ``(cand_p, start, count)``: the candidates of anchor ``a``
    are ``cand_p[start[a]:start[a]+count[a]]``."""
    tree = STRtree(P.geoms)
    ai, pi = tree.query(A.geoms)  # bounding boxes only: the time window is cheaper to test first
    dt = (P.ns[pi] - A.ns[ai]) / _NS_PER_DAY
    keep = (np.abs(dt) <= window) & ~skip_anchor[ai]
    ai, pi, dt = ai[keep], pi[keep], dt[keep]
    keep = shapely.intersects(A.geoms[ai], P.geoms[pi])
    ai, pi, dt = ai[keep], pi[keep], dt[keep]
    cloud = np.where(np.isnan(P.cloud[pi]), np.inf, P.cloud[pi])
    order = np.lexsort((P.rank[pi], np.abs(dt), cloud, ai))
    ai, pi = ai[order], pi[order]
    count = np.bincount(ai, minlength=len(A.geoms))
    start = np.cumsum(count) - count
    return pi, start, count


class _ConvexRings:
    """Exterior rings of the convex single-polygon footprints among ``geoms[used]``, padded to a
    common vertex count, for a vectorized point-in-polygon test in plain numpy.

    A cell (its four corners) lies in a convex footprint exactly when every corner is on the inner
    side of every edge; other footprints (concave, multi-part, with holes, > 64 vertices) are left
    to shapely (``slot`` -1)."""

    MAX_VERTICES = 64

    def __init__(self, geoms: np.ndarray, used: np.ndarray):
        self.slot = np.full(len(geoms), -1, dtype=np.int64)
        g = geoms[used]
        single = (shapely.get_type_id(g) == 3) & (shapely.get_num_interior_rings(g) == 0)
        nv = np.zeros(g.size, dtype=np.int64)
        nv[single] = shapely.get_num_coordinates(shapely.get_exterior_ring(g[single]))
        area = shapely.area(g)
        ok = single & (nv <= self.MAX_VERTICES) & (area > 0)
        ok[ok] = shapely.area(shapely.convex_hull(g[ok])) - area[ok] <= 1e-12 * area[ok]
        idx = np.flatnonzero(ok)
        self.slot[used[idx]] = np.arange(idx.size)
        k = int(nv[idx].max()) if idx.size else 2
        coords, ring = shapely.get_coordinates(shapely.get_exterior_ring(g[idx]), return_index=True)
        pos = np.arange(ring.size) - np.searchsorted(ring, ring)
        verts = np.repeat(coords[np.searchsorted(ring, np.arange(idx.size))][:, None, :], k, axis=1)
        verts[ring, pos] = coords  # padding repeats the closing vertex: zero-length edges
        self.origin = verts[:, :-1]  # (m, k-1, 2) edge starts
        self.edge = verts[:, 1:] - verts[:, :-1]  # (m, k-1, 2) edge vectors
        cross = self.origin[..., 0] * verts[:, 1:, 1] - verts[:, 1:, 0] * self.origin[..., 1]
        self.sign = np.where(cross.sum(axis=1) >= 0, 1.0, -1.0)  # +1 counter-clockwise

    def contains(self, slot: np.ndarray, lon: np.ndarray, lat: np.ndarray, chunk: int = 100_000) -> np.ndarray:
        """Are all points ``(lon[i, j], lat[i, j])`` inside or on ring ``slot[i]``? (boundary inclusive)"""
        out = np.empty(slot.size, dtype=bool)
        for i in range(0, slot.size, chunk):
            s = slot[i:i + chunk]
            o, e = self.origin[s][:, None], self.edge[s][:, None] * self.sign[s, None, None, None]  # (m, 1, k, 2)
            dx = lon[i:i + chunk, :, None] - o[..., 0]  # (m, corners, k)
            dy = lat[i:i + chunk, :, None] - o[..., 1]
            out[i:i + chunk] = (e[..., 0] * dy - e[..., 1] * dx >= 0).all(axis=(1, 2))
        return out


def _choose(ac_a: np.ndarray, ac_cell: np.ndarray, lon4: np.ndarray, lat4: np.ndarray, polys: np.ndarray,
            pgeoms: np.ndarray, cand_p: np.ndarray, start: np.ndarray, count: np.ndarray,
            min_fraction: float) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """For each anchor-cell row, the first candidate in rank order that covers the cell.

    Returns ``(rows, partner index, n candidates, rank position taken)``; one vectorized round per
    rank position, each over every row still unresolved.
    """
    pending = np.flatnonzero(count[ac_a] > 0)
    got_rows, got_p, got_k = [], [], []
    used = np.unique(cand_p)
    full = min_fraction >= 1.0 - _EPS
    rings = _ConvexRings(pgeoms, used) if full else None
    slow = used if rings is None else used[rings.slot[used] < 0]
    pdents = np.full(len(pgeoms), None, dtype=object)
    pdents[slow] = _dents(pgeoms[slow])
    with _PREPARE_LOCK:  # products paired on other threads can share footprints (Landsat SR and LST)
        shapely.prepare(pgeoms[slow])
    k = 0
    while pending.size:
        pending = pending[count[ac_a[pending]] > k]
        if not pending.size:
            break
        p = cand_p[start[ac_a[pending]] + k]
        c = ac_cell[pending]
        ok = np.zeros(pending.size, dtype=bool)
        if full:
            fast = rings.slot[p] >= 0
            f = np.flatnonzero(fast)
            ok[f] = rings.contains(rings.slot[p[f]], lon4[c[f]], lat4[c[f]])
            sl = np.flatnonzero(~fast)
            ok[sl] = True
            for j in range(4):
                sub = sl[ok[sl]]
                ok[sub] = shapely.intersects_xy(pgeoms[p[sub]], lon4[c[sub], j], lat4[c[sub], j])
            sub = sl[ok[sl]]
            sub = sub[~shapely.is_empty(pdents[p[sub]])]
            exact = sub[shapely.intersects(pdents[p[sub]], polys[c[sub]])]
        else:
            exact = np.arange(pending.size)
        if exact.size:
            cp = polys[c[exact]]
            frac = shapely.area(shapely.intersection(pgeoms[p[exact]], cp)) / shapely.area(cp)
            ok[exact] = frac >= min_fraction - 1e-6
        got_rows.append(pending[ok])
        got_p.append(p[ok])
        got_k.append(np.full(int(ok.sum()), k))
        pending = pending[~ok]
        k += 1
    cat = (lambda x: np.concatenate(x) if x else np.zeros(0, dtype=np.int64))
    rows = cat(got_rows)
    return rows, cat(got_p), count[ac_a[rows]], cat(got_k)


def time_windows(sensors: list[str], window_days: dict[str, float] | None = None) -> dict[str, float]:
    """+/- days around an anchor acquisition within which each product's scenes may pair with it:
    ``time_window_days`` of catalogs/sensors (30 d optical/thermal, 15 d SAR, 1 d HSI), overridden
    per product by ``window_days``."""
    catalog = load_catalog()
    windows = {s: float(catalog[s].time_window_days) for s in sensors if s in catalog}
    unknown = [s for s in sensors if s not in catalog]
    if unknown:
        raise InputDataError(f"scene table: unknown product(s) {unknown}; known products: {', '.join(sorted(catalog))}")
    for s, w in (window_days or {}).items():
        if s not in catalog:
            raise InputDataError(f"window_days: unknown product {s!r}; known products: {', '.join(sorted(catalog))}")
        if not w > 0:
            raise InputDataError(f"window_days: {s} must be > 0 days, got {w}")
        windows[s] = float(w)
    return windows


@dataclass
class _Rows:
    """Plan rows as index arrays: cell, anchor, partner (into its product's scenes), product."""

    cell: np.ndarray
    anchor: np.ndarray
    partner: np.ndarray
    sensor: str
    n: np.ndarray  # candidates in the window
    k: np.ndarray  # rank position taken (k better-ranked candidates did not cover the cell)


def colocate(scenes: gpd.GeoDataFrame, cell_m: int = 3840, window_days: dict[str, float] | None = None,
             anchors: list[str] | None = None, min_fraction: float = 1.0, threads: int | None = None) -> gpd.GeoDataFrame:
    """The co-location plan (PLAN_COLUMNS, one row per cell x product x scene) for a scene table.

    ``anchors`` default to every hyperspectral product present; ``window_days`` overrides the
    per-product ``time_window_days`` (+/- days around the anchor acquisition). Rows are sorted by
    cell (EPSG, column, row), anchor time, product and scene id. Products are paired on
    ``threads`` threads (default: the CPU count, at most 4; the geometry libraries release the GIL).
    """
    check_cell_m(cell_m)
    if not 0.0 < min_fraction <= 1.0:
        raise InputDataError(f"min_fraction must be in (0, 1], got {min_fraction}")
    scenes = _check_scenes(scenes)
    catalog = load_catalog()
    present = sorted(scenes["sensor"].unique())
    if anchors is None:
        anchors = [s for s in present if s in catalog and catalog[s].kind == "hsi"]
    unknown = [a for a in anchors if a not in catalog]
    if unknown:
        raise InputDataError(f"anchor product(s) {unknown} unknown; known products: {', '.join(sorted(catalog))}")
    windows = time_windows(present, window_days)
    sensor = scenes["sensor"].to_numpy()
    rank = np.empty(len(scenes), dtype=np.int64)
    rank[np.lexsort((scenes["scene_id"].to_numpy(), sensor))] = np.arange(len(scenes))
    ns = _ns(scenes["datetime"])
    is_anchor = np.isin(sensor, anchors)
    if not is_anchor.any():
        return empty_plan()
    A = _Scenes.of(scenes, is_anchor, rank, ns)

    fp, epsg, col, row = _anchor_cells(A.geoms, cell_m, min_fraction)
    if not fp.size:
        return empty_plan()
    key = ((epsg - 32600) << 42) | (col << 21) | row  # col, row < 2**21 for any cell_m >= 60
    ac_cell = pd.factorize(key, sort=True)[0]
    first = np.unique(ac_cell, return_index=True)[1]
    u_epsg, u_col, u_row = epsg[first], col[first], row[first]
    products = {s: _Scenes.of(scenes, sensor == s, rank, ns) for s in present}
    a_sensor = sensor[A.pos]
    workers = max(1, min(threads or os.cpu_count() or 1, 4))
    with ThreadPoolExecutor(workers) as pool:
        outlines = pool.submit(cell_outlines, u_epsg, u_col, u_row, cell_m, 2)
        cands = {s: pool.submit(_candidates, A, P, windows[s], a_sensor == s) for s, P in products.items()}
        polys, lon4, lat4 = outlines.result()
        chosen = {s: pool.submit(_choose, fp, ac_cell, lon4, lat4, polys, P.geoms, *cands[s].result(), min_fraction)
                  for s, P in products.items()}
        parts = [_Rows(ac_cell, fp, fp, "", np.ones(fp.size, np.int64), np.zeros(fp.size, np.int64))]
        for s in present:
            rows, ps, n, k = chosen[s].result()
            parts.append(_Rows(ac_cell[rows], fp[rows], ps, s, n, k))
    ids = np.array([f"{e}_{c:05d}_{r:05d}" for e, c, r in zip(u_epsg.tolist(), u_col.tolist(), u_row.tolist())],
                   dtype=object)
    return _assemble(parts, scenes, A, products, ids, u_epsg, polys, cell_m, catalog)


def _reasons(n: np.ndarray, k: np.ndarray) -> np.ndarray:
    """Why a partner was chosen, one text per distinct (candidates, rank position) pair."""
    base = int(k.max(initial=0)) + 1
    code, uniq = pd.factorize(n * base + k)
    text = np.array([f"best of {a} in window by cloud cover, then |dt|"
                     + (f"; {b} better-ranked did not cover the cell" if b else "")
                     for a, b in zip((uniq // base).tolist(), (uniq % base).tolist())], dtype=object)
    return text[code]


def _assemble(parts: list[_Rows], scenes: gpd.GeoDataFrame, A: _Scenes, products: dict[str, _Scenes],
              ids: np.ndarray, u_epsg: np.ndarray, polys: np.ndarray, cell_m: int, catalog) -> gpd.GeoDataFrame:
    """Turn the index rows into the plan table: sort the index arrays once, then gather every
    column of the scene table once."""
    parts = [part for part in parts if part.cell.size]
    cell = np.concatenate([part.cell for part in parts])
    a = np.concatenate([part.anchor for part in parts])
    pos = np.concatenate([A.pos[part.anchor] if not part.sensor else products[part.sensor].pos[part.partner]
                          for part in parts])
    reason = np.concatenate([np.full(part.cell.size, "anchor", dtype=object) if not part.sensor
                             else _reasons(part.n, part.k) for part in parts])
    s_rank = np.empty(len(scenes), dtype=np.int64)
    s_rank[np.concatenate([A.pos, *(P.pos for P in products.values())])] = np.concatenate(
        [A.rank, *(P.rank for P in products.values())])
    a_order = np.lexsort((A.rank, A.ns))  # anchors by time, then product and scene id
    a_pos = np.empty(a_order.size, dtype=np.int64)
    a_pos[a_order] = np.arange(a_order.size)
    order = _sort_order(cell, a_pos[a], s_rank[pos])
    cell, a, pos, reason = cell[order], a[order], pos[order], reason[order]
    col = {c: scenes[c].to_numpy() for c in ("sensor", "scene_id", "source", "assets", "item")}
    sensor = col["sensor"][pos]
    hsi = sorted(s for s, spec in catalog.items() if spec.kind == "hsi")
    bits = np.zeros(ids.size, dtype=np.int64)
    for i, s in enumerate(hsi):
        np.bitwise_or.at(bits, cell[sensor == s], 1 << i)
    combo_code, combo_uniq = pd.factorize(bits[cell])
    combo_names = np.array(["+".join(s for i, s in enumerate(hsi) if m >> i & 1) or "none" for m in combo_uniq.tolist()],
                           dtype=object)
    ns = _ns(scenes["datetime"])
    apos = A.pos[a]
    columns = {
        "cell_id": ids[cell],
        "cell_m": np.full(cell.size, int(cell_m), dtype=np.int64),
        "epsg": u_epsg[cell],
        "sensor": sensor,
        "scene_id": col["scene_id"][pos],
        "datetime": pd.to_datetime(ns[pos], utc=True),
        "anchor_sensor": col["sensor"][apos],
        "anchor_scene_id": col["scene_id"][apos],
        "anchor_datetime": pd.to_datetime(ns[apos], utc=True),
        "dt_days": (ns[pos] - ns[apos]) / _NS_PER_DAY,
        "cloud_cover": scenes["cloud_cover"].to_numpy(dtype=float)[pos],
        "rank": np.zeros(cell.size, dtype=np.int64),
        "reason": reason,
        "hsi_combo": combo_names[combo_code],
        "source": col["source"][pos],
        "assets": col["assets"][pos],
        "item": col["item"][pos],
        "geometry": gpd.array.from_shapely(polys[cell], crs="EPSG:4326"),
    }
    # built from the column dict without copying: consolidating blocks costs seconds on large plans
    return gpd.GeoDataFrame(columns, crs="EPSG:4326", copy=False)


def _sort_order(*keys: np.ndarray) -> np.ndarray:
    """Row order by ``keys`` (non-negative integers, most significant first): one argsort of a
    packed int64 key when the bits fit, else a lexsort."""
    bits = [max(int(k.max(initial=0)), 1).bit_length() for k in keys]
    if sum(bits) > 62:
        return np.lexsort(keys[::-1])
    packed = np.zeros(keys[0].size, dtype=np.int64)
    for k, b in zip(keys, bits):
        packed = (packed << b) | k.astype(np.int64)
    return np.argsort(packed, kind="stable")


# -- output ---------------------------------------------------------------------------------------------


def write_plan(plan: gpd.GeoDataFrame, path: Path | str) -> Path:
    """Write the plan as GeoParquet (temp file, then rename)."""
    return write_table(plan, path)


def read_plan(path: Path | str) -> gpd.GeoDataFrame:
    """Read a plan GeoParquet and check its columns against PLAN_COLUMNS."""
    return read_table(path, PLAN_COLUMNS, "plan", "spectralearth colocate")


@dataclass
class PlanSummary:
    """Counts of a plan: cells, anchors, rows and scenes per product, cells per HSI combination."""

    cells: int
    rows: int
    anchor_scenes: int
    cell_m: int | None
    per_product: dict[str, dict[str, float]] = field(default_factory=dict)
    per_hsi_combo: dict[str, int] = field(default_factory=dict)
    sources: list[str] = field(default_factory=list)
    windows_days: dict[str, float] = field(default_factory=dict)

    def to_json(self) -> str:
        return json.dumps(asdict(self), indent=1, sort_keys=True)

    def table(self) -> str:
        note = "; synthesized scenes, not real acquisitions" if "demo" in self.sources else ""
        lines = [(f"{self.cells} cells, {self.anchor_scenes} anchor scenes, {self.rows} plan rows "
                  f"(sources: {', '.join(self.sources) or '-'}{note})"),
                 f"{'product':<10}{'rows':>8}{'scenes':>8}{'cells':>8}{'mean |dt| d':>13}"]
        for p, c in sorted(self.per_product.items()):
            lines.append(f"{p:<10}{c['rows']:>8}{c['scenes']:>8}{c['cells']:>8}{c['mean_abs_dt_days']:>13.2f}")
        lines.append("cells per HSI combination: " + (", ".join(f"{k}: {v}" for k, v in sorted(self.per_hsi_combo.items()))
                                                       or "-"))
        if self.windows_days:
            lines.append("time windows: " + ", ".join(f"{k} +/-{v:g} d" for k, v in sorted(self.windows_days.items())))
        return "\n".join(lines)


def summarize(plan: gpd.GeoDataFrame, windows_days: dict[str, float] | None = None) -> PlanSummary:
    """Counts per product and per HSI combination (``windows_days``: the time windows used, for the record)."""
    per_product = {}
    for s, g in plan.groupby("sensor"):
        per_product[str(s)] = {"rows": len(g), "scenes": int(g["scene_id"].nunique()),
                               "cells": int(g["cell_id"].nunique()),
                               "mean_abs_dt_days": float(np.abs(g["dt_days"].astype(float)).mean())}
    combos = plan.drop_duplicates("cell_id")["hsi_combo"].value_counts()
    return PlanSummary(
        cells=int(plan["cell_id"].nunique()),
        rows=len(plan),
        anchor_scenes=int(plan["anchor_scene_id"].nunique()),
        cell_m=int(plan["cell_m"].iloc[0]) if len(plan) else None,
        per_product=per_product,
        per_hsi_combo={str(k): int(v) for k, v in combos.items()},
        sources=sorted(map(str, plan["source"].unique())),
        windows_days=dict(windows_days or {}),
    )


def coverage_map(plan: gpd.GeoDataFrame, path_png: Path | str, region=None, title: str | None = None) -> Path:
    """A PNG of the plan's cells coloured by HSI combination, with the region outline.

    The title names the data it ran on (the sources; "synthesized" for the demo).
    """
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    path_png = Path(path_png)
    path_png.parent.mkdir(parents=True, exist_ok=True)
    cells = plan.drop_duplicates("cell_id")
    fig, ax = plt.subplots(figsize=(7, 6), dpi=100)
    combos = sorted(cells["hsi_combo"].unique())
    cmap = plt.get_cmap("tab10")
    for i, combo in enumerate(combos):
        sub = cells[cells["hsi_combo"] == combo]
        sub.plot(ax=ax, color=cmap(i % 10), edgecolor="black", linewidth=0.3, alpha=0.8,
                 label=f"{combo} ({len(sub)} cells)")
    if region is not None:
        gpd.GeoSeries([region.shape if hasattr(region, "shape") else region], crs="EPSG:4326").boundary.plot(
            ax=ax, color="red", linewidth=1.2, label="region")
    sources = sorted(map(str, plan["source"].unique())) if len(plan) else []
    data = ", ".join(sources) or "no scenes"
    if "demo" in sources:
        data += " (synthesized scenes, not real acquisitions)"
    ax.set_title(title or f"Co-located cells by HSI combination\ndata: {data}", fontsize=9)
    ax.set_xlabel("longitude")
    ax.set_ylabel("latitude")
    if combos or region is not None:
        ax.legend(fontsize=7, loc="best")
    fig.tight_layout()
    fig.savefig(path_png)
    plt.close(fig)
    return path_png
