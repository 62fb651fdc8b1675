"""Co-location benchmark (issues 5, 19): ``spectralearth_data.colocate.colocate`` on 10^5 hyperspectral
x 10^6 optical footprints, whole and partition by partition, against a naive nested loop measured
on a subset in the same run.

The footprints are SYNTHETIC (nothing here is a real acquisition), with realistic sizes and revisit:

* optical: Sentinel-2-like 110 x 110 km tiles every 5 days and Landsat-like 185 x 180 km scenes
  (tilted -12 degrees like a descending path) every 8 days over the sites, for one year; each
  acquisition is jittered by ~5 km; cloud cover Beta(0.5, 1.2) x 100 %;
* hyperspectral: EnMAP-like 30 x 30 km footprints rotated +/-15 degrees, jittered ~30 km around
  a site, at random dates of the same year; cloud cover Beta(0.5, 2) x 100 %;
* sites: uniform in longitude -175..175 and latitude -56..70, as many as the optical count needs
  (119 optical acquisitions per site and year), so zones, zone borders and hemispheres all occur.

Methods (one run, same scenes, default windows of catalogs/sensors: +/-30 days, cells of 3840 m), each
in its own process (peak RSS of one method is not mixed with another's):

* ``colocate``     the library on the whole table: per-zone scanline cell cover, STRtree + time
                   filter, numpy point-in-convex-polygon choice, on ``--threads`` threads;
* ``partitioned``  ``colocate_partitions`` with 6 UTM zones x 8 degree bands (~160 partitions of
                   these scenes), ``--workers`` partitions at once; each partition's plan is
                   digested and dropped before the next is kept, as a build would hand it to tiling;
* ``partitioned-16`` the same with 15 zones x 45 degrees (16 partitions): the planner's peak RSS
                   at 16 against 160 partitions;
* ``naive``        for each of ``--naive-anchors`` HSI scenes: a Python loop over *every* optical
                   footprint (time test, then shapely ``intersects``), candidates sorted by cloud
                   cover then |dt|, ``grid.cells_covering`` for the anchor's cells, and for each cell
                   the first candidate whose footprint covers the cell outline. Its time per anchor is
                   extrapolated to all anchors; its rows are compared with the library's.

"same rows" compares the row count and an order-aware digest of the partitioned plans with the
unpartitioned plan's (tests/discovery/test_partitions.py checks full equality on small tables).
``pairs`` are plan rows that pair an anchor cell with another product's scene. Usage (from the
repository root)::

    .venv/bin/python benchmarks/colocate.py --quick   # 10^4 x 10^5 footprints, about a minute
    .venv/bin/python benchmarks/colocate.py --json out/bench/colocate.json  # 10^5 x 10^6 footprints
"""

from __future__ import annotations

import argparse
import json
import os
import sys
from pathlib import Path

import numpy as np
import pandas as pd

sys.path.insert(0, str(Path(__file__).resolve().parent))
sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
from _common import PeakRSS, Timer, print_table, run_child, tree_rss_bytes

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


SCHEMES = {"partitioned": (6, 8.0), "partitioned-16": (15, 45.0)}  # ~160 and 16 partitions of these scenes


def plan_digest(plan) -> tuple[int, int]:
    """``(rows, digest)`` of a plan, independent of the order of its cells: every row is hashed with
    its position inside its cell (cells are contiguous runs), and the hashes are summed mod 2**64.
    Partition plans give the unpartitioned plan's digest when their rows equal it after the stable
    sort by cell."""
    if not len(plan):
        return 0, 0
    cid = plan["cell_id"].to_numpy()
    start = np.r_[True, cid[1:] != cid[:-1]]
    first = np.flatnonzero(start)
    ordinal = np.arange(cid.size) - first[np.cumsum(start) - 1]
    cols = plan[["cell_id", "sensor", "scene_id", "anchor_scene_id", "reason", "hsi_combo"]].assign(ordinal=ordinal)
    h = pd.util.hash_pandas_object(cols, index=False).to_numpy()
    return int(cid.size), int(h.sum(dtype=np.uint64))


def child(args) -> None:
    """One measured method in this process; prints its report as one JSON line."""
    import json

    from spectralearth_data.colocate import colocate, colocate_partitions, time_windows
    from spectralearth_data.grid.partitions import PartitionScheme

    scenes = synthetic_scenes(args.hsi, args.optical, args.seed)
    colocate(scenes.iloc[:200], cell_m=args.cell_m, threads=1)  # imports and the catalog, outside the timing
    report: dict = {"method": args.child, "scenes_rss_gib": tree_rss_bytes(os.getpid()) / 2**30}
    if args.child == "colocate":
        with PeakRSS(os.getpid()) as rss, Timer() as t:
            plan = colocate(scenes, cell_m=args.cell_m, threads=args.threads)
        rows, digest = plan_digest(plan)
        report.update(peak_rss_gib=rss.peak / 2**30, wall_s=t.wall, cpu_s=t.cpu, plan_rows=rows, digest=digest, cells=int(plan["cell_id"].nunique()),
                      pairs=int((plan["sensor"] != plan["anchor_sensor"]).sum()), zones=int(plan["epsg"].nunique()))
        windows = time_windows(["enmap", "landsat", "s2"])
        rng = np.random.default_rng(args.seed + 1)
        hsi_ids = scenes.loc[scenes["sensor"] == "enmap", "scene_id"].to_numpy()
        subset = sorted(rng.choice(hsi_ids, size=min(args.naive_anchors, hsi_ids.size), replace=False).tolist())
        with Timer() as naive:
            ref = naive_pairs(scenes, subset, windows, args.cell_m)
        sub = plan[plan["anchor_scene_id"].isin(subset) & (plan["sensor"] != plan["anchor_sensor"])]
        got = set(zip(sub["cell_id"], sub["sensor"], sub["scene_id"], sub["anchor_scene_id"]))
        report.update(anchors=int(hsi_ids.size), naive_anchors=len(subset), naive_wall_s=naive.wall,
                      naive_cpu_s=naive.cpu, naive_pairs=len(ref), naive_agree=len(got & ref), library_pairs=len(got))
    else:
        zones, band = SCHEMES[args.child]
        rows = digest = parts = 0
        wall = cpu = 0.0
        with PeakRSS(os.getpid()) as rss:
            gen = colocate_partitions(scenes, PartitionScheme(zones, band), cell_m=args.cell_m, workers=args.workers)
            while True:  # only the co-location is timed, not the digest of each partition's plan
                with Timer() as t:
                    item = next(gen, None)
                wall, cpu = wall + t.wall, cpu + t.cpu
                if item is None:
                    break
                n, d = plan_digest(item[1])
                rows, digest, parts = rows + n, (digest + d) % 2**64, parts + 1
                del item
        report.update(peak_rss_gib=rss.peak / 2**30, wall_s=wall, cpu_s=cpu, plan_rows=rows, digest=digest, partitions=parts,
                      scheme=f"{zones} zone(s) x {band:g} deg")
    print(json.dumps(report), flush=True)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--quick", action="store_true", help="10^4 HSI x 10^5 optical footprints")
    ap.add_argument("--hsi", type=int, help="number of HSI footprints (default 10^5, quick 10^4)")
    ap.add_argument("--optical", type=int, help="number of optical footprints (default 10^6, quick 10^5)")
    ap.add_argument("--naive-anchors", type=int, default=10, help="HSI scenes the naive loop runs on (default 10)")
    ap.add_argument("--cell-m", type=int, default=3840)
    ap.add_argument("--threads", type=int, default=None, help="colocate threads (default: CPU count, <= 4)")
    ap.add_argument("--workers", type=int, default=2, help="partitions co-located at once (default 2)")
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--json", type=Path, help="also write the rows as JSON: [{method, wall_s, peak_rss_gib, plan_rows}]")
    ap.add_argument("--child", choices=["colocate", *SCHEMES], help=argparse.SUPPRESS)
    args = ap.parse_args()
    args.hsi = args.hsi or (10_000 if args.quick else 100_000)
    args.optical = args.optical or (100_000 if args.quick else 1_000_000)
    if args.child:
        return child(args)

    print(f"SYNTHETIC footprints: {args.hsi} HSI + {args.optical} optical; each method runs in its own process",
          flush=True)
    common = ["--hsi", str(args.hsi), "--optical", str(args.optical), "--cell-m", str(args.cell_m), "--seed",
              str(args.seed), "--naive-anchors", str(args.naive_anchors), "--workers", str(args.workers)]
    if args.threads:
        common += ["--threads", str(args.threads)]
    results = {}
    load0 = os.getloadavg()[0]
    for method in ("colocate", *SCHEMES):
        res = run_child([__file__, "--child", method, *common], timeout=3600)
        if res.returncode != 0 or not res.report:
            sys.exit(f"error: the {method} run failed (exit {res.returncode}): {res.stderr_tail}")
        results[method] = {**res.report, "process_peak_rss_gib": res.peak_rss / 2**30}
        r = results[method]
        print(f"{method}: {r['plan_rows']} plan rows in {r['wall_s']:.1f} s, peak RSS {r['peak_rss_gib']:.2f} GiB"
              + (f", {r['partitions']} partitions" if "partitions" in r else ""), flush=True)

    base = results["colocate"]
    naive_full = base["naive_wall_s"] / base["naive_anchors"] * base["anchors"]
    threads = args.threads or min(os.cpu_count() or 1, 4)
    rows = []
    for method, r in results.items():
        same = "-" if method == "colocate" else ("yes" if (r["plan_rows"], r["digest"]) == (base["plan_rows"], base["digest"])
                                                 else "NO")
        label = "colocate (library)" if method == "colocate" else f"{method} ({r['partitions']} partitions, {r['scheme']})"
        rows.append([label, f"{r['wall_s']:.1f}", f"{r['cpu_s']:.1f}", f"{r['plan_rows']:,}", same,
                     f"{r['peak_rss_gib']:.2f}", f"{base['wall_s'] / r['wall_s']:.2f}x",
                     f"{naive_full / r['wall_s']:,.0f}x"])
    rows.append([f"naive nested loop ({base['naive_anchors']} anchors)", f"{base['naive_wall_s']:.1f}",
                 f"{base['naive_cpu_s']:.1f}", f"{base['naive_pairs']} pairs", "-", "-", "-", "1x"])
    rows.append(["naive, extrapolated to all anchors", f"{naive_full:,.0f}", "-", "-", "-", "-", "-", "1x"])
    windows = "+/-30 d optical"
    print_table(
        f"Co-location, SYNTHETIC footprints: {base['anchors']} HSI x {args.optical} optical, cells {args.cell_m} m, "
        f"windows {windows}",
        ["method", "wall s", "CPU s", "plan rows", "same rows", "peak RSS GiB", "vs colocate", "speed-up vs naive"],
        rows,
        caption=(f"Synthetic EnMAP-like 30 km HSI, S2-like 110 km / Landsat-like 185 km optical footprints, 1 year, "
                 f"{base['zones']} UTM/UPS zones, {base['pairs']:,} pairs. colocate on {threads} thread(s); "
                 f"partitioned: {args.workers} partitions at once, one thread each, every partition's plan "
                 f"released before the next is kept. 'same rows': row count and an order-aware digest equal "
                 f"the unpartitioned plan's. Peak RSS: of the method's process while it co-locates, sampled "
                 f"every 0.1 s, including the scene table (~{base['scenes_rss_gib']:.2f} GiB with the "
                 f"interpreter; whole processes with synthesis and digests: "
                 f"{', '.join(f'{r:.2f}' for r in (x['process_peak_rss_gib'] for x in results.values()))} GiB). "
                 f"naive = pure Python loop over every optical footprint per anchor; its pairs agree with the "
                 f"library's on {base['naive_agree']}/{base['naive_pairs']} (library: {base['library_pairs']}). "
                 f"Wall times depend on what else runs on the machine."),
    )
    p16, p160 = results["partitioned-16"], results["partitioned"]
    growth = p160["peak_rss_gib"] / p16["peak_rss_gib"] - 1
    print(f"planner peak RSS: {p16['partitions']} partitions {p16['peak_rss_gib']:.2f} GiB, "
          f"{p160['partitions']} partitions {p160['peak_rss_gib']:.2f} GiB ({growth:+.0%})")
    print(f"issue 19 targets (for 10^5 x 10^6 on 2 cores): partitioned peak RSS <= 2 GiB: "
          f"{'yes' if p160['peak_rss_gib'] <= 2 else 'no'}; wall < 30 s: {'yes' if p160['wall_s'] < 30 else 'no'}; "
          f"same rows: {'yes' if (p160['plan_rows'], p160['digest']) == (base['plan_rows'], base['digest']) else 'NO'}; "
          f"RSS growth 16 -> {p160['partitions']} partitions <= 10 %: {'yes' if growth <= 0.10 else 'no'}")
    print(f"load average (1 min) before / after the runs: {load0:.1f} / {os.getloadavg()[0]:.1f} on {os.cpu_count()} CPUs")
    if args.json:
        out = [{"method": m, "wall_s": round(r["wall_s"], 3), "peak_rss_gib": round(r["peak_rss_gib"], 3),
                "plan_rows": r["plan_rows"], **({"partitions": r["partitions"]} if "partitions" in r else {})}
               for m, r in results.items()]
        args.json.write_text(json.dumps(out, indent=1) + "\n")
        print(f"wrote {args.json}")


if __name__ == "__main__":
    main()
