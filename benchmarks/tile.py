"""Tiling benchmark (issue 6): patches per core-second and peak RSS of four ways to cut scenes
into the release layout, measured in one run on the same SYNTHESIZED scenes.

Methods (each writes every (cell, sensor) patch of the region, data + uint8 mask):

* ``tile``      our engine: ``spectralearth_data.engine.tile`` on a LocalCluster of N
                single-threaded worker processes (plan GeoParquet -> sharded Zarr v3 + index).
* ``naive``     rasterio ``WarpedVRT`` per patch per asset (bilinear data, nearest QA), one
                uncompressed ``.npz`` file per patch; a pool of N processes over patches.
* ``rioxarray`` ``rioxarray.open_rasterio`` (dask chunks, ``lock=False``) + odc-geo
                ``.odc.reproject`` onto each scene's block of cells, patches stacked and stored
                into the same Zarr layout with ``dask.array.store``; Dask threads, N workers.
* ``tile-s3``   the engine writing straight into a local S3-compatible server (moto, started in
                the method's process; credentials from the environment): the object-store
                row, compared with ``tile`` on local disk (column ``x tile disk``).
* ``raw``       the raw limit: decode the same source windows (each cell's bounding window in the
                source grid) and write the same number of bytes into the same Zarr layout, with
                no resampling; a pool of N processes, one shard per task.

Scenes (synthesized, see PERF.md): an S2 L2A-like scene (12 uint16 band COGs at 10 m + SCL) in
EPSG:32632 read onto cells in EPSG:32633 (must be warped); Landsat SR (7 uint16 bands + QA_PIXEL,
30 m) offset by half a pixel; an EnMAP-like int16 band-interleaved cube with every band of the
catalog (224) plus its quality layers. Pixels are mixtures of real reference spectra
(``spectralearth_data.demo.spectra``) with smooth abundance fields, clouds and sensor noise,
so DEFLATE ratios are like real reflectance COGs (printed with the table). The 4x region is
2 x 2 blocks of the same scenes (copies re-georeferenced), so it holds 4x the cells.

Usage (from the repository root)::

    .venv/bin/python benchmarks/tile.py --quick          # 2 x 2 cells per scene, < 2 min
    .venv/bin/python benchmarks/tile.py                  # 7 x 7 cells of 3840 m (PERF.md sizes)

Throughput is reported per core: ``patches / (wall seconds * workers)``; CPU utilisation is
process-tree CPU seconds / (wall * workers). Peak RSS is sampled (0.1 s) over the whole process
tree of each method's child process, including imports and worker start-up.
"""

from __future__ import annotations

import argparse
import json
import math
import multiprocessing as mp
import os
import shutil
import sys
import tempfile
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _common import Timer, print_table, run_child

#: Region: cells of the UTM zone 33N grid just east of the 32/33 border (lon 12 deg), so the S2
#: scene, delivered in zone 32N like real S2 tiles that overlap the border, must be warped.
ORIGIN_LONLAT = (12.30, 52.35)
CELL_M = 3840
SENSORS = ("s2", "landsat", "enmap")
METHODS = ("tile", "tile-s3", "naive", "rioxarray", "raw")
BLOCK = 512  # COG block size


@dataclass(frozen=True)
class Size:
    """Benchmark size: ``n`` x ``n`` cells per scene; margins of scene pixels around the cells."""

    n: int
    margin_30m: int
    margin_10m: int


QUICK = Size(n=2, margin_30m=16, margin_10m=48)
FULL = Size(n=7, margin_30m=128, margin_10m=64)  # EnMAP/Landsat 1152 px, S2 ~3000 px (PERF.md)


@dataclass
class SceneFiles:
    """One synthesized scene: its sensor, id, CRS, asset paths and the cells it is planned for."""

    sensor: str
    scene_id: str
    epsg: int
    assets: dict[str, str]
    cells: list[str]
    anchor: str
    props: dict = field(default_factory=dict)


@dataclass
class Layout:
    """Everything a measured child needs: the scenes of one region size and its plan."""

    cell_m: int
    scale: int
    scenes: list[SceneFiles]
    plan: str
    compression: dict[str, float]

    def save(self, path: Path) -> None:
        path.write_text(json.dumps(asdict(self), indent=1))

    @classmethod
    def load(cls, path: Path) -> Layout:
        d = json.loads(Path(path).read_text())
        d["scenes"] = [SceneFiles(**s) for s in d["scenes"]]
        return cls(**d)


# -- synthesis ---------------------------------------------------------------------------------


def region_cells(size: Size, blocks: int):
    """Cells of ``blocks`` x ``blocks`` scene blocks of ``size.n`` x ``size.n`` cells, per block."""
    from spectralearth_data.grid import Cell, cell_for

    c0 = cell_for(*ORIGIN_LONLAT, CELL_M)
    out = {}
    for bi in range(blocks):
        for bj in range(blocks):
            out[(bi, bj)] = [
                Cell(c0.epsg, c0.col + bj * size.n + i, c0.row - bi * size.n - j, CELL_M)
                for j in range(size.n) for i in range(size.n)
            ]
    return out


def _bbox(cells, epsg: int) -> tuple[float, float, float, float]:
    """Bounds of ``cells`` (one CRS) expressed in ``epsg`` (densified edges)."""
    from pyproj import Transformer

    x0 = min(c.bounds[0] for c in cells)
    y0 = min(c.bounds[1] for c in cells)
    x1 = max(c.bounds[2] for c in cells)
    y1 = max(c.bounds[3] for c in cells)
    if epsg == cells[0].epsg:
        return x0, y0, x1, y1
    t = np.linspace(0, 1, 33)
    xs = np.concatenate([x0 + (x1 - x0) * t, np.full_like(t, x1), x0 + (x1 - x0) * t, np.full_like(t, x0)])
    ys = np.concatenate([np.full_like(t, y0), y0 + (y1 - y0) * t, np.full_like(t, y1), y0 + (y1 - y0) * t])
    X, Y = Transformer.from_crs(cells[0].epsg, epsg, always_xy=True).transform(xs, ys)
    return float(np.min(X)), float(np.min(Y)), float(np.max(X)), float(np.max(Y))


def scene_grid(sensor: str, cells, size: Size):
    """(epsg, affine, (h, w)) of the synthesized scene of ``sensor`` covering ``cells``."""
    from affine import Affine

    if sensor == "s2":
        epsg, gsd, m, shift = cells[0].epsg - 1, 10.0, size.margin_10m, 0.0  # neighbouring zone
    else:
        # Landsat: half a pixel off the cell grid; EnMAP: on it
        epsg, gsd, m, shift = cells[0].epsg, 30.0, size.margin_30m, (15.0 if sensor == "landsat" else 0.0)
    x0, y0, x1, y1 = _bbox(cells, epsg)
    left = math.floor(x0 / gsd) * gsd - m * gsd + shift
    top = math.ceil(y1 / gsd) * gsd + m * gsd - shift
    w = math.ceil((x1 - left) / gsd) + m
    h = math.ceil((top - y0) / gsd) + m
    return epsg, Affine(gsd, 0.0, left, 0.0, -gsd, top), (h, w)


def _fit_affine(src_epsg: int, dst_epsg: int, tr, shape) -> np.ndarray:
    """2 x 3 affine from pixel (col, row) to ``dst_epsg`` map coordinates, least squares on a 5x5
    grid (a UTM zone change is affine to a few metres over one scene)."""
    from pyproj import Transformer

    h, w = shape
    cc, rr = np.meshgrid(np.linspace(0, w, 5), np.linspace(0, h, 5))
    x, y = tr * (cc.ravel(), rr.ravel())
    X, Y = Transformer.from_crs(src_epsg, dst_epsg, always_xy=True).transform(np.asarray(x), np.asarray(y))
    A = np.column_stack([cc.ravel(), rr.ravel(), np.ones(cc.size)])
    return np.stack([np.linalg.lstsq(A, X, rcond=None)[0], np.linalg.lstsq(A, Y, rcond=None)[0]])


def _fields(coef: np.ndarray, shape, rng_seed: int, k: int, origin: tuple[float, float]) -> tuple[np.ndarray, np.ndarray]:
    """(abundances (K, H, W) float32 summing to 1, cloud (H, W) bool) as smooth functions of map
    coordinates in the region CRS, so every sensor sees the same ground."""
    h, w = shape
    rng = np.random.default_rng(rng_seed)
    cols = np.arange(w, dtype=np.float64) + 0.5
    rows = np.arange(h, dtype=np.float64)[:, None] + 0.5
    X = (coef[0, 0] * cols + coef[0, 1] * rows + coef[0, 2]).astype(np.float32)
    Y = (coef[1, 0] * cols + coef[1, 1] * rows + coef[1, 2]).astype(np.float32)
    X -= np.float32(origin[0])
    Y -= np.float32(origin[1])

    def field_(periods) -> np.ndarray:
        f = np.zeros((h, w), np.float32)
        for p in periods:
            ang = rng.uniform(0, np.pi)
            kx, ky = np.float32(2 * np.pi / p * np.cos(ang)), np.float32(2 * np.pi / p * np.sin(ang))
            f += np.sin(kx * X + ky * Y + np.float32(rng.uniform(0, 2 * np.pi)))
        return f

    logits = np.stack([field_(rng.uniform(250, 6000, 4)) for _ in range(k)])
    logits *= np.float32(2.5)
    logits -= logits.max(axis=0)
    np.exp(logits, out=logits)
    logits /= logits.sum(axis=0)
    cloud = field_(rng.uniform(3000, 9000, 3)) > 2.0
    return logits, cloud


def _write_tif(path: Path, bands, tr, epsg: int, dtype: str, nodata, interleave: str = "pixel") -> str:
    """A tiled DEFLATE GeoTIFF (predictor 2, ``BLOCK`` px blocks) written band by band from the
    iterable ``bands`` of (H, W) arrays."""
    import rasterio

    bands = list(bands) if not hasattr(bands, "__len__") else bands
    first = bands[0]
    profile = {"driver": "GTiff", "width": first.shape[1], "height": first.shape[0], "count": len(bands),
               "dtype": dtype, "crs": f"EPSG:{epsg}", "transform": tr, "tiled": True, "blockxsize": BLOCK,
               "blockysize": BLOCK, "compress": "deflate", "predictor": 2, "interleave": interleave,
               "BIGTIFF": "IF_SAFER"}
    if nodata is not None:
        profile["nodata"] = nodata
    with rasterio.open(path, "w", **profile) as ds:
        for i, b in enumerate(bands):
            ds.write(b, i + 1)
    return str(path)


def _to_dn(refl: np.ndarray, band) -> np.ndarray:
    """Reflectance -> the band's stored integers (catalog scale/offset and valid range)."""
    lo, hi = band.valid_range
    dn = np.rint((refl - band.offset) / band.scale)
    return np.clip(dn, lo, hi).astype(band.dtype)


def _qa_layers(spec, abund: np.ndarray, cloud: np.ndarray, water_k: int, veg: np.ndarray) -> dict[str, np.ndarray]:
    """QA rasters of ``spec`` (values from its catalog QA table) for the synthesized conditions."""
    qa = spec.qa
    dom = abund.argmax(axis=0)
    water = dom == water_k
    if qa.kind == "classes":
        clear = [e.value for e in qa.entries if not e.flags]

        def code(flag: str) -> int:
            return [e.value for e in qa.entries if e.flags == (flag,)][-1]

        arr = np.where(veg[dom], clear[0], clear[1]).astype(qa.dtype)
        arr[water] = code("water")
        arr[cloud] = code("cloud")
        return {qa.asset: arr}
    if qa.kind == "bits":

        def bit(flags: tuple) -> int:
            return [e.bit for e in qa.entries if e.flags == flags][-1]

        arr = np.full(dom.shape, 1 << bit(()), dtype=qa.dtype)
        arr[water] |= 1 << bit(("water",))
        arr[cloud] = 1 << bit(("cloud",))
        return {qa.asset: arr}
    layers: dict[str, np.ndarray] = {}
    for e in qa.entries:
        arr = np.zeros(dom.shape, qa.dtype)
        water_class = [v for v, f in (e.classes or {}).items() if f == ("water",)]
        if water_class:  # a class raster (EnMAP QL_QUALITY_CLASSES): land, and water where water
            arr[:] = next(v for v, f in e.classes.items() if not f)
            arr[water] = water_class[0]
        # a per-band layer (EnMAP QL_PIXELMASK) has one band per spectral band, as delivered
        layers[e.layer] = np.broadcast_to(arr, (len(spec.bands), *arr.shape)) if e.per_band else arr
    layers[next(e.layer for e in qa.entries if e.flags == ("cloud",))][cloud] = 1
    return layers


def synthesize_scene(sensor: str, folder: Path, tr, shape, epsg: int, region_epsg: int,
                     origin: tuple[float, float], seed: int) -> tuple[dict[str, str], float]:
    """Write one scene's COGs into ``folder``; returns (asset -> path, DEFLATE ratio of the data)."""
    from spectralearth_data.catalog import load_sensor
    from spectralearth_data.demo.spectra import class_band_table, cloud_band_values

    spec = load_sensor(sensor)
    folder.mkdir(parents=True, exist_ok=True)
    table = class_band_table(spec).astype(np.float32)  # (K, C) reflectance of each class
    cloud_r = cloud_band_values(spec).astype(np.float32)
    nir = int(np.argmin([abs((b.wavelength_nm or 0) - 860.0) for b in spec.bands]))
    red = int(np.argmin([abs((b.wavelength_nm or 0) - 660.0) for b in spec.bands]))
    water_k = int(np.argmin(table[:, nir]))
    veg = (table[:, nir] - table[:, red]) / (table[:, nir] + table[:, red]) > 0.3
    abund, cloud = _fields(_fit_affine(epsg, region_epsg, tr, shape), shape, seed, table.shape[0], origin)
    rng = np.random.default_rng(seed + 1)
    K = table.shape[0]
    flat = abund.reshape(K, -1)

    def band(i: int) -> np.ndarray:
        refl = (table[:, i] @ flat).reshape(shape)
        refl += rng.standard_normal(shape, dtype=np.float32) * np.float32(0.004)
        refl[cloud] = np.float32(0.3) * refl[cloud] + np.float32(0.7) * cloud_r[i]
        return _to_dn(refl, spec.bands[i])

    assets: dict[str, str] = {}
    raw_bytes = 0
    if spec.data_asset:  # one cube, band-interleaved like the DLR delivery
        path = folder / f"{spec.data_asset}.tif"
        gen = (band(i) for i in range(len(spec.bands)))
        _write_tif_cube(path, gen, len(spec.bands), shape, tr, epsg, spec.bands[0].dtype, spec.bands[0].nodata)
        assets[spec.data_asset] = str(path)
        raw_bytes = len(spec.bands) * shape[0] * shape[1] * np.dtype(spec.bands[0].dtype).itemsize
        data_files = [path]
    else:
        data_files = []
        for i, b in enumerate(spec.bands):
            path = folder / f"{b.asset}.tif"
            assets[b.asset] = _write_tif(path, [band(i)], tr, epsg, b.dtype, b.nodata)
            raw_bytes += shape[0] * shape[1] * np.dtype(b.dtype).itemsize
            data_files.append(path)
    for key, arr in _qa_layers(spec, abund, cloud, water_k, veg).items():
        bands_ = list(arr) if arr.ndim == 3 else [arr]
        assets[key] = _write_tif(folder / f"{key}.tif", bands_, tr, epsg, str(arr.dtype), None)
    ratio = raw_bytes / sum(p.stat().st_size for p in data_files)
    return assets, ratio


def _write_tif_cube(path: Path, gen, count: int, shape, tr, epsg: int, dtype: str, nodata) -> None:
    import rasterio

    profile = {"driver": "GTiff", "width": shape[1], "height": shape[0], "count": count, "dtype": dtype,
               "crs": f"EPSG:{epsg}", "transform": tr, "tiled": True, "blockxsize": BLOCK, "blockysize": BLOCK,
               "compress": "deflate", "predictor": 2, "interleave": "band", "nodata": nodata, "BIGTIFF": "IF_SAFER"}
    with rasterio.open(path, "w", **profile) as ds:
        for i, b in enumerate(gen):
            ds.write(b, i + 1)


def _regeoreference(src: Path, dst: Path, tr) -> None:
    """Copy a scene file with a new geotransform (the 4x region reuses the pixels)."""
    import rasterio

    shutil.copyfile(src, dst)
    with rasterio.open(dst, "r+") as ds:
        ds.transform = tr


def build_layouts(workdir: Path, size: Size, log) -> dict[int, Layout]:
    """Synthesize the scenes and plans of the 1x and 4x regions (cached in ``workdir``)."""
    key = json.dumps(asdict(size), sort_keys=True)
    out = {}
    cached = workdir / "layouts.json"
    if cached.exists() and json.loads(cached.read_text()).get("size") == key:
        return {s: Layout.load(workdir / f"layout-{s}x.json") for s in (1, 4)}
    blocks = region_cells(size, 2)
    c00 = blocks[(0, 0)][0]
    origin = (c00.bounds[0], c00.bounds[3])  # keeps the float32 map coordinates small
    base: dict[str, tuple[dict[str, str], float]] = {}
    scenes_by_block: dict[tuple[int, int], list[SceneFiles]] = {}
    shapes = {}
    for sensor in SENSORS:
        grids = {b: scene_grid(sensor, cells, size) for b, cells in blocks.items()}
        shapes[sensor] = tuple(max(g[2][i] for g in grids.values()) for i in (0, 1))
    for b, cells in blocks.items():
        anchor = f"ENMAP_BENCH_{b[0]}{b[1]}"
        for sensor in SENSORS:
            epsg, tr, _ = scene_grid(sensor, cells, size)
            sid = anchor if sensor == "enmap" else f"{sensor.upper()}_BENCH_{b[0]}{b[1]}"
            folder = workdir / "scenes" / sid
            t0 = time.perf_counter()
            if sensor not in base:
                assets, ratio = synthesize_scene(sensor, folder, tr, shapes[sensor], epsg, c00.epsg, origin, seed=len(base))
                base[sensor] = (assets, ratio)
                log(f"  synthesized {sid}: {shapes[sensor][1]}x{shapes[sensor][0]} px, DEFLATE ratio {ratio:.2f} "
                    f"({time.perf_counter() - t0:.0f} s)")
            else:
                folder.mkdir(parents=True, exist_ok=True)
                assets = {}
                for k, p in base[sensor][0].items():
                    dst = folder / Path(p).name
                    _regeoreference(Path(p), dst, tr)
                    assets[k] = str(dst)
            props = {"s2:processing_baseline": "05.10"} if sensor == "s2" else {}
            scenes_by_block.setdefault(b, []).append(
                SceneFiles(sensor, sid, epsg, assets, [c.id for c in cells], anchor, props))
    ratios = {s: round(base[s][1], 2) for s in SENSORS}
    for scale, keys in ((1, [(0, 0)]), (4, list(blocks))):
        scenes = [s for b in keys for s in scenes_by_block[b]]
        plan = workdir / f"plan-{scale}x.parquet"
        write_plan(scenes, plan)
        out[scale] = Layout(CELL_M, scale, scenes, str(plan), ratios)
        out[scale].save(workdir / f"layout-{scale}x.json")
    cached.write_text(json.dumps({"size": key}))
    return out


def write_plan(scenes: list[SceneFiles], path: Path) -> None:
    """The plan GeoParquet (PLAN_COLUMNS) pairing every cell with its S2, Landsat and EnMAP scene."""
    import geopandas as gpd
    import pandas as pd

    from spectralearth_data.grid import parse_cell_id
    from spectralearth_data.schema import PLAN_COLUMNS

    when = {"enmap": "2024-06-01T10:30:00Z", "s2": "2024-06-02T10:20:00Z", "landsat": "2024-05-30T10:05:00Z"}
    rows = []
    for s in scenes:
        t = pd.Timestamp(when[s.sensor])
        item = {"type": "Feature", "stac_version": "1.0.0", "id": s.scene_id, "geometry": None, "links": [],
                "properties": {"datetime": when[s.sensor], "proj:epsg": s.epsg, **s.props},
                "assets": {k: {"href": v} for k, v in s.assets.items()}}
        for cid in s.cells:
            c = parse_cell_id(cid, CELL_M)
            rows.append({
                "cell_id": cid, "cell_m": CELL_M, "epsg": c.epsg, "sensor": s.sensor, "scene_id": s.scene_id,
                "datetime": t, "anchor_sensor": "enmap", "anchor_scene_id": s.anchor,
                "anchor_datetime": pd.Timestamp(when["enmap"]),
                "dt_days": (t - pd.Timestamp(when["enmap"])).total_seconds() / 86400, "cloud_cover": 5.0,
                "rank": 0, "reason": "benchmark", "hsi_combo": "enmap", "source": "local",
                "assets": json.dumps(s.assets), "item": json.dumps(item), "geometry": c.polygon_lonlat(),
            })
    gdf = gpd.GeoDataFrame(pd.DataFrame(rows)[list(PLAN_COLUMNS)], geometry="geometry", crs="EPSG:4326")
    gdf.to_parquet(path)


# -- shared pieces of the baselines --------------------------------------------------------------


@dataclass(frozen=True)
class ShardJob:
    """Up to ``k`` cells of one scene of one sensor -> one shard (same split as the engine)."""

    sensor: str
    shard: int
    assets: tuple[tuple[str, str], ...]
    cells: tuple[str, ...]


def shard_jobs(layout: Layout, k: int) -> list[ShardJob]:
    nxt: dict[str, int] = {}
    jobs = []
    for s in layout.scenes:
        cells = sorted(s.cells)
        for i in range(0, len(cells), k):
            shard = nxt.get(s.sensor, 0)
            nxt[s.sensor] = shard + 1
            jobs.append(ShardJob(s.sensor, shard, tuple(sorted(s.assets.items())), tuple(cells[i : i + k])))
    return jobs


def asset_groups(spec) -> list[tuple[str, list[int]]]:
    """[(asset key, 1-based band indexes)] of the stored bands, one entry per file."""
    from spectralearth_data.engine.readers import stored_bands

    groups: dict[str, list[int]] = {}
    for b in stored_bands(spec):
        key = b.asset or spec.data_asset
        groups.setdefault(key, []).append(1 if b.asset else (b.index or 0) + 1)
    return list(groups.items())


def qa_keys(spec) -> list[str]:
    return [e.layer for e in spec.qa.entries] if spec.qa.kind == "layers" else [spec.qa.asset]


def qa_bands(spec, key: str) -> int | list[int]:
    """Bands of QA raster ``key`` a reader needs: band 1, or for a per-band layer (EnMAP
    QL_PIXELMASK) every usable band, as the engine reads it."""
    entry = next((e for e in spec.qa.entries if e.layer == key), None) if spec.qa.kind == "layers" else None
    if entry is not None and entry.per_band:
        return [i + 1 for i, b in enumerate(spec.bands) if b.usable]
    return 1


def mask_from(spec, qa: dict[str, np.ndarray], first_band: np.ndarray) -> np.ndarray:
    """uint8 flags from the QA rasters (catalog meaning) plus NODATA where band 1 is the fill."""
    from spectralearth_data.engine import qa as qamod
    from spectralearth_data.masks import MaskFlag

    if spec.qa.kind == "layers":
        m = qamod.layers_to_bits(spec.qa, qa, first_band.shape)
    else:
        m = qamod.qa_to_bits(spec.qa, qa[spec.qa.asset])
    nodata = spec.bands[0].nodata
    if nodata is not None:
        m[first_band == nodata] |= np.uint8(MaskFlag.NODATA)
    return m


def patch_nbytes(spec, cell_m: int) -> int:
    """Bytes of one patch in the store before compression: data (C, P, P) + mask (P, P)."""
    P = spec.patch_px_for(cell_m)
    return len(spec.bands) * P * P * np.dtype(spec.bands[0].dtype).itemsize + P * P


def make_store(path: Path, layout: Layout, k: int) -> None:
    """The release layout of DESIGN.md (same groups, chunks and shards as the engine's)."""
    from spectralearth_data.catalog import load_sensor
    from spectralearth_data.engine.readers import group_dtype, stored_bands
    from spectralearth_data.release import store as st

    root = st.open_root(path, layout.cell_m)
    counts: dict[str, int] = {}
    for j in shard_jobs(layout, k):
        counts[j.sensor] = max(counts.get(j.sensor, 0), j.shard + 1)
    for sensor, n in counts.items():
        spec = load_sensor(sensor)
        bands = stored_bands(spec)
        fill = bands[0].nodata if bands[0].nodata is not None else 0
        lay = st.GroupLayout(sensor, len(bands), spec.patch_px_for(layout.cell_m), k, group_dtype(bands, sensor), fill)
        st.ensure_group(root, spec, bands, lay, RAW_BATCH)
        st.reserve(root, sensor, RAW_BATCH, n)


def _start_pool(workers: int):
    pool = mp.get_context("spawn").Pool(workers, initializer=_warm_worker)
    pool.map(_noop, range(workers * 2))  # processes up and imports done before timing
    return pool


def _warm_worker() -> None:
    """Imports (and catalog parses) of every method's worker code, done before timing: the
    measured seconds are the steady state of a long run, not its start-up."""
    import odc.geo.geobox  # noqa: F401
    import rasterio  # noqa: F401
    import zarr  # noqa: F401

    from spectralearth_data.engine import tasks  # noqa: F401
    from spectralearth_data.release import store  # noqa: F401
    from spectralearth_data.catalog import sensor_spec

    for s in SENSORS:
        sensor_spec(s)


def _noop(_):
    time.sleep(0.05)
    return 0


# -- (a) our engine ------------------------------------------------------------------------------


#: The batch the raw limit and naive stores write into (layout 2: <sensor>/<batch>/data).
RAW_BATCH = "raw"


def _store_size(store: str) -> tuple[int, int]:
    """(objects, bytes) of a written release, local folder or URL."""
    from spectralearth_data.release.storage import open_location

    objs = open_location(store, create=False).list()
    return len(objs), sum(o.size for o in objs)


def _start_s3() -> str:
    """A moto S3 server in this process with one bucket; its environment is set for the workers."""
    import logging

    import boto3
    from moto.server import ThreadedMotoServer

    logging.getLogger("werkzeug").setLevel(logging.WARNING)
    server = ThreadedMotoServer(ip_address="127.0.0.1", port=0, verbose=False)
    server.start()
    host, port = server.get_host_and_port()
    env = {"AWS_ACCESS_KEY_ID": "bench", "AWS_SECRET_ACCESS_KEY": "bench-not-a-secret", "AWS_REGION": "us-east-1",
           "AWS_ENDPOINT_URL": f"http://{host}:{port}", "AWS_ALLOW_HTTP": "true"}
    os.environ.update(env)
    boto3.client("s3", endpoint_url=env["AWS_ENDPOINT_URL"]).create_bucket(Bucket="bench")
    return "s3://bench/release.zarr"


def run_tile(layout: Layout, out, workers: int, k: int, coreg: bool) -> tuple[int, Timer]:
    from distributed import Client

    from spectralearth_data.engine import TileConfig, tile
    from spectralearth_data.engine.cluster import local_cluster

    cfg = TileConfig(patches_per_shard=k, coreg=coreg)
    cluster = local_cluster(workers)  # the cluster tile() starts by itself, started before timing
    with cluster, Client(cluster) as client:
        client.run(_warm_worker)  # worker imports done before timing, as for the pools of (b) and (d)
        _warm_worker()
        import geopandas  # noqa: F401  (the driver reads the plan with it)
        with Timer() as t:
            summary = tile(layout.plan, out, scheduler=cluster.scheduler_address, progress=False, config=cfg)
    return summary.patches_written, t


# -- (b) naive: WarpedVRT per patch per asset, one file per patch --------------------------------


def _naive_patch(args) -> int:
    import rasterio
    from rasterio.enums import Resampling
    from rasterio.vrt import WarpedVRT

    from spectralearth_data.catalog import sensor_spec  # parsed once per process
    from spectralearth_data.grid import parse_cell_id

    sensor, cell_id, cell_m, assets, out = args
    spec = sensor_spec(sensor)
    cell = parse_cell_id(cell_id, cell_m)
    gb = cell.geobox(spec.gsd_m)
    P = gb.shape[0]
    opts = {"crs": f"EPSG:{cell.epsg}", "transform": gb.affine, "width": P, "height": P}

    def read(key, idx, resampling):
        with rasterio.open(assets[key]) as src, WarpedVRT(src, resampling=resampling, **opts) as vrt:
            return vrt.read(idx)

    data = np.empty((len(spec.bands), P, P), spec.bands[0].dtype)
    i = 0
    for key, idx in asset_groups(spec):
        data[i : i + len(idx)] = read(key, idx, Resampling.bilinear)
        i += len(idx)
    qa = {key: read(key, qa_bands(spec, key), Resampling.nearest) for key in qa_keys(spec)}
    mask = mask_from(spec, qa, data[0])
    np.savez(Path(out) / f"{sensor}_{cell_id}.npz", data=data, mask=mask)
    return 1


def run_naive(layout: Layout, out: Path, workers: int) -> tuple[int, Timer]:
    out.mkdir(parents=True)
    args = [(s.sensor, c, layout.cell_m, s.assets, str(out)) for s in layout.scenes for c in s.cells]
    pool = _start_pool(workers)
    with Timer() as t:
        n = sum(pool.imap_unordered(_naive_patch, args, chunksize=1))
    pool.close()
    pool.join()
    return n, t


# -- (c) rioxarray + odc-geo reproject on Dask threads -------------------------------------------


def run_rioxarray(layout: Layout, out: Path, workers: int, k: int) -> tuple[int, Timer]:
    import dask
    import dask.array as da
    import odc.geo.xr  # noqa: F401  (registers .odc)
    import rioxarray
    import xarray as xr
    import zarr
    from affine import Affine
    from odc.geo.geobox import GeoBox

    from spectralearth_data.catalog import sensor_spec  # parsed once per process
    from spectralearth_data.grid import parse_cell_id

    make_store(out, layout, k)
    sources, targets, regions = [], [], []
    n = 0
    with Timer() as t:
        shard_of = {(j.sensor, c): (j.shard, i) for j in shard_jobs(layout, k) for i, c in enumerate(j.cells)}
        for scene in layout.scenes:
            spec = sensor_spec(scene.sensor)
            P = spec.patch_px_for(layout.cell_m)
            cells = [parse_cell_id(c, layout.cell_m) for c in sorted(scene.cells)]
            col0, row1 = min(c.col for c in cells), max(c.row for c in cells)
            ncol, nrow = max(c.col for c in cells) - col0 + 1, row1 - min(c.row for c in cells) + 1
            gsd = spec.gsd_m
            gbox = GeoBox((nrow * P, ncol * P), Affine(gsd, 0, col0 * layout.cell_m, 0, -gsd, (row1 + 1) * layout.cell_m),
                          f"EPSG:{cells[0].epsg}")

            def open_(key, idx, assets=scene.assets):
                a = rioxarray.open_rasterio(assets[key], chunks={"band": -1, "y": 1024, "x": 1024}, lock=False)
                return a.isel(band=[i - 1 for i in idx])

            fill = spec.bands[0].nodata
            src = xr.concat([open_(key, idx) for key, idx in asset_groups(spec)], dim="band")
            dst = src.odc.reproject(gbox, resampling="bilinear", dst_nodata=fill, chunks=(P, P))
            # band 1 of every QA raster, also of EnMAP's per-band pixel mask (which tile and raw
            # read whole): this baseline does less work than the engine, so its ratio is strict for us
            qas = {key: open_(key, [1]).odc.reproject(gbox, resampling="nearest", dst_nodata=0, chunks=(P, P)).data[0]
                   for key in qa_keys(spec)}
            keys = list(qas)
            mask = da.map_blocks(
                lambda first, *q, spec=spec, keys=keys: mask_from(spec, dict(zip(keys, q)), first),
                dst.data[0], *[qas[k_] for k_ in keys], dtype=np.uint8)
            grp = zarr.open_group(str(out), mode="r+")[scene.sensor][RAW_BATCH]
            by_shard: dict[int, list] = {}
            for c in cells:
                r, q = (row1 - c.row) * P, (c.col - col0) * P
                shard, slot = shard_of[(scene.sensor, c.id)]
                by_shard.setdefault(shard, []).append((slot, dst.data[:, r : r + P, q : q + P], mask[r : r + P, q : q + P]))
            for shard, items in by_shard.items():
                items.sort(key=lambda x: x[0])
                d = da.stack([x[1] for x in items]).rechunk((k, -1, -1, -1))
                m = da.stack([x[2] for x in items]).rechunk((k, -1, -1))
                lo = shard * k
                sources += [d, m]
                targets += [grp["data"], grp["mask"]]
                regions += [(slice(lo, lo + len(items)),), (slice(lo, lo + len(items)),)]
                n += len(items)
        with dask.config.set(scheduler="threads", num_workers=workers):
            da.store(sources, targets, regions=regions, lock=False)
    return n, t


# -- (d) raw limit: decode the same windows, write the same bytes, no resampling -----------------


def _raw_shard(job: ShardJob, cell_m: int, k: int, out: str) -> int:
    import rasterio
    from rasterio.windows import Window, from_bounds

    from spectralearth_data.catalog import sensor_spec  # parsed once per process
    from spectralearth_data.release.store import write_shard
    from spectralearth_data.grid import parse_cell_id

    spec = sensor_spec(job.sensor)
    assets = dict(job.assets)
    P = spec.patch_px_for(cell_m)
    C = len(spec.bands)
    fill = spec.bands[0].nodata if spec.bands[0].nodata is not None else 0
    block = np.full((k, C, P, P), fill, spec.bands[0].dtype)
    mblock = np.ones((k, P, P), np.uint8)
    cells = [parse_cell_id(c, cell_m) for c in job.cells]
    files = {key: rasterio.open(assets[key]) for key in [g[0] for g in asset_groups(spec)] + qa_keys(spec)}
    try:
        for slot, cell in enumerate(cells):
            # the cell's bounding window in the source grid (what a warp must decode), cut to P x P
            ref = files[qa_keys(spec)[0]]
            x0, y0, x1, y1 = _bbox([cell], ref.crs.to_epsg())
            w = from_bounds(x0, y0, x1, y1, ref.transform).round_offsets().round_lengths()
            win = Window(w.col_off, w.row_off, w.width, w.height)
            i = 0
            for key, idx in asset_groups(spec):
                block[slot, i : i + len(idx)] = files[key].read(idx, window=win)[:, :P, :P]
                i += len(idx)
            qa = {key: files[key].read(qa_bands(spec, key), window=win)[..., :P, :P] for key in qa_keys(spec)}
            mblock[slot] = mask_from(spec, qa, block[slot, 0])
    finally:
        for f in files.values():
            f.close()
    write_shard(Path(out), job.sensor, RAW_BATCH, job.shard, block, mblock)
    return len(cells)


def _raw_call(args) -> int:
    return _raw_shard(*args)


def run_raw(layout: Layout, out: Path, workers: int, k: int) -> tuple[int, Timer]:
    make_store(out, layout, k)
    pool = _start_pool(workers)
    jobs = [(j, layout.cell_m, k, str(out)) for j in shard_jobs(layout, k)]
    with Timer() as t:
        n = sum(pool.imap_unordered(_raw_call, jobs, chunksize=1))
    pool.close()
    pool.join()
    return n, t


# -- driver ----------------------------------------------------------------------------------------


def child_main(argv: list[str]) -> None:
    """Run one method once and print its JSON report (called in a fresh process)."""
    p = argparse.ArgumentParser(prog="tile.py _child")
    p.add_argument("--method", required=True)
    p.add_argument("--layout", type=Path, required=True)
    p.add_argument("--out", type=Path, required=True)
    p.add_argument("--workers", type=int, required=True)
    p.add_argument("--k", type=int, required=True)
    a = p.parse_args(argv)
    layout = Layout.load(a.layout)
    store: str = str(a.out)
    if a.method in ("tile", "tile-nocoreg"):
        n, t = run_tile(layout, a.out, a.workers, a.k, coreg=a.method == "tile")
    elif a.method == "tile-s3":
        store = _start_s3()  # before the cluster: its workers inherit the environment
        n, t = run_tile(layout, store, a.workers, a.k, coreg=True)
    elif a.method == "naive":
        n, t = run_naive(layout, a.out, a.workers)
    elif a.method == "rioxarray":
        n, t = run_rioxarray(layout, a.out, a.workers, a.k)
    elif a.method == "raw":
        n, t = run_raw(layout, a.out, a.workers, a.k)
    else:
        raise SystemExit(f"unknown method {a.method!r}")
    from spectralearth_data.catalog import load_sensor

    nbytes = sum(patch_nbytes(load_sensor(s.sensor), layout.cell_m) * len(s.cells) for s in layout.scenes)
    objects, stored = _store_size(store) if a.method.startswith("tile") else (0, 0)
    print(json.dumps({"patches": n, "bytes": nbytes, "wall": t.wall, "cpu": t.cpu, "objects": objects,
                      "stored": stored}))


@dataclass
class Row:
    method: str
    scale: int
    workers: int
    patches: int = 0
    expected: int = 0
    wall: float = float("nan")
    cpu: float = float("nan")
    bytes: int = 0
    rss: int = 0
    error: str = ""
    objects: int = 0  # objects (files) in the written release (tile methods)
    stored: int = 0  # their bytes

    @property
    def per_core(self) -> float:
        return self.patches / (self.wall * self.workers) if self.patches and self.wall else float("nan")

    @property
    def per_cpu(self) -> float:
        return self.patches / self.cpu if self.patches and self.cpu else float("nan")


def _warm_cache(layout: Layout) -> None:
    for s in layout.scenes:
        for p in s.assets.values():
            with open(p, "rb") as fh:
                while fh.read(1 << 24):
                    pass


def _fmt(x: float, nd: int = 1) -> str:
    return "-" if math.isnan(x) else f"{x:.{nd}f}"


def _ratio(a: float, b: float) -> str:
    return _fmt(a / b, 2) if not (math.isnan(a) or math.isnan(b)) and b else "-"


def report(rows: list[Row], layouts: dict[int, Layout], k: int) -> None:
    """Print the results table; ratios are ``wall-based / CPU-based`` (see the caption)."""

    def find(m, s, w):
        return next((r for r in rows if (r.method, r.scale, r.workers) == (m, s, w) and not r.error), None)

    table = []
    for r in rows:
        raw, rio = find("raw", r.scale, r.workers), find("rioxarray", r.scale, r.workers)
        disk = find("tile", r.scale, r.workers) if r.method == "tile-s3" else None
        base1 = find(r.method, 1, r.workers)
        ok = bool(r.patches) and not r.error
        table.append([
            r.method + (f"  FAILED: {r.error}" if r.error else ""), f"{r.scale}x", r.workers,
            f"{r.patches}/{r.expected}", _fmt(r.wall), _fmt(r.per_core, 2), _fmt(r.per_cpu, 2),
            _fmt(r.bytes / 1e6 / r.wall if ok else float("nan")),
            (_fmt(100 * r.cpu / (r.wall * r.workers), 0) + "%") if ok else "-",
            _fmt(r.rss / 2**30, 2),
            *[f"{_ratio(r.per_core, b.per_core)} / {_ratio(r.per_cpu, b.per_cpu)}" if b and ok else "-" for b in (raw, rio)],
            _ratio(r.rss, base1.rss) if r.scale != 1 and base1 and r.rss else "",
            f"{r.objects} / {r.stored / 1e6:.1f}" if r.objects else "-",
            f"{_ratio(r.per_core, disk.per_core)} / {_ratio(r.per_cpu, disk.per_cpu)}" if disk and ok else "-",
        ])
    lay = layouts[1]
    caption = (
        f"SYNTHESIZED scenes (not real data). 1x region: {len(lay.scenes[0].cells)} cells of {lay.cell_m} m x 3 sensors; "
        f"S2 12x{_shape(lay, 's2')} uint16 in EPSG:32632 read onto cells in EPSG:32633 (warped), Landsat "
        f"7x{_shape(lay, 'landsat')} uint16 half-pixel offset, EnMAP {_bands('enmap')}x{_shape(lay, 'enmap')} int16 "
        f"band-interleaved; DEFLATE ratios {lay.compression}; warm page cache. 4x = 2x2 blocks of the same scenes. "
        f"Store: shards of {k} patches, chunk = 1 patch, zstd. p/core*s = patches / (wall * workers); "
        f"p/CPU*s = patches / process-tree CPU seconds (robust when other jobs share the cores); ratios are "
        f"p/core*s / p/CPU*s. CPU% = tree CPU / (wall * workers). Peak RSS = sum of RSS over the method's "
        f"process tree (child + workers), sampled every 0.1 s. Cores shared with other jobs while measured."
    )
    print_table("benchmarks/tile.py: COG scenes -> per-cell patches -> release layout",
                ["method", "region", "workers", "patches", "wall s", "p/core*s", "p/CPU*s", "out MB/s", "CPU%",
                 "peak RSS GB", "x raw", "x rioxarray", "RSS vs 1x", "objects / MB", "x tile disk"], table, caption)


def _shape(layout: Layout, sensor: str) -> str:
    import rasterio

    s = next(s for s in layout.scenes if s.sensor == sensor)
    with rasterio.open(next(iter(s.assets.values()))) as ds:
        return f"{ds.height}x{ds.width}"


def _bands(sensor: str) -> int:
    from spectralearth_data.catalog import load_sensor

    return len(load_sensor(sensor).bands)


def main(argv: list[str] | None = None) -> int:
    argv = sys.argv[1:] if argv is None else argv
    if argv[:1] == ["_child"]:
        child_main(argv[1:])
        return 0
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0], formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--quick", action="store_true", help="2x2 cells per scene (< 2 min)")
    p.add_argument("--workdir", type=Path, help="scenes and outputs (kept, and reused by a rerun); default: a temp dir")
    p.add_argument("--methods", default="tile,tile-s3,naive,rioxarray,raw", help=f"comma list of {METHODS} (+ tile-nocoreg)")
    p.add_argument("--workers", default="1,2", help="comma list of worker counts")
    p.add_argument("--patches-per-shard", type=int, default=16, help="k (default 16)")
    p.add_argument("--rss-methods", default="tile,raw", help="methods also run on the 4x region (at the largest worker count)")
    p.add_argument("--scales", default="1,4", help="region sizes to run: 1 (all methods), 4 (--rss-methods)")
    p.add_argument("--timeout", type=float, default=600, help="seconds per measured run")
    p.add_argument("--report-only", action="store_true", help="print the table of --workdir's last run")
    a = p.parse_args(argv)
    size = QUICK if a.quick else FULL
    methods = [m for m in a.methods.split(",") if m]
    workers = [int(w) for w in a.workers.split(",")]
    tmp = None
    if a.workdir is None:
        tmp = tempfile.TemporaryDirectory(prefix="se-tilebench-")
        workdir = Path(tmp.name)
    else:
        workdir = a.workdir
        workdir.mkdir(parents=True, exist_ok=True)

    def log(s: str) -> None:
        print(s, flush=True)

    t0 = time.perf_counter()
    if a.report_only:
        rows = [Row(**r) for r in json.loads((workdir / "results.json").read_text())]
        report(rows, {s: Layout.load(workdir / f"layout-{s}x.json") for s in (1, 4)}, a.patches_per_shard)
        return 0
    log(f"synthesizing scenes in {workdir} ({'quick' if a.quick else 'full'} size) ...")
    layouts = build_layouts(workdir, size, log)
    scales = {int(x) for x in a.scales.split(",")}
    runs = [(m, 1, w) for m in methods for w in workers] if 1 in scales else []
    runs += [(m, 4, max(workers)) for m in a.rss_methods.split(",") if m in methods] if 4 in scales else []
    rows = []
    for i, (m, scale, w) in enumerate(runs):
        lay = layouts[scale]
        _warm_cache(lay)
        out = workdir / "out" / f"{m}-{scale}x-{w}w"
        shutil.rmtree(out, ignore_errors=True)
        out.parent.mkdir(parents=True, exist_ok=True)
        res = run_child([__file__, "_child", "--method", m, "--layout", str(workdir / f"layout-{scale}x.json"),
                         "--out", str(out), "--workers", str(w), "--k", str(a.patches_per_shard)], a.timeout)
        expected = sum(len(s.cells) for s in lay.scenes)
        row = Row(m, scale, w, expected=expected, rss=res.peak_rss)
        if res.report:
            row.patches, row.wall, row.cpu, row.bytes = (res.report[k] for k in ("patches", "wall", "cpu", "bytes"))
            row.objects, row.stored = res.report.get("objects", 0), res.report.get("stored", 0)
        else:
            row.error = (res.stderr_tail.splitlines() or ["no output"])[-1][:160]
        rows.append(row)
        log(f"  [{i + 1}/{len(runs)}] {m} {scale}x {w}w: {row.patches} patches in {_fmt(row.wall)} s, "
            f"peak RSS {row.rss / 2**30:.2f} GB{'  ' + row.error if row.error else ''}")
        shutil.rmtree(out, ignore_errors=True)
    (workdir / "results.json").write_text(json.dumps([asdict(r) for r in rows], indent=1))
    report(rows, layouts, a.patches_per_shard)
    log(f"total {time.perf_counter() - t0:.0f} s")
    if tmp is not None:
        tmp.cleanup()
    return 0 if all(not r.error for r in rows) else 1


if __name__ == "__main__":
    sys.exit(main())
