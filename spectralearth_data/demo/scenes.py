"""The demo's acquisition schedule and the writers that turn one scheduled scene into files.

The schedule is demo design, not sensor fact: a few dates per product in summer 2024 (so
co-location has choices inside each product's window), with varied clouds and footprint edges,
one Sentinel-2 date delivered in the neighbouring UTM zone 32N (real S2 tiles overlap zone borders)
and Landsat-style grid origins (x0 mod 30 = 15). Every sensor fact comes from the catalog.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path

import numpy as np
import shapely
from pyproj import Transformer
from shapely.geometry import Polygon, box, mapping

from ..catalog import SensorSpec
from ..errors import CatalogError
from . import render
from .render import Grid, conditions_at, grid_over, to_surface_crs
from .sky import Sky
from .surface import Surface
from .writers import write_cog


def _t(text: str) -> datetime:
    return datetime.fromisoformat(text).astimezone(UTC)


@dataclass(frozen=True)
class DemoScene:
    """One scheduled acquisition of a scene group (``landsat`` scenes also serve ``lst``)."""

    group: str
    scene_id: str
    datetime: datetime
    platform: str
    cloud_fraction: float
    cut_fraction: float
    epsg: int = 32633
    properties: dict = field(default_factory=dict)


#: Products written from the same files: Landsat C2 L2 carries SR, ST (lwir11) and QA_PIXEL.
GROUPS: dict[str, tuple[str, ...]] = {
    "enmap": ("enmap",),
    "desis": ("desis",),
    "emit": ("emit",),
    "s2": ("s2",),
    "landsat": ("landsat", "lst"),
    "s1": ("s1",),
}

#: Pixel-grid origin modulo the pixel size (Landsat and the real EnMAP Potsdam scene: 15 m).
ORIGIN_MOD_M = {"landsat": 15.0, "enmap": 15.0}

SCHEDULE: tuple[DemoScene, ...] = (
    DemoScene("enmap", "ENMAP01-____L2A-DT0000090011_20240612T104610Z_004_V010402_SYNTH",
              _t("2024-06-12T10:46:10Z"), "EnMAP", 0.06, 0.0),
    DemoScene("enmap", "ENMAP01-____L2A-DT0000094517_20240803T105140Z_002_V010402_SYNTH",
              _t("2024-08-03T10:51:40Z"), "EnMAP", 0.18, 0.25),
    DemoScene("desis", "DESIS-HSI-L2A-DT0912731184_003-20240613T132105-V0220_SYNTH",
              _t("2024-06-13T13:21:05Z"), "ISS", 0.0, 0.3),
    DemoScene("desis", "DESIS-HSI-L2A-DT0933120877_001-20240722T080433-V0220_SYNTH",
              _t("2024-07-22T08:04:33Z"), "ISS", 0.10, 0.0),
    DemoScene("emit", "EMIT_L2A_RFL_001_20240612T123120_2416408_011_SYNTH",
              _t("2024-06-12T12:31:20Z"), "ISS", 0.10, 0.0, epsg=4326),
    DemoScene("emit", "EMIT_L2A_RFL_001_20240804T140955_2421709_027_SYNTH",
              _t("2024-08-04T14:09:55Z"), "ISS", 0.0, 0.0, epsg=4326),
    DemoScene("s2", "S2A_MSIL2A_20240610T101559_N0510_R065_T33UUU_20240610T154512_SYNTH",
              _t("2024-06-10T10:15:59Z"), "Sentinel-2A", 0.05, 0.0,
              properties={"s2:mgrs_tile": "33UUU", "sat:relative_orbit": 65}),
    DemoScene("s2", "S2B_MSIL2A_20240615T100559_N0510_R022_T32UQD_20240615T131220_SYNTH",
              _t("2024-06-15T10:05:59Z"), "Sentinel-2B", 0.15, 0.0, epsg=32632,
              properties={"s2:mgrs_tile": "32UQD", "sat:relative_orbit": 22}),
    DemoScene("s2", "S2A_MSIL2A_20240802T101601_N0510_R065_T33UUU_20240802T160311_SYNTH",
              _t("2024-08-02T10:16:01Z"), "Sentinel-2A", 0.25, 0.2,
              properties={"s2:mgrs_tile": "33UUU", "sat:relative_orbit": 65}),
    DemoScene("landsat", "LC08_L2SP_193023_20240611_20240620_02_T1_SYNTH",
              _t("2024-06-11T09:58:12Z"), "landsat-8", 0.10, 0.0,
              properties={"landsat:wrs_path": "193", "landsat:wrs_row": "023"}),
    DemoScene("landsat", "LC09_L2SP_193023_20240806_20240808_02_T1_SYNTH",
              _t("2024-08-06T09:58:40Z"), "landsat-9", 0.30, 0.3,
              properties={"landsat:wrs_path": "193", "landsat:wrs_row": "023"}),
    DemoScene("s1", "S1A_IW_GRDH_1SDV_20240612T051022_20240612T051047_054283_069A4F_rtc_SYNTH",
              _t("2024-06-12T05:10:22Z"), "SENTINEL-1A", 0.0, 0.0,
              properties={"sat:orbit_state": "descending", "sat:relative_orbit": 95}),
    DemoScene("s1", "S1A_IW_GRDH_1SDV_20240805T164510_20240805T164535_055058_06B5C1_rtc_SYNTH",
              _t("2024-08-05T16:45:10Z"), "SENTINEL-1A", 0.0, 0.2,
              properties={"sat:orbit_state": "ascending", "sat:relative_orbit": 146}),
)


@dataclass
class AssetOut:
    """A file written for an item, with the per-asset STAC fields of the real providers."""

    key: str
    path: Path
    media_type: str
    roles: list[str]
    title: str
    epsg: int | None = None
    shape: tuple[int, int] | None = None
    transform: list[float] | None = None
    gsd: float | None = None
    raster_bands: list[dict] | None = None
    eo_bands: list[dict] | None = None


@dataclass
class SceneOut:
    """What one scene produced: assets per product, footprint (EPSG:4326) and cloud cover (%)."""

    assets: dict[str, list[AssetOut]]
    footprint: Polygon
    cloud_cover: float
    epsg: int | None


COG = "image/tiff; application=geotiff; profile=cloud-optimized"


def demo_key(sensor: SensorSpec, key: str) -> str:
    """A band/QA asset name as the demo provider spells it (catalog ``asset_map``)."""
    try:
        amap = sensor.provider("demo").asset_map
    except CatalogError:  # a catalog without a demo provider: keep our names
        amap = {}
    return amap.get(key, key)


def _reproject(tr: Transformer, geom):
    """``geom`` with every vertex transformed by ``tr`` (shapely 2 vectorised form)."""
    return shapely.transform(geom, lambda xy: np.column_stack(tr.transform(xy[:, 0], xy[:, 1])))


def surface_outline_in(surface: Surface, epsg: int) -> Polygon:
    """The surface extent as a polygon in ``epsg`` (densified, so it stays exact after projection)."""
    poly = shapely.segmentize(box(*surface.bounds), 100.0)
    if epsg == surface.epsg:
        return poly
    tr = Transformer.from_crs(surface.epsg, epsg, always_xy=True)
    return _reproject(tr, poly)


def to_lonlat(poly: Polygon, epsg: int) -> Polygon:
    tr = Transformer.from_crs(epsg, 4326, always_xy=True)
    ll = _reproject(tr, shapely.segmentize(poly, 500.0))
    return shapely.set_precision(ll.simplify(1e-6), 1e-7)


def _raster_band(band, res: float) -> dict:
    rb = {"data_type": band.dtype, "spatial_resolution": res}
    if band.nodata is not None:
        rb["nodata"] = band.nodata
    if band.scale != 1.0 or band.offset != 0.0:
        rb.update(scale=band.scale, offset=band.offset)
    if band.unit not in {"reflectance"}:
        rb["unit"] = band.unit
    return rb


def _eo_band(band) -> dict:
    eo = {"name": band.name}
    if band.common_name:
        eo["common_name"] = band.common_name
    if band.wavelength_nm is not None:
        eo.update(center_wavelength=round(band.wavelength_nm / 1000.0, 5),
                  full_width_half_max=round(band.fwhm_nm / 1000.0, 5))
    return eo


def _cog_asset(key, path, grid: Grid, roles, title, raster_bands=None, eo_bands=None) -> AssetOut:
    return AssetOut(key, path, COG, roles, title, grid.epsg, (grid.height, grid.width),
                    list(grid.transform)[:6], grid.px, raster_bands, eo_bands)


def _vegetated(cond) -> np.ndarray:
    w = cond.fractions / np.maximum(cond.fractions.sum(axis=0, keepdims=True), 1e-6)
    return np.einsum("k,khw->hw", render.class_ndvi(), w) > 0.4


def write_raster_scene(scene: DemoScene, sensors: list[SensorSpec], surface: Surface, sky: Sky,
                       folder: Path, rng: np.random.Generator) -> SceneOut:
    """Write every band and QA asset of a gridded scene (COGs) for the products of its group."""
    epsg = scene.epsg
    bounds = surface_outline_in(surface, epsg).bounds
    origin = ORIGIN_MOD_M.get(scene.group, 0.0)
    assets: dict[str, list[AssetOut]] = {}
    written: dict[str, AssetOut] = {}
    day_offset = float(rng.normal(0.0, 2.0))
    cloud_cover, ref_grid = 0.0, None
    for sensor in sensors:
        out = assets.setdefault(sensor.name, [])
        by_res: dict[float, list[int]] = {}
        for i, band in enumerate(sensor.bands):
            by_res.setdefault(band.gsd_m or sensor.gsd_m, []).append(i)
        for res, idx in sorted(by_res.items()):
            grid = grid_over(bounds, epsg, res, origin_mod=origin % res)
            x, y = to_surface_crs(*grid.centres(), epsg, surface)
            cond = conditions_at(surface, sky, np.asarray(x), np.asarray(y), res / 2.0)
            if sensor.data_asset is not None:  # one cube asset with every band
                refl = render.reflectance(sensor, scene.platform, cond, rng)
                dn = np.stack([render.to_native(refl[i], b, cond.valid) for i, b in enumerate(sensor.bands)])
                key = demo_key(sensor, sensor.data_asset)
                b0 = sensor.bands[0]
                path = write_cog(folder / f"{key}.tif", dn, grid.transform, epsg, b0.nodata,
                                 descriptions=[b.name for b in sensor.bands],
                                 band_tags=[{"wavelength": f"{b.wavelength_nm}", "fwhm": f"{b.fwhm_nm}",
                                             "wavelength_units": "Nanometers"} for b in sensor.bands],
                                 scales=[b.scale for b in sensor.bands],
                                 offsets=[b.offset for b in sensor.bands])
                out.append(_cog_asset(key, path, grid, ["data", "reflectance"],
                                      f"SYNTHESIZED {sensor.title} ({len(sensor.bands)} bands)",
                                      [_raster_band(b0, res)]))
                continue
            for i in idx:
                band = sensor.bands[i]
                key = demo_key(sensor, band.asset or band.name)
                if key in written:
                    out.append(written[key])
                    continue
                if sensor.kind == "thermal":
                    phys, roles = render.surface_temperature(cond, day_offset, rng), ["data", "temperature"]
                elif sensor.kind == "sar":
                    phys, roles = render.backscatter(cond, band.polarisation or band.name, rng), ["data"]
                else:
                    phys, roles = render.reflectance(sensor, scene.platform, cond, rng, [i])[0], ["data", "reflectance"]
                dn = render.to_native(phys, band, cond.valid)
                path = write_cog(folder / f"{key}.tif", dn, grid.transform, epsg, band.nodata,
                                 descriptions=[band.name])
                eo = [_eo_band(band)] if band.wavelength_nm is not None else None
                written[key] = _cog_asset(key, path, grid, roles, f"SYNTHESIZED {band.name}",
                                          [_raster_band(band, res)], eo)
                out.append(written[key])
        if sensor.qa is not None:
            grid = grid_over(bounds, epsg, sensor.gsd_m, origin_mod=origin % sensor.gsd_m)
            x, y = to_surface_crs(*grid.centres(), epsg, surface)
            cond = conditions_at(surface, sky, np.asarray(x), np.asarray(y), sensor.gsd_m / 2.0)
            by_band = {e.band: str(e.layer) for e in sensor.qa.entries}
            band_names = [by_band.get(b, "") for b in range(1, max(b or 0 for b in by_band) + 1)]
            for layer, arr in render.encode_qa(sensor.qa, cond, _vegetated(cond), len(sensor.bands)).items():
                key = demo_key(sensor, layer)
                if key not in written:
                    names = band_names if sensor.qa.banded else [layer] * (arr.shape[0] if arr.ndim == 3 else 1)
                    path = write_cog(folder / f"{key}.tif", arr, grid.transform, epsg, None, descriptions=names)
                    written[key] = _cog_asset(key, path, grid, ["data-mask", "cloud"] if layer == sensor.qa.asset
                                              else ["data-mask"], f"SYNTHESIZED {layer}")
                out.append(written[key])
            n_valid = max(int(cond.valid.sum()), 1)
            cloud_cover = 100.0 * float(((cond.cloud > 0.1) & cond.valid).sum()) / n_valid
        ref_grid = ref_grid or grid_over(bounds, epsg, sensor.gsd_m, origin_mod=origin % sensor.gsd_m)
    tr = Transformer.from_crs(epsg, surface.epsg, always_xy=True)
    outline = _reproject(tr, shapely.segmentize(box(*ref_grid.bounds), 100.0))
    valid = sky.footprint(shapely.intersection(outline, box(*surface.bounds)))
    return SceneOut(assets, to_lonlat(valid, surface.epsg), round(cloud_cover, 3), epsg)


def footprint_geojson(poly: Polygon) -> dict:
    return mapping(poly)
