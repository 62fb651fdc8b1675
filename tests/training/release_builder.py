"""Write a tiny release in exactly the DESIGN.md "The release store" layout, from seeded arrays.

Used by the training tests until (and beside) the engine's own demo release: the sensor facts
(usable bands, wavelengths, dtypes, scale/offset, nodata, GSD) come from the catalog, the pixel
values are synthesized (uniform draws inside each band's valid range) and say so in the attrs.
"""

from __future__ import annotations

import hashlib
import json
from pathlib import Path

import geopandas as gpd
import numpy as np
import pandas as pd
import zarr

from spectralearth_data.catalog import load_sensor
from spectralearth_data.grid import cell_for
from spectralearth_data.masks import MaskFlag
from spectralearth_data.schema import INDEX_COLUMNS

CELL_M = 960
#: The one batch (writer) of a built release (layout 2: arrays at <sensor>/<batch>/).
BATCH = "all-builder000"
#: Demo-region-like cells near Potsdam (UTM 33N).
ANCHOR_LONLAT = (13.06, 52.39)


def demo_cells(n: int, cell_m: int = CELL_M) -> list:
    """``n`` adjacent cells of ``cell_m`` metres along a row near Potsdam."""
    first = cell_for(*ANCHOR_LONLAT, cell_m)
    from spectralearth_data.grid import Cell

    return [Cell(first.epsg, first.col + i, first.row, first.cell_m) for i in range(n)]


def write_release(
    path: Path,
    sensors: list[str],
    n_cells: int = 6,
    dates: int = 2,
    patches_per_shard: int = 4,
    seed: int = 0,
    release_id: str = "test-release",
    cell_m: int = CELL_M,
) -> Path:
    """Write ``path`` (a ``.zarr`` folder) with ``dates`` acquisitions per product and cell.

    Cell ``i`` lacks the last product when ``i % 3 == 2`` (so 'present' masks are exercised);
    the first patch of each product has a nodata block in its top-left 1/4 and a cloud flag in a
    stripe. Returns ``path``.
    """
    rng = np.random.default_rng(seed)
    cells = demo_cells(n_cells, cell_m)
    root = zarr.open_group(str(path), mode="w", zarr_format=3)
    rows: list[dict] = []
    t0 = pd.Timestamp("2024-06-01T10:00:00Z")
    for si, name in enumerate(sensors):
        spec = load_sensor(name)
        px = spec.patch_px_for(cell_m)
        bands = spec.bands
        b0 = bands[0]
        dtype = np.dtype(b0.dtype)
        entries = [
            (ci, cell, d)
            for ci, cell in enumerate(cells)
            for d in range(dates)
            if not (name == sensors[-1] and ci % 3 == 2 and len(sensors) > 1)
        ]
        n = len(entries)
        # layout 2: the product's arrays live in a batch group, <sensor>/<batch>
        grp = root.create_group(name).create_group(BATCH)
        fill = b0.nodata
        data = grp.create_array(
            "data", shape=(n, len(bands), px, px), chunks=(1, len(bands), px, px),
            shards=(patches_per_shard, len(bands), px, px), dtype=dtype,
            fill_value=fill if fill is not None else 0, dimension_names=("patch", "band", "y", "x"),
            attributes={"scale_factor": b0.scale, "add_offset": b0.offset,
                        **({"_FillValue": fill} if fill is not None else {}),
                        "units": b0.unit, "synthesized": "seeded test data, not a real scene"},
        )
        mask = grp.create_array(
            "mask", shape=(n, px, px), chunks=(1, px, px), shards=(patches_per_shard, px, px),
            dtype="uint8", fill_value=0, dimension_names=("patch", "y", "x"),
            attributes={"flag_masks": [int(f) for f in MaskFlag],
                        "flag_meanings": " ".join(f.name.lower() for f in MaskFlag)},
        )
        wl = np.array([b.wavelength_nm or np.nan for b in bands], dtype=np.float32)
        fw = np.array([b.fwhm_nm or np.nan for b in bands], dtype=np.float32)
        grp.create_array("wavelength", data=wl, dimension_names=("band",), attributes={"units": "nm"})
        grp.create_array("fwhm", data=fw, dimension_names=("band",), attributes={"units": "nm"})
        lo = np.array([b.valid_range[0] for b in bands], dtype=np.float64)[:, None, None]
        hi = np.array([b.valid_range[1] for b in bands], dtype=np.float64)[:, None, None]
        block = np.zeros((n, len(bands), px, px), dtype=dtype)
        mblock = np.zeros((n, px, px), dtype=np.uint8)
        for r, (ci, cell, d) in enumerate(entries):
            # smooth spectra x smooth spatial field + a little noise: compresses like reflectance
            yy, xx = np.mgrid[0:px, 0:px] / max(px / 8, 1)
            field = 0.6 + 0.4 * np.sin(xx + rng.uniform(0, 6)) * np.cos(yy + rng.uniform(0, 6))
            spectrum = rng.uniform(0.1, 0.4, size=(len(bands), 1, 1))
            u = np.clip(spectrum * field + rng.normal(0, 0.003, (len(bands), px, px)), 0.01, 0.99)
            block[r] = (lo + (hi - lo) * u).astype(dtype)
            if r == 0:
                if fill is not None:
                    block[r, :, : px // 2, : px // 2] = fill
                mblock[r, : px // 2, : px // 2] |= np.uint8(MaskFlag.NODATA)
                mblock[r, px - 2 :, :] |= np.uint8(MaskFlag.CLOUD)
            dt = t0 + pd.Timedelta(days=10 * d + si, hours=ci)
            scene = f"{name}-scene-{d}-{ci}"
            rows.append({
                "patch_id": f"{name}/{cell.id}/{scene}", "cell_id": cell.id, "sensor": name,
                "datetime": dt, "row": r, "scene_id": scene,
                "anchor_scene_id": f"{sensors[0]}-scene-{d}-{ci}",
                "assets": "{}", "valid_fraction": 1.0, "cloud_fraction": 0.0,
                "coreg_shift_px": np.nan,
                "sha256": hashlib.sha256(np.ascontiguousarray(block[r]).tobytes()).hexdigest(),
                "pipeline_version": "tests/training/release_builder", "licence": spec.licence.id,
                "redistributable": spec.licence.redistributable, "batch": BATCH, "epsg": cell.epsg,
                "transform": json.dumps([spec.gsd_m, 0.0, cell.bounds[0], 0.0, -spec.gsd_m, cell.bounds[3]]),
                "geometry": cell.polygon_lonlat(),
            })
        data[...] = block
        mask[...] = mblock
    idx = gpd.GeoDataFrame(pd.DataFrame(rows)[list(INDEX_COLUMNS)], geometry="geometry", crs=4326)
    (path / "index" / "patches" / BATCH).mkdir(parents=True)
    idx.to_parquet(path / "index" / "patches" / BATCH / "part-00000.parquet")
    root.attrs.update({"release_id": release_id, "cell_m": cell_m, "sensors": list(sensors),
                       "synthesized": "seeded test data, not real scenes"})
    return path
