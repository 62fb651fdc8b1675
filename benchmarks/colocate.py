"""Co-location benchmark (issue 5): ``spectralearth_data.colocate.colocate`` on 10^5 hyperspectral
x 10^6 optical footprints against a naive nested loop measured on a subset in the same run.

The footprints are SYNTHETIC (nothing here is a real acquisition), with realistic sizes and revisit:

* optical: Sentinel-2-like 110 x 110 km tiles every 5 days and Landsat-like 185 x 180 km scenes
  (tilted -12 degrees like a descending path) every 8 days over the sites, for one year; each
  acquisition is jittered by ~5 km; cloud cover Beta(0.5, 1.2) x 100 %;
* hyperspectral: EnMAP-like 30 x 30 km footprints rotated +/-15 degrees, jittered ~30 km around
  a site, at random dates of the same year; cloud cover Beta(0.5, 2) x 100 %;
* sites: uniform in longitude -175..175 and latitude -56..70, as many as the optical count needs
  (119 optical acquisitions per site and year), so zones, zone borders and hemispheres all occur.

Methods (one run, same scenes, default windows of catalogs/sensors: +/-30 days, cells of 3840 m):

* ``colocate``  the library: per-zone scanline cell cover, STRtree + time filter, numpy
                point-in-convex-polygon choice, on ``--threads`` threads;
* ``naive``     for each of ``--naive-anchors`` HSI scenes: a Python loop over *every* optical
                footprint (time test, then shapely ``intersects``), candidates sorted by cloud
                cover then |dt|, ``grid.cells_covering`` for the anchor's cells, and for each cell
                the first candidate whose footprint covers the cell outline. Its time per anchor is
                extrapolated to all anchors; its rows are compared with the library's.

``pairs`` are plan rows that pair an anchor cell with another product's scene; ``pairs/s`` is
pairs per wall second. Usage (from the repository root)::

    .venv/bin/python benchmarks/colocate.py --quick   # 10^4 x 10^5 footprints, about a minute
    .venv/bin/python benchmarks/colocate.py           # 10^5 x 10^6 footprints
"""

from __future__ import annotations

import argparse
import os
import sys
import time
from pathlib import Path

import numpy as np
import pandas as pd

sys.path.insert(0, str(Path(__file__).resolve().parent))
sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
from _common import PeakRSS, Timer, print_table

KM_PER_DEG = 111.32
S2_REVISIT_D, LANDSAT_REVISIT_D = 5.0, 8.0


def rectangles(lon: np.ndarray, lat: np.ndarray, width_km: float, height_km: float, angle_deg: np.ndarray):
    """Lon/lat polygons of ``width_km`` x ``height_km`` rectangles centred on ``(lon, lat)``, rotated."""
    import shapely

    unit = np.array([[-1, -1], [1, -1], [1, 1], [-1, 1], [-1, -1]], dtype=float)
    x, y = unit[None, :, 0] * width_km / 2, unit[None, :, 1] * height_km / 2
    a = np.deg2rad(angle_deg)[:, None]
    xr, yr = x * np.cos(a) - y * np.sin(a), x * np.sin(a) + y * np.cos(a)
    plat = lat[:, None] + yr / KM_PER_DEG
    plon = lon[:, None] + xr / (KM_PER_DEG * np.cos(np.deg2rad(plat)))
    return shapely.polygons(np.stack([plon, plat], axis=-1))


def synthetic_scenes(n_hsi: int, n_optical: int, seed: int = 0):
    """The SYNTHETIC scene table described in the module docstring (SCENE_COLUMNS)."""
    import geopandas as gpd

    from spectralearth_data.schema import SCENE_COLUMNS

    rng = np.random.default_rng(seed)
    per_site = 365 / S2_REVISIT_D + 365 / LANDSAT_REVISIT_D
    n_sites = max(1, round(n_optical / per_site))
    site_lon, site_lat = rng.uniform(-175, 175, n_sites), rng.uniform(-56, 70, n_sites)
    n_s2 = round(n_optical * (365 / S2_REVISIT_D) / per_site)
    frames = []

    def add(sensor, n, size_km, angle, jitter_km, cloud):
        site = rng.integers(0, n_sites, n)
        lat = site_lat[site] + rng.normal(0, jitter_km, n) / KM_PER_DEG
        lon = site_lon[site] + rng.normal(0, jitter_km, n) / (KM_PER_DEG * np.cos(np.deg2rad(lat)))
        frames.append(pd.DataFrame({
            "sensor": sensor, "geometry": rectangles(lon, lat, *size_km, angle),
            "datetime": pd.Timestamp("2024-01-01", tz="UTC") + pd.to_timedelta(rng.uniform(0, 366, n), unit="D"),
            "cloud_cover": cloud}))

    add("s2", n_s2, (110, 110), np.zeros(n_s2), 5, rng.beta(0.5, 1.2, n_s2) * 100)
    n_ls = n_optical - n_s2
    add("landsat", n_ls, (185, 180), rng.normal(-12, 1, n_ls), 5, rng.beta(0.5, 1.2, n_ls) * 100)
    add("enmap", n_hsi, (30, 30), rng.uniform(-15, 15, n_hsi), 30, rng.beta(0.5, 2, n_hsi) * 100)
    df = pd.concat(frames, ignore_index=True)
    df["scene_id"] = df["sensor"] + "_synthetic_" + pd.Series(np.arange(len(df))).astype(str)
    for col in ("assets", "properties", "item"):
        df[col] = "{}"
    df["source"], df["collection"], df["epsg"] = "synthetic", df["sensor"], pd.array([pd.NA] * len(df), dtype="Int64")
    return gpd.GeoDataFrame(df, geometry="geometry", crs="EPSG:4326")[list(SCENE_COLUMNS)]


def naive_pairs(scenes, anchor_ids: list[str], windows: dict[str, float], cell_m: int) -> set[tuple]:
    """The nested-loop reference: (cell_id, product, scene_id, anchor_scene_id) for the anchors."""
    from spectralearth_data.grid import cells_covering

    opt = scenes[scenes["sensor"] != "enmap"]
    o_geom, o_sensor = list(opt.geometry.values), opt["sensor"].tolist()
    o_t = (opt["datetime"].astype("int64") / 86_400e9).tolist()
    o_cloud, o_id = opt["cloud_cover"].tolist(), opt["scene_id"].tolist()
    anchors = scenes.set_index("scene_id").loc[anchor_ids]
    out: set[tuple] = set()
    for aid, a in anchors.iterrows():
        ta = a["datetime"].value / 86_400e9
        cand = []
        for j in range(len(o_geom)):  # every optical footprint, one at a time
            dt = o_t[j] - ta
            if abs(dt) <= windows[o_sensor[j]] and o_geom[j].intersects(a["geometry"]):
                cand.append((o_cloud[j], abs(dt), o_sensor[j], o_id[j], j))
        cand.sort()
        for cell in cells_covering(a["geometry"], cell_m, 1.0):
            outline = cell.polygon_lonlat(densify=2)
            for product in ("s2", "landsat"):
                for _, _, s, sid, j in cand:
                    if s == product and o_geom[j].covers(outline):
                        out.add((cell.id, s, sid, aid))
                        break
    return out


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--quick", action="store_true", help="10^4 HSI x 10^5 optical footprints")
    ap.add_argument("--hsi", type=int, help="number of HSI footprints (default 10^5, quick 10^4)")
    ap.add_argument("--optical", type=int, help="number of optical footprints (default 10^6, quick 10^5)")
    ap.add_argument("--naive-anchors", type=int, help="HSI scenes the naive loop runs on (default 10, quick 10)")
    ap.add_argument("--cell-m", type=int, default=3840)
    ap.add_argument("--threads", type=int, default=None, help="colocate threads (default: CPU count, <= 4)")
    ap.add_argument("--seed", type=int, default=0)
    args = ap.parse_args()
    n_hsi = args.hsi or (10_000 if args.quick else 100_000)
    n_opt = args.optical or (100_000 if args.quick else 1_000_000)
    n_naive = args.naive_anchors or 10

    from spectralearth_data.colocate import colocate, time_windows

    t0 = time.perf_counter()
    scenes = synthetic_scenes(n_hsi, n_opt, args.seed)
    print(f"synthesized {n_hsi} HSI + {n_opt} optical footprints in {time.perf_counter() - t0:.1f} s", flush=True)
    windows = time_windows(["enmap", "landsat", "s2"])

    with PeakRSS(os.getpid()) as rss, Timer() as fast:
        plan = colocate(scenes, cell_m=args.cell_m, threads=args.threads)
    pairs = int((plan["sensor"] != plan["anchor_sensor"]).sum())
    print(f"colocate: {len(plan)} plan rows, {plan['cell_id'].nunique()} cells, {pairs} pairs "
          f"in {fast.wall:.1f} s", flush=True)

    rng = np.random.default_rng(args.seed + 1)
    hsi_ids = scenes.loc[scenes["sensor"] == "enmap", "scene_id"].to_numpy()
    subset = sorted(rng.choice(hsi_ids, size=min(n_naive, hsi_ids.size), replace=False).tolist())
    with Timer() as naive:
        ref = naive_pairs(scenes, subset, windows, args.cell_m)
    sub = plan[plan["anchor_scene_id"].isin(subset) & (plan["sensor"] != plan["anchor_sensor"])]
    got = set(zip(sub["cell_id"], sub["sensor"], sub["scene_id"], sub["anchor_scene_id"]))
    agree = len(got & ref)
    per_anchor = naive.wall / len(subset)
    naive_full = per_anchor * hsi_ids.size
    ratio = naive_full / fast.wall

    threads = args.threads or min(os.cpu_count() or 1, 4)
    rows = [
        ["colocate (library)", f"{hsi_ids.size}", f"{n_opt}", f"{fast.wall:.1f}", f"{fast.cpu:.1f}", f"{pairs}",
         f"{pairs / fast.wall:,.0f}", f"{rss.peak / 2**30:.1f}", f"{ratio:,.0f}x"],
        [f"naive nested loop ({len(subset)} anchors)", f"{len(subset)}", f"{n_opt}", f"{naive.wall:.1f}",
         f"{naive.cpu:.1f}", f"{len(ref)}", f"{len(ref) / naive.wall:,.0f}", "-", "1x"],
        ["naive, extrapolated to all anchors", f"{hsi_ids.size}", f"{n_opt}", f"{naive_full:,.0f}", "-", "-", "-", "-", "1x"],
    ]
    print_table(
        f"Co-location, SYNTHETIC footprints: {hsi_ids.size} HSI x {n_opt} optical, cells {args.cell_m} m, "
        f"windows +/-{windows['s2']:g} d",
        ["method", "anchors", "optical", "wall s", "CPU s", "pairs", "pairs/s", "peak RSS GiB", "speed-up vs naive"],
        rows,
        caption=(f"Synthetic EnMAP-like 30 km HSI, S2-like 110 km / Landsat-like 185 km optical footprints, 1 year, "
                 f"{plan['epsg'].nunique()} UTM/UPS zones. colocate on {threads} thread(s); "
                 f"naive = pure Python loop over every optical footprint per anchor. The naive pairs for its "
                 f"{len(subset)} anchors agree with the library's on {agree}/{len(ref)} (library: {len(got)}). "
                 f"Peak RSS is the whole process (scenes + plan). Wall times depend on what else runs on the machine."),
    )


if __name__ == "__main__":
    main()
