"""Covering lon/lat geometries with grid cells. Pure functions, no I/O.

Along zone borders the squares of the two zones overlap (they are squares in two projections): a
cell of zone Z is a valid cell when any part of it lies in Z, and the cover returns, per zone, the
cells that cover the zone's own part of the geometry, so coverage has no gaps at zone or
polar-cap borders. (Assigning border cells by their centre alone, as an earlier version did,
leaves strips up to half a cell wide that no cell covers.)

Two implementations of the same rule:

* :func:`cells_covering`, one geometry at a time (the reference; shapely per zone);
* :func:`footprint_cells` / :func:`footprint_cell_arrays`, all footprints of a zone at once (what
  co-location runs on 10^5 footprints): an exact scanline over the projected footprint's boundary
  for footprints that stay y-monotone (convex ones do) at full cover, a vectorized shapely cover
  test for the rest (zone borders, holes, partial cover). tests/catalog/test_grid_cover.py checks
  that they agree.
"""

from __future__ import annotations

import math

import numpy as np
import pandas as pd
import shapely
from shapely.geometry import box
from shapely.geometry.base import BaseGeometry

from ..errors import GridError
from .cells import Cell, cell_ids, check_cell_m
from .zones import UPS_NORTH, UPS_SOUTH, UTM_MAX_LAT, UTM_MIN_LAT, project, split_antimeridian, to_lonlat

_EPS = 1e-9


# -- one geometry ------------------------------------------------------------------------------------


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
        own = project(own_part, epsg)
        near = project(near_part, epsg)
        x0, y0, x1, y1 = own.bounds
        c0, c1 = int(math.floor(x0 / cell_m)), int(math.floor(x1 / cell_m))
        r0, r1 = int(math.floor(y0 / cell_m)), int(math.floor(y1 / cell_m))
        cols, rows = (a.ravel() for a in np.meshgrid(np.arange(c0, c1 + 1), np.arange(r0, r1 + 1)))
        boxes = shapely.box(cols * cell_m, rows * cell_m, (cols + 1) * cell_m, (rows + 1) * cell_m)
        shapely.prepare(own)
        hit = shapely.intersects(own, boxes)
        hit[hit] = shapely.area(shapely.intersection(boxes[hit], own)) > 0
        frac = np.zeros(cols.size)
        frac[hit] = shapely.area(shapely.intersection(boxes[hit], near)) / float(cell_m) ** 2
        ok = hit & (frac >= min_fraction - 1e-9)
        found.update(Cell(epsg, int(c), int(r), cell_m) for c, r in zip(cols[ok], rows[ok]))
    return sorted(found, key=lambda c: c.id)


# -- many footprints at once -------------------------------------------------------------------------


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


def concave_dents(geoms: np.ndarray) -> np.ndarray:
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
            dents = concave_dents(geoms)
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


def footprint_cell_arrays(geoms: np.ndarray, cell_m: int, min_fraction: float):
    """``(fp, epsg, col, row)`` int64 arrays of the cells covered by each lon/lat footprint of the
    object array ``geoms`` (``fp`` indexes it; see :func:`footprint_cells`, which also gives the
    ids); footprints inside one zone that stay y-monotone once projected take the exact scanline
    path, the rest (zone borders, holes, partial cover) a vectorized shapely test."""
    check_cell_m(cell_m)
    b = shapely.bounds(geoms)
    wide = np.flatnonzero(b[:, 2] - b[:, 0] > 180.0)
    if wide.size:
        geoms = geoms.copy()
        geoms[wide] = [split_antimeridian(g) for g in geoms[wide]]
    fp_all, epsg_all, zbox = _zone_boxes(geoms)
    g_all = geoms[fp_all]
    whole_all = shapely.contains_properly(shapely.box(*zbox.T), g_all)  # entirely inside the zone box
    own_all = g_all.copy()  # the geometry where it lies wholly inside its zone box, else None
    own_all[~whole_all] = None
    cut = np.flatnonzero(~whole_all)
    own_all[cut] = shapely.intersection(g_all[cut], shapely.box(*zbox[cut].T))
    keep = whole_all.copy()
    keep[cut] = shapely.area(own_all[cut]) > 0
    pad = np.array([-2.0, -2.0, 2.0, 2.0])
    pbox = np.clip(zbox + pad, [-180, -90, -180, -90], [180, 90, 180, 90])
    near_all = g_all.copy()
    near_all[~whole_all] = None
    cut = np.flatnonzero(~whole_all & keep)
    near_all[cut] = shapely.intersection(g_all[cut], shapely.box(*pbox[cut].T))
    out = []
    for epsg in np.unique(epsg_all[keep]):
        sel = np.flatnonzero(keep & (epsg_all == epsg))
        fps, whole = fp_all[sel], whole_all[sel]
        near = project(near_all[sel], int(epsg))
        own = near.copy()
        if (~whole).any():
            own[~whole] = project(own_all[sel][~whole], int(epsg))
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
    lon, lat = to_lonlat(epsg).transform(x, y)
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
    ok = _covered(near[rep], x0, y0, x1, y1, 1.0, concave_dents(near)[rep])
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

    The same cells as :func:`cells_covering` per footprint (per zone, the
    cells that overlap the zone's own part of the footprint with positive area and are covered by
    the footprint by ``min_fraction``), computed for all footprints of a zone at once.
    """
    check_cell_m(cell_m)
    geoms = np.asarray(geoms, dtype=object)
    cols = ["fp", "epsg", "col", "row", "cell_id"]
    if geoms.size == 0:
        return pd.DataFrame({c: pd.Series(dtype="int64" if c != "cell_id" else object) for c in cols})
    fp, epsg, col, row = footprint_cell_arrays(geoms, cell_m, min_fraction)
    df = pd.DataFrame({"fp": fp, "epsg": epsg, "col": col, "row": row}).drop_duplicates()
    df["cell_id"] = cell_ids(df["epsg"].to_numpy(), df["col"].to_numpy(), df["row"].to_numpy())
    return df.sort_values(["fp", "cell_id"]).reset_index(drop=True)[cols]
