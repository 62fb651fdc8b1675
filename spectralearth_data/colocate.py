"""Co-location: pair scenes on the global grid and write the plan (DESIGN.md "Scenes and the plan").

1. **Anchor cells.** Every anchor scene (by default every hyperspectral product) claims the grid
   cells its footprint covers by at least ``min_fraction`` (default 1: fully covered), computed
   for all footprints at once in each UTM/UPS zone (:func:`footprint_cells`).
2. **Candidates.** Per partner product, one STRtree query pairs anchor footprints with partner
   footprints that intersect them; pairs outside the product's time window (``time_window_days``
   in catalogs/sensors, or ``window_days``) are dropped, and each anchor's candidates are ranked
   by cloud cover (unknown last), then ``|dt|``, then scene id.
3. **Choice.** Each (cell, anchor scene, product) takes the best-ranked candidate that covers the
   cell by ``min_fraction``; candidates are tried in rank order, all cells at once per round.

No Python loop runs over footprint pairs: the loops are over zones, products and rank rounds.
Several anchor acquisitions of one cell are all kept; ``hsi_combo`` records which hyperspectral
products a cell has (``emit+enmap`` ...), as SpectralEarth-MM's pair/triplet groups.
"""

from __future__ import annotations

import json
import math
from dataclasses import asdict, dataclass, field
from pathlib import Path

import geopandas as gpd
import numpy as np
import pandas as pd
import shapely
from shapely import STRtree

from .catalog import load_catalog
from .errors import InputDataError
from .grid import UPS_NORTH, UPS_SOUTH, UTM_MAX_LAT, UTM_MIN_LAT, _from_lonlat, _to_lonlat, check_cell_m, split_antimeridian
from .schema import PLAN_COLUMNS, SCENE_COLUMNS

_EPS = 1e-9
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


def footprint_cells(geoms, cell_m: int = 3840, min_fraction: float = 1.0) -> pd.DataFrame:
    """Cells covered by each lon/lat footprint: a DataFrame ``fp, epsg, col, row, cell_id``.

    The same cells as :func:`spectralearth_data.grid.cells_covering` per footprint (per zone, the
    cells that overlap the zone's own part of the footprint with positive area and are covered by
    the footprint by ``min_fraction``), computed for all footprints of a zone at once: candidate
    cells come from each own part's projected bounds, then one vectorized cover test.
    """
    check_cell_m(cell_m)
    geoms = np.asarray(geoms, dtype=object)
    cols = ["fp", "epsg", "col", "row", "cell_id"]
    if geoms.size == 0:
        return pd.DataFrame({c: pd.Series(dtype="int64" if c != "cell_id" else object) for c in cols})
    b = shapely.bounds(geoms)
    wide = np.flatnonzero(b[:, 2] - b[:, 0] > 180.0)
    if wide.size:
        geoms = geoms.copy()
        geoms[wide] = [split_antimeridian(g) for g in geoms[wide]]
    fp_all, epsg_all, zbox = _zone_boxes(geoms)
    g_all = geoms[fp_all]
    own_all = shapely.intersection(g_all, shapely.box(*zbox.T))
    area = shapely.area(g_all)
    own_area = shapely.area(own_all)
    keep = own_area > 0
    whole_all = own_area >= area * (1 - 1e-12)  # footprint entirely inside the zone box
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
        pb = shapely.bounds(own)
        ok_b = np.isfinite(pb).all(axis=1)
        c0, c1 = np.floor(pb[:, 0] / cell_m), np.floor(pb[:, 2] / cell_m)
        r0, r1 = np.floor(pb[:, 1] / cell_m), np.floor(pb[:, 3] / cell_m)
        nc = np.where(ok_b, c1 - c0 + 1, 0).astype(np.int64)
        nr = np.where(ok_b, r1 - r0 + 1, 0).astype(np.int64)
        c0, r0 = np.nan_to_num(c0).astype(np.int64), np.nan_to_num(r0).astype(np.int64)
        ncell = nc * nr
        rep = np.repeat(np.arange(fps.size), ncell)
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
        out.append(pd.DataFrame({"fp": fps[rep[ok]], "epsg": int(epsg), "col": col[ok], "row": row[ok]}))
    df = pd.concat(out, ignore_index=True) if out else pd.DataFrame({c: [] for c in cols[:-1]})
    df = df.drop_duplicates(["fp", "epsg", "col", "row"]).astype("int64")
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
    return scenes.reset_index(drop=True)


def empty_plan() -> gpd.GeoDataFrame:
    df = pd.DataFrame({c: pd.Series(dtype=object) for c in PLAN_COLUMNS if c != "geometry"})
    return gpd.GeoDataFrame(df, geometry=gpd.GeoSeries([], crs="EPSG:4326"), crs="EPSG:4326")[list(PLAN_COLUMNS)]


def _candidates(A: gpd.GeoDataFrame, P: gpd.GeoDataFrame, window: float, skip_sensor: np.ndarray):
    """Anchor/partner footprint pairs within the window, ranked per anchor. Returns
    ``(cand_p, start, count)``: candidates of anchor ``a`` are ``cand_p[start[a]:start[a]+count[a]]``."""
    tree = STRtree(P.geometry.values)
    ai, pi = tree.query(A.geometry.values, predicate="intersects")
    dt = (_ns(P["datetime"])[pi] - _ns(A["datetime"])[ai]) / _NS_PER_DAY
    keep = (np.abs(dt) <= window) & ~skip_sensor[ai]
    ai, pi, dt = ai[keep], pi[keep], dt[keep]
    cloud = P["cloud_cover"].to_numpy(dtype=float)[pi]
    cloud = np.where(np.isnan(cloud), np.inf, cloud)
    sid = pd.factorize(P["scene_id"].to_numpy(), sort=True)[0][pi]
    order = np.lexsort((sid, np.abs(dt), cloud, ai))
    ai, pi = ai[order], pi[order]
    count = np.bincount(ai, minlength=len(A))
    start = np.cumsum(count) - count
    return pi, start, count


def _choose(ac_a: np.ndarray, ac_cell: np.ndarray, lon4: np.ndarray, lat4: np.ndarray, polys: np.ndarray,
            pgeoms: np.ndarray, cand_p: np.ndarray, start: np.ndarray, count: np.ndarray,
            min_fraction: float) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """For each anchor-cell row, the first candidate in rank order that covers the cell.

    Returns ``(rows, partner index, n candidates)``; one vectorized round per rank position.
    """
    pending = np.flatnonzero(count[ac_a] > 0)
    got_rows, got_p = [], []
    used = np.unique(cand_p)
    pdents = np.full(len(pgeoms), shapely.Polygon(), dtype=object)
    pdents[used] = _dents(pgeoms[used])
    shapely.prepare(pgeoms[used])
    k = 0
    while pending.size:
        pending = pending[count[ac_a[pending]] > k]
        if not pending.size:
            break
        p = cand_p[start[ac_a[pending]] + k]
        c = ac_cell[pending]
        g = pgeoms[p]
        if min_fraction >= 1.0 - _EPS:
            ok = np.ones(pending.size, dtype=bool)
            for j in range(4):
                sub = np.flatnonzero(ok)
                ok[sub] = shapely.intersects_xy(g[sub], lon4[c[sub], j], lat4[c[sub], j])
            sub = np.flatnonzero(ok & ~shapely.is_empty(pdents[p]))
            exact = sub[shapely.intersects(pdents[p[sub]], polys[c[sub]])]
        else:
            ok = np.zeros(pending.size, dtype=bool)
            exact = np.arange(pending.size)
        if exact.size:
            cp = polys[c[exact]]
            frac = shapely.area(shapely.intersection(g[exact], cp)) / shapely.area(cp)
            ok[exact] = frac >= min_fraction - 1e-6
        got_rows.append(pending[ok])
        got_p.append(p[ok])
        pending = pending[~ok]
        k += 1
    rows = np.concatenate(got_rows) if got_rows else np.zeros(0, dtype=np.int64)
    ps = np.concatenate(got_p) if got_p else np.zeros(0, dtype=np.int64)
    return rows, ps, count[ac_a[rows]]


def colocate(scenes: gpd.GeoDataFrame, cell_m: int = 3840, window_days: dict[str, float] | None = None,
             anchors: list[str] | None = None, min_fraction: float = 1.0) -> gpd.GeoDataFrame:
    """The co-location plan (PLAN_COLUMNS, one row per cell x product x scene) for a scene table.

    ``anchors`` default to every hyperspectral product present; ``window_days`` overrides the
    per-product ``time_window_days`` (+/- days around the anchor acquisition).
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
    windows = {s: float(catalog[s].time_window_days) if s in catalog else 30.0 for s in present}
    for s, w in (window_days or {}).items():
        if s not in catalog:
            raise InputDataError(f"window_days: unknown product {s!r}")
        if not w > 0:
            raise InputDataError(f"window_days: {s} must be > 0 days, got {w}")
        windows[s] = float(w)
    A = scenes[scenes["sensor"].isin(anchors)].reset_index(drop=True)
    if A.empty:
        return empty_plan()

    fc = footprint_cells(A.geometry.values, cell_m, min_fraction)
    if fc.empty:
        return empty_plan()
    cell_code, cell_uniq = pd.factorize(fc["cell_id"])
    first = np.unique(cell_code, return_index=True)[1]
    u_epsg, u_col, u_row = (fc[c].to_numpy()[first] for c in ("epsg", "col", "row"))
    polys, lon4, lat4 = cell_outlines(u_epsg, u_col, u_row, cell_m)
    ac_a, ac_cell = fc["fp"].to_numpy(), cell_code

    parts = [pd.DataFrame({"cell": ac_cell, "a": ac_a, "p": ac_a, "sensor_src": "anchor", "n": 1})]
    a_sensor = A["sensor"].to_numpy()
    for s in present:
        P = scenes[scenes["sensor"] == s].reset_index(drop=True)
        cand_p, start, count = _candidates(A, P, windows[s], a_sensor == s)
        rows, ps, n = _choose(ac_a, ac_cell, lon4, lat4, polys, P.geometry.values, cand_p, start, count, min_fraction)
        parts.append(pd.DataFrame({"cell": ac_cell[rows], "a": ac_a[rows], "p": ps, "sensor_src": s, "n": n}))
    return _assemble(parts, A, scenes, cell_uniq, u_epsg, polys, cell_m, catalog)


def _assemble(parts, A, scenes, cell_uniq, u_epsg, polys, cell_m, catalog) -> gpd.GeoDataFrame:
    """Turn (cell, anchor, partner) index rows into the plan table."""
    frames = []
    for part in parts:
        if part.empty:
            continue
        src = part["sensor_src"].iloc[0]
        a = part["a"].to_numpy()
        if src == "anchor":
            S = A.iloc[a]
        else:
            S = scenes[scenes["sensor"] == src].reset_index(drop=True).iloc[part["p"].to_numpy()]
        anc = A.iloc[a]
        dt = (_ns(S["datetime"]) - _ns(anc["datetime"])) / _NS_PER_DAY
        cloud = S["cloud_cover"].to_numpy(dtype=float)
        if src == "anchor":
            reason = np.full(len(S), "anchor", dtype=object)
        else:
            cc = pd.Series(cloud).round(1).astype(str).where(~np.isnan(cloud), "n/a")
            reason = ("best of " + part["n"].astype(str).to_numpy() + " in window: cloud " + cc.to_numpy()
                      + "% dt " + pd.Series(dt).round(2).map("{:+}".format).to_numpy() + " d")
        frames.append(pd.DataFrame({
            "cell_id": cell_uniq[part["cell"].to_numpy()],
            "cell_m": int(cell_m),
            "epsg": u_epsg[part["cell"].to_numpy()],
            "sensor": S["sensor"].to_numpy(),
            "scene_id": S["scene_id"].to_numpy(),
            "datetime": S["datetime"].to_numpy(),
            "anchor_sensor": anc["sensor"].to_numpy(),
            "anchor_scene_id": anc["scene_id"].to_numpy(),
            "anchor_datetime": anc["datetime"].to_numpy(),
            "dt_days": dt,
            "cloud_cover": cloud,
            "rank": 0,
            "reason": reason,
            "source": S["source"].to_numpy(),
            "assets": S["assets"].to_numpy(),
            "item": S["item"].to_numpy(),
            "_cell": part["cell"].to_numpy(),
        }))
    df = pd.concat(frames, ignore_index=True)
    hsi = [s for s, spec in catalog.items() if spec.kind == "hsi"]
    pairs = df.loc[df["sensor"].isin(hsi), ["cell_id", "sensor"]].drop_duplicates().sort_values(["cell_id", "sensor"])
    combo = pairs.groupby("cell_id")["sensor"].agg("+".join)
    df["hsi_combo"] = df["cell_id"].map(combo).fillna("none")
    for col in ("datetime", "anchor_datetime"):
        df[col] = pd.to_datetime(df[col], utc=True)
    geometry = gpd.GeoSeries(polys[df.pop("_cell").to_numpy()], crs="EPSG:4326")
    plan = gpd.GeoDataFrame(df, geometry=geometry.values, crs="EPSG:4326")
    plan = plan.sort_values(["cell_id", "anchor_datetime", "anchor_scene_id", "sensor", "scene_id"], kind="stable")
    plan = plan.drop_duplicates(["cell_id", "anchor_scene_id", "anchor_sensor", "sensor", "scene_id"])
    return plan.reset_index(drop=True)[list(PLAN_COLUMNS)]


# -- output ---------------------------------------------------------------------------------------------


def write_plan(plan: gpd.GeoDataFrame, path: Path | str) -> Path:
    """Write the plan as GeoParquet (temp file, then rename)."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.tmp")
    plan.to_parquet(tmp, index=False)
    tmp.replace(path)
    return path


def read_plan(path: Path | str) -> gpd.GeoDataFrame:
    """Read a plan GeoParquet and check its columns against PLAN_COLUMNS."""
    path = Path(path)
    if not path.exists():
        raise InputDataError(f"{path}: plan not found (write one with `spectralearth colocate`)")
    try:
        plan = gpd.read_parquet(path)
    except Exception as e:  # pyarrow/geopandas raise several types for a non-GeoParquet file
        raise InputDataError(f"{path}: not a GeoParquet plan ({type(e).__name__}: {e})") from None
    missing = [c for c in PLAN_COLUMNS if c not in plan.columns]
    if missing:
        raise InputDataError(f"{path}: missing plan columns {missing}")
    return plan


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

    def to_json(self) -> str:
        return json.dumps(asdict(self), indent=1, sort_keys=True)

    def table(self) -> str:
        lines = [f"{self.cells} cells, {self.anchor_scenes} anchor scenes, {self.rows} plan rows "
                 f"(sources: {', '.join(self.sources) or '-'})",
                 f"{'product':<10}{'rows':>8}{'scenes':>8}{'cells':>8}{'mean |dt| d':>13}"]
        for p, c in sorted(self.per_product.items()):
            lines.append(f"{p:<10}{c['rows']:>8}{c['scenes']:>8}{c['cells']:>8}{c['mean_abs_dt_days']:>13.2f}")
        lines.append("cells per HSI combination: " + ", ".join(f"{k}: {v}" for k, v in sorted(self.per_hsi_combo.items())))
        return "\n".join(lines)


def summarize(plan: gpd.GeoDataFrame) -> PlanSummary:
    """Counts per product and per HSI combination."""
    per_product = {}
    for s, g in plan.groupby("sensor"):
        per_product[str(s)] = {"rows": int(len(g)), "scenes": int(g["scene_id"].nunique()),
                               "cells": int(g["cell_id"].nunique()),
                               "mean_abs_dt_days": float(np.abs(g["dt_days"].astype(float)).mean())}
    combos = plan.drop_duplicates("cell_id")["hsi_combo"].value_counts()
    return PlanSummary(
        cells=int(plan["cell_id"].nunique()),
        rows=int(len(plan)),
        anchor_scenes=int(plan["anchor_scene_id"].nunique()),
        cell_m=int(plan["cell_m"].iloc[0]) if len(plan) else None,
        per_product=per_product,
        per_hsi_combo={str(k): int(v) for k, v in combos.items()},
        sources=sorted(map(str, plan["source"].unique())),
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
