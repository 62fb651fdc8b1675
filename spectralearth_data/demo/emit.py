"""EMIT-shaped swath scenes: reflectance and mask NetCDF in swath geometry with a GLT.

EMIT L2A is delivered unprojected: ``reflectance(downtrack, crosstrack, bands)`` plus per-pixel
lat/lon and a geometry lookup table (GLT) on a north-up EPSG:4326 "ortho" grid, whose 1-based
``glt_x``/``glt_y`` name the swath sample/line that fills each ortho pixel (0 = no data). The demo
swath is a rectangle of ``gsd_m`` pixels rotated ~10 degrees from north (the ISS ground track).
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import shapely
from pyproj import CRS, Transformer
from shapely.geometry import Polygon, box

from ..catalog import SensorSpec
from . import render
from .render import conditions_at
from .scenes import AssetOut, DemoScene, SceneOut, demo_key, to_lonlat
from .sky import Sky
from .surface import Surface, smooth_field
from .writers import SYNTHETIC_NOTE, write_emit_mask, write_emit_reflectance

#: Swath heading relative to north (degrees) and swath size (downtrack, crosstrack) in pixels.
SWATH_ROTATION_DEG = 10.0
SWATH_PX = (88, 84)
#: Metres per degree of latitude (WGS-84 mean), to size the ortho grid at about gsd_m.
M_PER_DEG_LAT = 110_574.0


def swath_geometry(surface: Surface, gsd: float):
    """Swath pixel centres ``(x, y)`` (surface CRS, each (H, W)), centre, and unit vectors."""
    h, w = SWATH_PX
    xmin, ymin, xmax, ymax = surface.bounds
    centre = np.array([(xmin + xmax) / 2.0, (ymin + ymax) / 2.0])
    t = np.deg2rad(SWATH_ROTATION_DEG)
    down = np.array([np.sin(t), -np.cos(t)])  # lines run roughly south
    cross = np.array([np.cos(t), np.sin(t)])  # samples run roughly east
    i, j = np.meshgrid(np.arange(h) - (h - 1) / 2.0, np.arange(w) - (w - 1) / 2.0, indexing="ij")
    x = centre[0] + gsd * (j * cross[0] + i * down[0])
    y = centre[1] + gsd * (j * cross[1] + i * down[1])
    return x, y, centre, down, cross


def build_glt(surface: Surface, gsd: float, lon: np.ndarray, lat: np.ndarray):
    """Ortho grid (EPSG:4326) over the swath and its 1-based GLT; ``(glt_x, glt_y, geotransform)``."""
    h, w = SWATH_PX
    _, _, centre, down, cross = swath_geometry(surface, gsd)
    step = gsd / M_PER_DEG_LAT
    pad = step
    lon0, lat1 = float(lon.min()) - pad, float(lat.max()) + pad
    nx = int(np.ceil((float(lon.max()) + pad - lon0) / step))
    ny = int(np.ceil((lat1 - float(lat.min()) + pad) / step))
    olon = lon0 + (np.arange(nx) + 0.5) * step
    olat = lat1 - (np.arange(ny) + 0.5) * step
    glon, glat = np.meshgrid(olon, olat)
    tr = Transformer.from_crs(4326, surface.epsg, always_xy=True)
    gx, gy = tr.transform(glon, glat)
    dx, dy = gx - centre[0], gy - centre[1]
    jj = np.rint((dx * cross[0] + dy * cross[1]) / gsd + (w - 1) / 2.0).astype(np.int64)
    ii = np.rint((dx * down[0] + dy * down[1]) / gsd + (h - 1) / 2.0).astype(np.int64)
    inside = (ii >= 0) & (ii < h) & (jj >= 0) & (jj < w)
    glt_x = np.where(inside, jj + 1, 0).astype(np.int32)
    glt_y = np.where(inside, ii + 1, 0).astype(np.int32)
    return glt_x, glt_y, (lon0, step, 0.0, lat1, 0.0, -step)


def _mask_layers(sensor: SensorSpec, cond, rng: np.random.Generator) -> tuple[list[str], np.ndarray]:
    """EMIT mask bands from the catalog entries: flag layers 0/1, the aggregate flag as their union,
    and plausible continuous AOD550 / water-vapour layers."""
    layers = render.encode_qa(sensor.qa, cond, np.zeros_like(cond.valid))
    names = list(layers)
    flagged = [n for n, e in zip(names, sensor.qa.entries) if e.flags]
    out = []
    for name, e in zip(names, sensor.qa.entries):
        arr = layers[name].astype(np.float32)
        low = name.lower()
        if not e.flags and "aggregate" in low:
            arr = np.max(np.stack([layers[n] for n in flagged]), axis=0).astype(np.float32)
        elif not e.flags and "aod" in low:
            arr = (0.08 + 0.01 * smooth_field(rng, arr.shape, 8.0)).astype(np.float32)
        elif not e.flags and "h2o" in low:
            arr = (1.6 + 0.1 * smooth_field(rng, arr.shape, 8.0)).astype(np.float32)
        out.append(arr)
    return names, np.stack(out, axis=-1)


def write_emit_scene(scene: DemoScene, sensor: SensorSpec, surface: Surface, sky: Sky, folder: Path,
                     rng: np.random.Generator) -> SceneOut:
    """Write the reflectance and mask NetCDF of one EMIT-shaped swath scene."""
    gsd = sensor.gsd_m
    x, y, _, _, _ = swath_geometry(surface, gsd)
    cond = conditions_at(surface, sky, x, y, gsd / 2.0)
    to_ll = Transformer.from_crs(surface.epsg, 4326, always_xy=True)
    lon, lat = to_ll.transform(x, y)
    glt_x, glt_y, gt = build_glt(surface, gsd, lon, lat)
    b0 = sensor.bands[0]
    refl = render.reflectance(sensor, scene.platform, cond, rng)  # (C, H, W)
    refl = np.moveaxis(refl, 0, -1)
    refl[~cond.valid] = b0.nodata
    elev = 40.0 + 8.0 * smooth_field(rng, cond.valid.shape, 10.0)
    wkt = CRS.from_epsg(4326).to_wkt()
    attrs = {"title": f"SYNTHESIZED EMIT L2A Estimated Surface Reflectance ({SYNTHETIC_NOTE})",
             "summary": SYNTHETIC_NOTE, "time_coverage_start": scene.datetime.isoformat(),
             "spectralearth_synthetic": 1}
    data_key, mask_key = demo_key(sensor, sensor.data_asset or "data"), demo_key(sensor, sensor.qa.asset)
    rfl_path = write_emit_reflectance(
        folder / f"{scene.scene_id.replace('_SYNTH', '')}.nc", refl,
        np.array([b.wavelength_nm for b in sensor.bands]), np.array([b.fwhm_nm for b in sensor.bands]),
        np.array([b.usable for b in sensor.bands]), lat, lon, elev, glt_x, glt_y, gt, wkt,
        b0.nodata, attrs)
    names, mask = _mask_layers(sensor, cond, rng)
    mask[~cond.valid] = b0.nodata
    mask_path = write_emit_mask(folder / rfl_path.name.replace("_RFL_", "_MASK_"), mask, names,
                                b0.nodata, gt, wkt, {**attrs, "title": "SYNTHESIZED EMIT L2A Masks"})
    assets = [AssetOut(data_key, rfl_path, "application/x-netcdf", ["data"],
                       f"SYNTHESIZED {rfl_path.name}"),
              AssetOut(mask_key, mask_path, "application/x-netcdf", ["data"],
                       f"SYNTHESIZED {mask_path.name}")]
    h, w = SWATH_PX
    corners = [(x[0, 0], y[0, 0]), (x[0, w - 1], y[0, w - 1]), (x[h - 1, w - 1], y[h - 1, w - 1]),
               (x[h - 1, 0], y[h - 1, 0])]
    valid = shapely.intersection(Polygon(corners).buffer(gsd / 2.0, join_style="mitre"),
                                 box(*surface.bounds))
    n_valid = max(int(cond.valid.sum()), 1)
    cloud = 100.0 * float(((cond.cloud > 0.1) & cond.valid).sum()) / n_valid
    return SceneOut({sensor.name: assets}, to_lonlat(valid, surface.epsg), round(cloud, 3), None)
