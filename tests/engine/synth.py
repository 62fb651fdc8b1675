"""Seeded synthetic scenes and plan rows for the engine tests (synthesized data, not real scenes).

Rasters are tiled DEFLATE GeoTIFFs written with rasterio; values follow known patterns (a linear
ramp in map coordinates) so tests can compute exactly which value must land on which cell pixel.
Plan rows follow PLAN_COLUMNS with STAC-like items carrying proj:epsg. :func:`run_cli` and
:func:`one_error_line` run the ``spectralearth_data`` command line in a subprocess and check its
one-line error.
"""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import geopandas as gpd
import numpy as np
import pandas as pd
import rasterio
from affine import Affine

from spectralearth_data.grid import Cell, cell_for
from spectralearth_data.schema import PLAN_COLUMNS

CELL_M = 960
POTSDAM = (13.06, 52.39)
CLI = [sys.executable, "-c", "from spectralearth_data.cli import main; main()"]


def run_cli(*args) -> subprocess.CompletedProcess:
    """Run ``spectralearth_data.cli`` with ``args`` (made strings) in a subprocess, capturing its output."""
    return subprocess.run([*CLI, *map(str, args)], capture_output=True, text=True, check=False)


def one_error_line(r: subprocess.CompletedProcess) -> str:
    """The single ``error: ...`` line of a run that failed with exit code 2 and no traceback."""
    assert r.returncode == 2, r.stdout + r.stderr
    lines = r.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("error: ") and "Traceback" not in r.stderr, r.stderr
    return lines[0]


def demo_cells(ncols: int = 2, nrows: int = 1) -> list[Cell]:
    c = cell_for(*POTSDAM, CELL_M)
    return [Cell(c.epsg, c.col + i, c.row - j, CELL_M) for j in range(nrows) for i in range(ncols)]


def write_tif(path: Path, data: np.ndarray, transform: Affine, epsg: int | None, nodata=None, block: int = 64, interleave: str = "pixel") -> Path:
    """A tiled DEFLATE GeoTIFF (COG-like) of ``data`` (C, H, W)."""
    c, h, w = data.shape
    profile = {"driver": "GTiff", "width": w, "height": h, "count": c, "dtype": data.dtype, "transform": transform,
                   "tiled": True, "blockxsize": block, "blockysize": block, "compress": "deflate", "interleave": interleave}
    if epsg is not None:
        profile["crs"] = f"EPSG:{epsg}"
    if nodata is not None:
        profile["nodata"] = nodata
    with rasterio.open(path, "w", **profile) as ds:
        ds.write(data)
    return path


def ramp(transform: Affine, shape: tuple[int, int], a: float, bx: float, by: float, x0: float, y0: float) -> np.ndarray:
    """``a + bx*(x - x0) + by*(y0 - y)`` at every pixel centre (x, y) of the grid."""
    h, w = shape
    cols, rows = np.meshgrid(np.arange(w) + 0.5, np.arange(h) + 0.5)
    x, y = transform @ (cols, rows)
    return a + bx * (np.asarray(x) - x0) + by * (y0 - np.asarray(y))


def texture(transform: Affine, shape: tuple[int, int]) -> np.ndarray:
    """A smooth, non-periodic-looking field of map coordinates (sum of sinusoids, periods 170 m to
    1.3 km), in [-1, 1]: gives phase correlation something to lock onto."""
    h, w = shape
    cols, rows = np.meshgrid(np.arange(w) + 0.5, np.arange(h) + 0.5)
    x, y = transform @ (cols, rows)
    x, y = np.asarray(x), np.asarray(y)
    t = np.sin(x / 27.0) * np.cos(y / 41.0) + np.sin((x + 2 * y) / 97.0) + np.cos((3 * x - y) / 211.0)
    return t / 3.0


def cover_transform(cells: list[Cell], gsd: float, margin_px: int = 8, shift: tuple[float, float] = (0.0, 0.0)) -> tuple[Affine, tuple[int, int]]:
    """A north-up grid at ``gsd`` covering ``cells`` with a margin, shifted by ``shift`` metres."""
    x0 = min(c.bounds[0] for c in cells) - margin_px * gsd + shift[0]
    y1 = max(c.bounds[3] for c in cells) + margin_px * gsd + shift[1]
    x1 = max(c.bounds[2] for c in cells) + margin_px * gsd
    y0 = min(c.bounds[1] for c in cells) - margin_px * gsd
    w = int(np.ceil((x1 - x0) / gsd))
    h = int(np.ceil((y1 - y0) / gsd))
    return Affine(gsd, 0, x0, 0, -gsd, y1), (h, w)


def item(scene_id: str, when: str, assets: dict[str, str], epsg: int | None, props: dict | None = None) -> dict:
    p = {"datetime": when, **({"proj:epsg": epsg} if epsg else {}), **(props or {})}
    return {"type": "Feature", "stac_version": "1.0.0", "id": scene_id, "properties": p,
            "assets": {k: {"href": v} for k, v in assets.items()}, "geometry": None, "links": []}


def plan_rows(sensor: str, scene_id: str, cells: list[Cell], assets: dict[str, str], *, when="2024-06-01T10:00:00Z",
              epsg: int | None = 32633, anchor: str | None = None, source: str = "local", props: dict | None = None) -> gpd.GeoDataFrame:
    it = item(scene_id, when, assets, epsg, props)
    t = pd.Timestamp(when)
    rows = [{
        "cell_id": c.id, "cell_m": c.cell_m, "epsg": c.epsg, "sensor": sensor, "scene_id": scene_id, "datetime": t,
        "anchor_sensor": "enmap", "anchor_scene_id": anchor or scene_id, "anchor_datetime": t, "dt_days": 0.0,
        "cloud_cover": 0.0, "rank": 0, "reason": "test", "hsi_combo": "enmap", "source": source,
        "assets": json.dumps(assets), "item": json.dumps(it), "geometry": c.polygon_lonlat(),
    } for c in cells]
    return gpd.GeoDataFrame(pd.DataFrame(rows)[list(PLAN_COLUMNS)], geometry="geometry", crs="EPSG:4326")


def s2_scene(dirpath: Path, scene_id: str, cells: list[Cell], *, seed: int = 0, epsg: int = 32633, scl=None,
             baseline: str = "05.10", nodata_box: tuple[int, int, int, int] | None = None, tex: float = 0.0):
    """An S2-like scene: one uint16 COG per band (all at 10 m for speed) plus SCL, covering ``cells``
    in ``epsg`` (another zone forces a warp). Band b holds ``1000 + 10*b + ramp`` in DN."""
    from spectralearth_data.catalog import load_sensor

    spec = load_sensor("s2")
    d = Path(dirpath) / scene_id
    d.mkdir(parents=True, exist_ok=True)
    if epsg == cells[0].epsg:
        tr, shape = cover_transform(cells, 10.0)
    else:
        from pyproj import Transformer

        x0, y0, x1, y1 = cells[0].bounds[0], min(c.bounds[1] for c in cells), max(c.bounds[2] for c in cells), cells[0].bounds[3]
        t = Transformer.from_crs(cells[0].epsg, epsg, always_xy=True)
        xs, ys = t.transform([x0, x1, x0, x1], [y0, y0, y1, y1])
        tr = Affine(10, 0, np.floor(min(xs) / 10) * 10 - 200, 0, -10, np.ceil(max(ys) / 10) * 10 + 200)
        shape = (int((max(ys) - min(ys)) / 10) + 40, int((max(xs) - min(xs)) / 10) + 40)
    base = ramp(tr, shape, 2000.0, 2.0, 1.0, tr.c, tr.f) + tex * texture(tr, shape)
    assets = {}
    for b, band in enumerate(spec.bands):
        arr = (base + 10 * b).astype(np.uint16)[None]
        if nodata_box is not None:
            r0, r1, c0, c1 = nodata_box
            arr[:, r0:r1, c0:c1] = 0
        assets[band.asset] = str(write_tif(d / f"{band.asset}.tif", arr, tr, epsg, nodata=0))
    scl_arr = np.full((1, *shape), 4, np.uint8) if scl is None else scl
    assets["SCL"] = str(write_tif(d / "SCL.tif", scl_arr, tr, epsg))
    return assets, tr, shape


def enmap_scene(dirpath: Path, scene_id: str, cells: list[Cell], *, seed: int = 0, shift=(0.0, 0.0), interleave="band",
                tex: float = 0.0, pattern_shift: tuple[float, float] = (0.0, 0.0)):
    """An EnMAP-like scene: int16 224-band cube (band-interleaved) plus quality layers."""
    from spectralearth_data.catalog import load_sensor

    spec = load_sensor("enmap")
    d = Path(dirpath) / scene_id
    d.mkdir(parents=True, exist_ok=True)
    tr, shape = cover_transform(cells, 30.0, shift=shift)
    rng = np.random.default_rng(seed)
    base = ramp(tr, shape, 1500.0, 1.0, 0.5, tr.c, tr.f)
    if tex:
        # the same ground texture as s2_scene, displaced by pattern_shift metres (mis-registration)
        moved = tr @ Affine.translation(-pattern_shift[0] / 30.0, pattern_shift[1] / 30.0)
        base = base + tex * texture(moved, shape)
    cube = np.empty((len(spec.bands), *shape), np.int16)
    for i in range(len(spec.bands)):
        cube[i] = (base + 3 * i + rng.integers(0, 3, shape)).astype(np.int16)
    for i, b in enumerate(spec.bands):
        if not b.usable and i % 4 == 0:
            cube[i] = -32768
    assets = {"spectral_image": str(write_tif(d / "SPECTRAL_IMAGE.tif", cube, tr, 32633, nodata=-32768, interleave=interleave))}
    for e in spec.qa.entries:  # QL_PIXELMASK (per_band): one band per spectral band, like DLR's
        n = len(spec.bands) if e.per_band else 1
        assets[e.layer] = str(write_tif(d / f"{e.layer}.tif", np.zeros((n, *shape), np.uint8), tr, 32633))
    return assets, tr, shape


def batch_group(store, sensor: str) -> str:
    """``"<sensor>/<batch>"`` of the one batch a single tile run wrote (layout 2: a product's
    arrays live in its writers' batch groups)."""
    from spectralearth_data.release.reader import batches

    found = batches(store, sensor)
    assert len(found) == 1, f"{sensor}: expected one batch, found {found}"
    return f"{sensor}/{found[0]}"
