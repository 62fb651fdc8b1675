"""Index benchmark (issue 18, item 4): a bbox query on today's per-shard index parts against the
compacted GeoParquet index of a version, on one SYNTHETIC index (nothing here is a real patch).

The index: ``--rows`` patches (25M at full size; ``--quick``: 1M) at ``rows / 12.5`` locations (about
12.5 patches per location, as SpectralEarth-MM at full size: 2M locations, 25M patches) spread
uniformly over land-like latitudes (-56..70) and all longitudes, so every UTM zone occurs; cells
of 3840 m, 7 products, index columns as the writer writes them (patch and scene ids, sha256,
batch, cell outline).

Layouts, written to a scratch folder in the same run:

* ``per-shard``   today's commit log: one Parquet part per shard of 64 patches (in the order the
                  writer commits them: product by product, cells in plan order), no bbox column;
                  a bbox query reads the ``cell_id`` and ``geometry`` of every part
                  (``pyarrow.dataset``) and keeps the rows whose outline meets the box;
* ``compacted``   what ``publish`` writes (:mod:`spectralearth_data.release.compact`): per UTM zone,
                  GeoParquet 1.1 sorted by cell with a bbox covering column and row groups of 64k
                  rows, plus ``partitions.parquet``; the query reads the partitions table with the
                  box, then ``geopandas.read_parquet(objects, bbox=box)`` of those objects only;
* ``compacted-duckdb``  the same objects queried by DuckDB (partitions table first, then a
                  ``bbox`` struct filter on the objects it names).

Reported per layout: objects, bytes, write seconds, the query's seconds (median of ``--repeat``),
objects opened by the query, rows returned (equal in every layout, else the run fails), and the
query time as a ratio to ``per-shard`` measured in the same run. Usage (from the repository root)::

    .venv/bin/python benchmarks/index.py --quick                 # 1M rows, about two minutes
    .venv/bin/python benchmarks/index.py --rows 25000000 --json out/bench/index.json
"""

from __future__ import annotations

import argparse
import json
import shutil
import statistics
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _common import print_table  # noqa: E402

PRODUCTS = ("enmap", "emit", "s2", "landsat", "lst", "s1", "desis")
CELL_M = 3840
SHARD = 64


def synthetic_index(n_rows: int, seed: int = 0):
    """A GeoDataFrame of ``n_rows`` SYNTHETIC index rows (see the module docstring)."""
    import geopandas as gpd
    import pandas as pd
    import shapely

    rng = np.random.default_rng(seed)
    n_loc = max(1, int(n_rows / 12.5))
    lon = rng.uniform(-179.9, 179.9, n_loc)
    lat = rng.uniform(-56, 70, n_loc)
    zone = np.floor((lon + 180) / 6).astype(int) + 1
    epsg = np.where(lat >= 0, 32600, 32700) + zone
    d = CELL_M / 111_320.0  # cell size in degrees of latitude
    col = np.floor((lon + 180) / d).astype(np.int64) % 100_000
    row = np.floor((lat + 90) / d).astype(np.int64)
    cell_id = np.char.add(np.char.add(np.char.add(epsg.astype(str), "_"), np.char.zfill(col.astype(str), 5)),
                          np.char.add("_", np.char.zfill(row.astype(str), 5)))
    loc_of = rng.integers(0, n_loc, n_rows)
    sensor = np.asarray(PRODUCTS)[rng.integers(0, len(PRODUCTS), n_rows)]
    # the writer commits product by product, cells in plan order (by zone, then as planned)
    order = np.lexsort((loc_of, sensor))
    loc_of, sensor = loc_of[order], sensor[order]
    x0 = lon[loc_of] - d / 2
    y0 = lat[loc_of] - d / 2
    geoms = shapely.box(x0, y0, x0 + d / np.cos(np.radians(lat[loc_of])), y0 + d)
    scene = np.char.add(np.char.add(sensor, "_SYNTH_"), rng.integers(0, 10**6, n_rows).astype(str))
    cells = cell_id[loc_of]
    sha = np.array([f"{v:064x}" for v in rng.integers(0, 2**62, n_rows, dtype=np.int64)])
    df = pd.DataFrame({
        "patch_id": np.char.add(np.char.add(np.char.add(sensor, "/"), cells), np.char.add("/", scene)),
        "cell_id": cells, "sensor": sensor,
        "datetime": pd.Timestamp("2024-01-01", tz="UTC") + pd.to_timedelta(rng.integers(0, 365, n_rows), unit="D"),
        "row": np.arange(n_rows) % 10_000_000, "scene_id": scene, "sha256": sha,
        "batch": np.char.add("all-", np.full(n_rows, "0123456789")),
    })
    return gpd.GeoDataFrame(df, geometry=geoms, crs="EPSG:4326")


def write_per_shard(gdf, folder: Path) -> tuple[int, int, float]:
    """Today's layout: one part per shard of 64 patches. (objects, bytes, seconds)."""
    import pyarrow.parquet as pq
    from geopandas.io.arrow import _geopandas_to_arrow

    t0 = time.perf_counter()
    folder.mkdir(parents=True)
    table = _geopandas_to_arrow(gdf, index=False)
    n = 0
    for i, start in enumerate(range(0, len(gdf), SHARD)):
        pq.write_table(table.slice(start, SHARD), folder / f"part-{i:07d}.parquet")
        n += 1
    return n, _bytes(folder), time.perf_counter() - t0


def write_compacted(gdf, folder: Path) -> tuple[int, int, float]:
    """What publish writes: per-partition objects and the partitions table."""
    from spectralearth_data.release import compact as cp

    t0 = time.perf_counter()
    gdf = gdf.assign(partition=[f"utm{c.split('_', 1)[0]}" for c in gdf["cell_id"]])
    entries = []
    for part, grp in gdf.groupby("partition", sort=True):
        for obj in cp.compact(grp.drop(columns=["partition"]), str(part)):
            key = cp.object_key("v000001", str(part), obj.number)
            (folder / key).parent.mkdir(parents=True, exist_ok=True)
            (folder / key).write_bytes(obj.data)
            entries.append(obj.entry(key, "", "v000001"))
    (folder / cp.partitions_key("v000001")).write_bytes(cp.partitions_table(entries))
    return len(entries) + 1, _bytes(folder), time.perf_counter() - t0


def _bytes(folder: Path) -> int:
    return sum(p.stat().st_size for p in folder.rglob("*") if p.is_file())


def query_per_shard(folder: Path, q) -> tuple[set[str], int]:
    import pyarrow.dataset as pads
    import shapely

    ds = pads.dataset(folder, format="parquet")
    t = ds.to_table(columns=["patch_id", "geometry"])
    geoms = shapely.from_wkb(t["geometry"].to_numpy(zero_copy_only=False))
    hit = shapely.intersects(geoms, shapely.box(*q))
    ids = np.asarray(t["patch_id"].to_numpy(zero_copy_only=False))[hit]
    return set(ids.tolist()), len(ds.files)


def query_compacted(folder: Path, q) -> tuple[set[str], int]:
    import geopandas as gpd
    import shapely

    from spectralearth_data.release import compact as cp

    table = gpd.read_parquet(folder / cp.partitions_key("v000001"), bbox=q, columns=["key", "geometry"])
    files = [str(folder / k) for k in table["key"]]
    if not files:
        return set(), 1
    got = gpd.read_parquet(files, bbox=q, columns=["patch_id", "geometry"])
    got = got[shapely.intersects(got.geometry.values, shapely.box(*q))]
    return set(got["patch_id"]), 1 + len(files)


def query_duckdb(folder: Path, q) -> tuple[set[str], int]:
    import duckdb

    from spectralearth_data.release import compact as cp

    con = duckdb.connect()
    keys = [k for k, in con.execute(
        f"SELECT key FROM read_parquet('{folder / cp.partitions_key('v000001')}') "
        f"WHERE xmin <= {q[2]} AND xmax >= {q[0]} AND ymin <= {q[3]} AND ymax >= {q[1]}").fetchall()]
    if not keys:
        return set(), 1
    files = ", ".join(f"'{folder / k}'" for k in keys)
    rows = con.execute(
        f"SELECT patch_id, geometry FROM read_parquet([{files}]) WHERE bbox.xmin <= {q[2]} AND "
        f"bbox.xmax >= {q[0]} AND bbox.ymin <= {q[3]} AND bbox.ymax >= {q[1]}").fetchall()
    import shapely

    box = shapely.box(*q)
    return {p for p, g in rows if shapely.from_wkb(bytes(g)).intersects(box)}, 1 + len(keys)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--rows", type=int, default=25_000_000, help="index rows (default 25M)")
    ap.add_argument("--quick", action="store_true", help="1M rows")
    ap.add_argument("--bbox", type=float, nargs=4, default=(5.0, 45.0, 15.0, 55.0),
                    metavar=("XMIN", "YMIN", "XMAX", "YMAX"), help="query box (lon/lat)")
    ap.add_argument("--repeat", type=int, default=3, help="query repetitions (median)")
    ap.add_argument("--scratch", type=Path, help="folder for the layouts (default: a temp folder, removed)")
    ap.add_argument("--json", type=Path, help="also write the rows as JSON")
    a = ap.parse_args()
    n = 1_000_000 if a.quick else a.rows
    scratch = Path(a.scratch or tempfile.mkdtemp(prefix="se-index-bench-"))
    try:
        t0 = time.perf_counter()
        gdf = synthetic_index(n)
        gen_s = time.perf_counter() - t0
        layouts = {"per-shard": (write_per_shard, query_per_shard),
                   "compacted": (write_compacted, query_compacted),
                   "compacted-duckdb": (None, query_duckdb)}
        written: dict[str, tuple[int, int, float]] = {}
        for name, (writer, _) in layouts.items():
            if writer is not None:
                written[name] = writer(gdf, scratch / name)
        written["compacted-duckdb"] = written["compacted"]
        del gdf
        q = tuple(a.bbox)
        results = {}
        for name, (_, query) in layouts.items():
            folder = scratch / ("compacted" if name.startswith("compacted") else name)
            times, ids, opened = [], set(), 0
            for _ in range(a.repeat):
                t = time.perf_counter()
                ids, opened = query(folder, q)
                times.append(time.perf_counter() - t)
            results[name] = {"query_s": statistics.median(times), "rows": len(ids), "opened": opened,
                             "ids_digest": hash(frozenset(ids))}
        if len({r["ids_digest"] for r in results.values()}) != 1:
            raise SystemExit(f"layouts disagree on the query's rows: { {k: v['rows'] for k, v in results.items()} }")
        base = results["per-shard"]["query_s"]
        out = []
        for name, r in results.items():
            objects, size, write_s = written[name]
            out.append({"layout": name, "rows_total": n, "objects": objects, "bytes": size,
                        "write_s": round(write_s, 2), "query_s": round(r["query_s"], 4),
                        "objects_opened": r["opened"], "rows_returned": r["rows"],
                        "query_vs_per_shard": round(r["query_s"] / base, 4)})
        print_table(
            f"bbox query {q} on a SYNTHETIC index of {n:,} rows (generated in {gen_s:.1f} s)",
            ["layout", "objects", "MB", "write s", "query s", "opened", "rows", "query vs per-shard"],
            [[r["layout"], f"{r['objects']:,}", f"{r['bytes'] / 1e6:.1f}", r["write_s"], r["query_s"],
              f"{r['objects_opened']:,}", r["rows_returned"], f"{r['query_vs_per_shard']:.3f}x"] for r in out],
            caption="SYNTHETIC rows; per-shard = today's commit log (one part per 64 patches); compacted = "
                    "publish's GeoParquet 1.1 per UTM zone + partitions table. Same run, same machine.")
        if a.json:
            a.json.parent.mkdir(parents=True, exist_ok=True)
            a.json.write_text(json.dumps(out, indent=1))
    finally:
        if a.scratch is None:
            shutil.rmtree(scratch, ignore_errors=True)


if __name__ == "__main__":
    main()
