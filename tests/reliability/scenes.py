"""Broken copies of real demo scenes: one product, one scene, one cell, written as a plan.

Each ``break_*`` function damages the copied files or the plan row in one specific way; the
scene id gets a suffix, so the broken scene is new work for a store that already holds the
clean one.
"""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import geopandas as gpd
import numpy as np
import rasterio


def broken_plan(plan_path: Path, sensor: str, out: Path, tag: str) -> tuple[Path, gpd.GeoDataFrame, dict]:
    """Copy the first scene of ``sensor`` in the plan (one cell) under ``out``; returns
    (plan path to write later, its rows, asset key -> copied file)."""
    plan = gpd.read_parquet(plan_path)
    rows = plan[plan["sensor"] == sensor]
    scene_id = min(rows["scene_id"])
    rows = rows[rows["scene_id"] == scene_id].sort_values("cell_id").iloc[:1].copy()
    assets = json.loads(rows.iloc[0]["assets"])
    folder = out / f"{scene_id}_{tag}"
    folder.mkdir(parents=True)
    copied = {}
    for key, href in assets.items():
        dst = folder / Path(href).name
        if not dst.exists():
            shutil.copy(href, dst)
        copied[key] = str(dst)
    rows["scene_id"] = f"{scene_id}_{tag}"
    rows["assets"] = json.dumps(copied)
    return out / f"plan_{tag}.parquet", rows, copied


def write(rows: gpd.GeoDataFrame, path: Path, assets: dict | None = None) -> Path:
    if assets is not None:
        rows = rows.assign(assets=json.dumps(assets))
    rows.to_parquet(path)
    return path


def rewrite(path: str, fn) -> None:
    """Rewrite a GeoTIFF through ``fn(profile, data) -> (profile, data)``."""
    with rasterio.open(path) as ds:
        profile, data = ds.profile, ds.read()
    profile, data = fn(dict(profile), data)
    Path(path).unlink()
    with rasterio.open(path, "w", **profile) as ds:
        ds.write(data)


def no_crs(profile, data):
    profile["crs"] = None
    return profile, data


def wrong_crs(profile, data):
    profile["crs"] = "EPSG:32632"
    return profile, data


def all_nodata(profile, data):
    return profile, np.full_like(data, profile["nodata"])


def fewer_bands(profile, data):
    profile["count"] = 10
    return profile, data[:10]


def with_nan_inf(profile, data):
    data = data.copy()
    data[:, ::7, ::5] = np.inf
    data[:, 3::7, ::5] = -np.inf
    data[:, 5::7, ::3] = np.nan
    return profile, data
