"""Co-location: pair scenes on the global grid and write the plan (DESIGN.md "Scenes and the plan").

1. **Anchor cells.** Every anchor scene (by default every hyperspectral product) claims the grid
   cells its footprint covers by at least ``min_fraction`` (default 1: fully covered), computed
   for all footprints at once in each UTM/UPS zone by the grid's vectorized cover
   (:func:`spectralearth_data.grid.footprint_cell_arrays`, the same cells as ``cells_covering``).
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
benchmarks/colocate.py measures it against a nested loop. The plan is written and read back
here (:func:`write_plan`, :func:`read_plan`: the one reader of plan files).

**Partition by partition** (:func:`colocate_partitions`): the same rows, one partition of the grid
(:mod:`spectralearth_data.grid.partitions`) at a time, each from the anchors that may reach its
cells and their candidate partners only, so memory follows a partition; :func:`concat_plans` of
the partitions' plans equals :func:`colocate` of the whole table.
"""

from __future__ import annotations

import json
import os
import threading
from collections import deque
from collections.abc import Iterable, Iterator, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import asdict, dataclass, field
from pathlib import Path

import geopandas as gpd
import numpy as np
import pandas as pd
import shapely
from pyproj import CRS
from shapely import STRtree

from .catalog import load_catalog
from .errors import InputDataError
from .grid import (
    Partition,
    PartitionScheme,
    cell_ids,
    cell_outlines,
    check_cell_m,
    concave_dents,
    footprint_cell_arrays,
    footprint_partition_keys,
    partition_keys,
    partition_of,
)
from .schema import PLAN_COLUMNS, SCENE_COLUMNS
from .tables import read_table, write_table

_EPS = 1e-9
_PREPARE_LOCK = threading.Lock()
_NS_PER_DAY = 86_400e9
_WGS84 = CRS.from_epsg(4326)  # one CRS object: building one from text costs ~1 ms a plan


def _ns(times: pd.Series) -> np.ndarray:
    """UTC nanoseconds since the epoch of a (tz-aware) datetime column."""
    if isinstance(times.dtype, pd.DatetimeTZDtype):  # the scene table's: no parsing, no cache probing
        return times.dt.tz_convert("UTC").astype("int64").to_numpy()
    return pd.to_datetime(times, utc=True).astype("int64").to_numpy()


def _utc(ns: np.ndarray) -> pd.DatetimeIndex:
    """Nanoseconds since the epoch as UTC datetimes (what ``pd.to_datetime(ns, utc=True)`` gives)."""
    return pd.DatetimeIndex(np.asarray(ns, dtype=np.int64).view("datetime64[ns]")).tz_localize("UTC")


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
        origin = verts[:, :-1]  # (m, k-1, 2) edge starts
        edge = verts[:, 1:] - verts[:, :-1]  # (m, k-1, 2) edge vectors
        cross = origin[..., 0] * verts[:, 1:, 1] - verts[:, 1:, 0] * origin[..., 1]
        sign = np.where(cross.sum(axis=1) >= 0, 1.0, -1.0)[:, None]  # +1 counter-clockwise
        # (m, k-1) each: edge starts and edges turned counter-clockwise (the inside on their left)
        self.ox, self.oy = np.ascontiguousarray(origin[..., 0]), np.ascontiguousarray(origin[..., 1])
        self.ex, self.ey = edge[..., 0] * sign, edge[..., 1] * sign

    def contains(self, slot: np.ndarray, lon: np.ndarray, lat: np.ndarray, chunk: int = 100_000) -> np.ndarray:
        """Are all points ``(lon[i, j], lat[i, j])`` inside or on ring ``slot[i]``? (boundary inclusive)"""
        out = np.empty(slot.size, dtype=bool)
        for i in range(0, slot.size, chunk):
            s = slot[i:i + chunk]
            dx = lon[i:i + chunk, :, None] - self.ox[s][:, None]  # (m, corners, k)
            dy = lat[i:i + chunk, :, None] - self.oy[s][:, None]
            out[i:i + chunk] = (self.ex[s][:, None] * dy - self.ey[s][:, None] * dx >= 0).all(axis=(1, 2))
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
    pdents[slow] = concave_dents(pgeoms[slow])
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
    :func:`colocate_partitions` gives the same rows partition by partition.
    """
    scenes, anchors, windows = _prepare(scenes, cell_m, window_days, anchors, min_fraction)
    return _plan(scenes, cell_m, windows, anchors, min_fraction, threads)


def _prepare(scenes: gpd.GeoDataFrame, cell_m: int, window_days: dict[str, float] | None,
             anchors: list[str] | None, min_fraction: float) -> tuple[gpd.GeoDataFrame, list[str], dict[str, float]]:
    """Checked arguments: the scene table (one row per product and scene), the anchor products
    (default: the hyperspectral products present) and every present product's time window."""
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
    return scenes, list(anchors), time_windows(present, window_days)


def _plan(scenes: gpd.GeoDataFrame, cell_m: int, windows: dict[str, float], anchors: list[str],
          min_fraction: float, threads: int | None, owned=None) -> gpd.GeoDataFrame:
    """:func:`colocate` on checked arguments; ``owned(epsg, col, row)`` (a boolean mask over
    cells), when given, keeps the rows of those cells only (a partition's)."""
    catalog = load_catalog()
    present = sorted(scenes["sensor"].unique())
    sensor = scenes["sensor"].to_numpy()
    rank = np.empty(len(scenes), dtype=np.int64)
    rank[np.lexsort((scenes["scene_id"].to_numpy(), sensor))] = np.arange(len(scenes))
    ns = _ns(scenes["datetime"])
    is_anchor = np.isin(sensor, anchors)
    if not is_anchor.any():
        return empty_plan()
    A = _Scenes.of(scenes, is_anchor, rank, ns)

    fp, epsg, col, row = footprint_cell_arrays(A.geoms, cell_m, min_fraction)
    key = ((epsg - 32600) << 42) | (col << 21) | row  # col, row < 2**21 for any cell_m >= 60
    if owned is not None and fp.size:
        first = np.unique(key, return_index=True)[1]
        keep = np.isin(key, key[first][owned(epsg[first], col[first], row[first])])
        fp, epsg, col, row, key = fp[keep], epsg[keep], col[keep], row[keep], key[keep]
    if not fp.size:
        return empty_plan()
    ac_cell = pd.factorize(key, sort=True)[0]
    first = np.unique(ac_cell, return_index=True)[1]
    u_epsg, u_col, u_row = epsg[first], col[first], row[first]
    a_sensor = sensor[A.pos]
    # a product whose scenes are all anchors never pairs with them (an anchor skips its own product)
    products = {s: _Scenes.of(scenes, sensor == s, rank, ns) for s in present if not (a_sensor == s).all()}
    workers = max(1, min(threads or os.cpu_count() or 1, 4))
    with ThreadPoolExecutor(workers) as pool:
        outlines = pool.submit(cell_outlines, u_epsg, u_col, u_row, cell_m, 2)
        cands = {s: pool.submit(_candidates, A, P, windows[s], a_sensor == s) for s, P in products.items()}
        polys, lon4, lat4 = outlines.result()
        chosen = {s: pool.submit(_choose, fp, ac_cell, lon4, lat4, polys, P.geoms, *cands[s].result(), min_fraction)
                  for s, P in products.items()}
        parts = [_Rows(ac_cell, fp, fp, "", np.ones(fp.size, np.int64), np.zeros(fp.size, np.int64))]
        for s in products:
            rows, ps, n, k = chosen[s].result()
            parts.append(_Rows(ac_cell[rows], fp[rows], ps, s, n, k))
    ids = cell_ids(u_epsg, u_col, u_row)
    return _assemble(parts, scenes, A, products, ids, u_epsg, polys, cell_m, catalog)


# -- partition by partition -------------------------------------------------------------------------


def colocate_partitions(scenes: gpd.GeoDataFrame, scheme: PartitionScheme | None = None, cell_m: int = 3840,
                        window_days: dict[str, float] | None = None, anchors: list[str] | None = None,
                        min_fraction: float = 1.0, threads: int | None = 1, workers: int = 2
                        ) -> Iterator[tuple[Partition, gpd.GeoDataFrame]]:
    """:func:`colocate`, one partition of the grid at a time: ``(partition, plan)`` in key order
    (zone group, then latitude band).

    Each plan holds the rows of the cells the partition owns (:mod:`spectralearth_data.grid.partitions`:
    every cell has one partition), exactly as :func:`colocate` of the whole table gives them, in
    the same order; :func:`concat_plans` of all of them equals it. A partition is co-located from
    the anchor scenes whose footprint may reach its cells (a scene across partition or zone
    borders goes to each) and every scene that is a candidate partner of one of them (box
    overlap and time window), so memory follows the partition, not the table. Partitions whose
    anchors cover none of its cells give an empty plan. ``scheme`` defaults to
    :class:`~spectralearth_data.grid.PartitionScheme()` (one UTM zone x 8 degrees).

    ``workers`` partitions are co-located at once (threads), each on ``threads`` threads; at most
    ``workers`` plans are held besides the one handed out. Arguments are checked before the
    first partition is asked for.
    """
    scheme = scheme or PartitionScheme()
    checked, anchors, windows = _prepare(scenes, cell_m, window_days, anchors, min_fraction)
    return _partition_plans(checked, scheme, cell_m, windows, anchors, min_fraction, threads, workers)


def _partition_plans(scenes: gpd.GeoDataFrame, scheme: PartitionScheme, cell_m: int, windows: dict[str, float],
                     anchors: list[str], min_fraction: float, threads: int | None, workers: int
                     ) -> Iterator[tuple[Partition, gpd.GeoDataFrame]]:
    sensor = scenes["sensor"].to_numpy()
    a_idx = np.flatnonzero(np.isin(sensor, anchors))
    if not a_idx.size:
        return
    geoms = np.asarray(scenes.geometry.values, dtype=object)
    fp, keys = footprint_partition_keys(geoms[a_idx], cell_m, scheme)
    code, names = pd.factorize(sensor)
    win_ns = np.array([windows[s] for s in names])[code] * _NS_PER_DAY + 1e9  # 1 s margin: a superset
    ns = _ns(scenes["datetime"])
    tree = STRtree(geoms)
    order = np.argsort(keys, kind="stable")
    edges = np.flatnonzero(np.diff(keys[order], prepend=-1, append=-1))

    def one(lo: int, hi: int) -> gpd.GeoDataFrame:
        key = int(keys[order[lo]])
        a = a_idx[fp[order[lo:hi]]]
        ai, pi = tree.query(geoms[a])  # boxes only, like the candidates of colocate
        near = (np.abs(ns[pi] - ns[a[ai]]) <= win_ns[pi]) & (code[pi] != code[a[ai]])
        members = np.union1d(a, pi[near])

        def owned(e, c, r):
            return partition_keys(e, c, r, cell_m, scheme) == key

        sub = scenes.iloc[members].reset_index(drop=True)
        return _plan(sub, cell_m, windows, anchors, min_fraction, threads, owned)

    spans = list(zip(edges[:-1].tolist(), edges[1:].tolist()))
    n = max(1, workers)
    with ThreadPoolExecutor(n) as pool:  # partitions in flight: at most n, yielded in key order
        pending = deque(pool.submit(one, lo, hi) for lo, hi in spans[:n])
        for i, (lo, _) in enumerate(spans):
            plan = pending.popleft().result()
            if i + n < len(spans):
                pending.append(pool.submit(one, *spans[i + n]))
            yield partition_of(int(keys[order[lo]]), scheme), plan


def concat_plans(plans: Iterable[gpd.GeoDataFrame]) -> gpd.GeoDataFrame:
    """One plan from the plans of :func:`colocate_partitions`: cells in :func:`colocate`'s order
    (EPSG, column, row), the rows of each cell in their own order (a stable sort)."""
    plans = [p for p in plans if len(p)]
    if not plans:
        return empty_plan()
    plan = pd.concat(plans, ignore_index=True)
    parts = plan["cell_id"].str.split("_", expand=True).astype(np.int64)
    order = np.lexsort((parts[2].to_numpy(), parts[1].to_numpy(), parts[0].to_numpy()))
    return plan.iloc[order].reset_index(drop=True)


#: Smaller cell sizes :func:`explain_empty` tries when no cell fits inside the anchor scenes.
_SMALLER_CELLS_M = (1920, 960, 480, 240)


#: How :func:`explain_empty` names the settings to change: the command line's options.
CLI_OPTIONS = {"cell_m": "--cell-m {}", "anchor": "--anchor {}", "min_fraction": "--min-fraction"}


def explain_empty(scenes: gpd.GeoDataFrame, cell_m: int = 3840, anchors: list[str] | None = None,
                  min_fraction: float = 1.0, options: dict[str, str] | None = None) -> str:
    """Why :func:`colocate` gives no cells for these arguments, and what to change (one line).

    ``options`` names the settings as the caller's user knows them (default :data:`CLI_OPTIONS`;
    a flow passes its parameter names)."""
    opt = {**CLI_OPTIONS, **(options or {})}
    scenes = _check_scenes(scenes)
    catalog = load_catalog()
    present = sorted(map(str, scenes["sensor"].unique()))
    if not present:
        return "the scene table has no scenes with a footprint (the search found none)"
    if anchors is None:
        anchors = [s for s in present if s in catalog and catalog[s].kind == "hsi"]
        if not anchors:
            return (f"no hyperspectral scenes to anchor the cells (products present: {', '.join(present)}); "
                    f"give {opt['anchor'].format('s2')} (or another product present) to anchor on it")
    sel = scenes["sensor"].isin(anchors).to_numpy()
    if not sel.any():
        return (f"no scenes of the anchor product(s) {', '.join(anchors)} (products present: {', '.join(present)}); "
                f"give {opt['anchor'].format('PRODUCT')} with one of those")
    geoms = np.asarray(scenes.geometry.values[sel], dtype=object)
    cover = "fully" if min_fraction >= 1.0 - _EPS else f"to {min_fraction:g}"
    # the scenes' extent in km (UTM of their centre), to compare with the cell size
    sizes = []
    for g in geoms:
        lon, lat = g.centroid.x, g.centroid.y
        epsg = (32600 if lat >= 0 else 32700) + min(int((lon + 180) // 6) + 1, 60)
        x0, y0, x1, y1 = gpd.GeoSeries([g], crs=4326).to_crs(epsg).total_bounds
        sizes.append((x1 - x0, y1 - y0))
    w, h = max(sizes, key=lambda wh: min(wh))
    what = (f"no {cell_m} m cell is {cover} covered by one of the {len(geoms)} anchor scene(s) "
            f"({', '.join(anchors)}; the largest about {w / 1000:.1f} x {h / 1000:.1f} km)")
    for smaller in _SMALLER_CELLS_M:
        if smaller < cell_m and _fits(smaller, catalog) and footprint_cell_arrays(geoms, smaller, min_fraction)[0].size:
            return f"{what}: the cells are larger than the scenes allow; use smaller cells, e.g. {opt['cell_m'].format(smaller)}"
    return f"{what}; even {min(_SMALLER_CELLS_M)} m cells do not fit: check the scene footprints" + (
        "" if cover == "fully" else f" or lower {opt['min_fraction']}")


def _fits(cell_m: int, catalog) -> bool:
    """Does every product of the catalog have a whole patch size for ``cell_m``?"""
    try:
        for spec in catalog.values():
            spec.patch_px_for(cell_m)
    except Exception:  # noqa: BLE001 -- a catalog error for this size: do not suggest it
        return False
    return True


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
        "datetime": _utc(ns[pos]),
        "anchor_sensor": col["sensor"][apos],
        "anchor_scene_id": col["scene_id"][apos],
        "anchor_datetime": _utc(ns[apos]),
        "dt_days": (ns[pos] - ns[apos]) / _NS_PER_DAY,
        "cloud_cover": scenes["cloud_cover"].to_numpy(dtype=float)[pos],
        "rank": np.zeros(cell.size, dtype=np.int64),
        "reason": reason,
        "hsi_combo": combo_names[combo_code],
        "source": col["source"][pos],
        "assets": col["assets"][pos],
        "item": col["item"][pos],
        "geometry": gpd.array.from_shapely(polys[cell], crs=_WGS84),
    }
    # built from the column dict without copying: consolidating blocks costs seconds on large plans
    return gpd.GeoDataFrame(columns, crs=_WGS84, copy=False)


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


def read_plan(path: Path | str, columns: Sequence[str] = PLAN_COLUMNS) -> gpd.GeoDataFrame:
    """Read a plan GeoParquet and check it has ``columns`` (default: all of PLAN_COLUMNS).

    The one reader of plan files: the tiling engine passes the subset of columns it needs.
    """
    return read_table(path, columns, "plan", "spectralearth colocate")


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
