"""File writers of the demo: Cloud-Optimized GeoTIFFs (rasterio) and EMIT-shaped NetCDF (h5netcdf).

Each writer takes arrays already in the product's native dtype and returns the path written.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

import numpy as np
import rasterio
import rasterio.shutil
from affine import Affine
from rasterio.io import MemoryFile

SYNTHETIC_NOTE = "SYNTHESIZED by spectralearth demo-scenes: not a real acquisition"


def write_cog(path: Path, data: np.ndarray, transform: Affine, epsg: int, nodata: float | None,
              descriptions: Sequence[str] | None = None, band_tags: Sequence[dict] | None = None,
              scales: Sequence[float] | None = None, offsets: Sequence[float] | None = None) -> Path:
    """Write ``data`` ((C, H, W) or (H, W)) as a DEFLATE-compressed COG in EPSG ``epsg``."""
    arr = data[None] if data.ndim == 2 else data
    count, height, width = arr.shape
    profile = {"driver": "GTiff", "count": count, "height": height, "width": width,
               "dtype": arr.dtype.name, "crs": f"EPSG:{epsg}", "transform": transform, "nodata": nodata}
    path.parent.mkdir(parents=True, exist_ok=True)
    with MemoryFile() as mem:
        with mem.open(**profile) as ds:
            ds.write(arr)
            ds.update_tags(DESCRIPTION=SYNTHETIC_NOTE)
            for i in range(count):
                if descriptions is not None:
                    ds.set_band_description(i + 1, descriptions[i])
                if band_tags is not None:
                    ds.update_tags(i + 1, **band_tags[i])
            if scales is not None:
                ds.scales = tuple(scales)
            if offsets is not None:
                ds.offsets = tuple(offsets)
        with mem.open() as src:
            rasterio.shutil.copy(src, path, driver="COG", compress="DEFLATE", blocksize=256,
                                 overview_resampling="nearest")
    return path


def write_emit_reflectance(path: Path, refl: np.ndarray, wavelengths: np.ndarray, fwhm: np.ndarray,
                           good: np.ndarray, lat: np.ndarray, lon: np.ndarray, elev: np.ndarray,
                           glt_x: np.ndarray, glt_y: np.ndarray, geotransform: Sequence[float],
                           spatial_ref: str, fill: float, attrs: dict) -> Path:
    """EMIT L2A RFL layout: root ``reflectance(downtrack, crosstrack, bands)``, groups
    ``sensor_band_parameters`` and ``location`` (swath lat/lon/elev, 1-based GLT on the ortho grid)."""
    import h5netcdf

    path.parent.mkdir(parents=True, exist_ok=True)
    ny, nx = refl.shape[:2]
    with h5netcdf.File(path, "w") as f:
        f.dimensions = {"downtrack": ny, "crosstrack": nx, "bands": refl.shape[2]}
        f.attrs.update({**attrs, "geotransform": np.asarray(geotransform, dtype=np.float64),
                        "spatial_ref": spatial_ref})
        v = f.create_variable("reflectance", ("downtrack", "crosstrack", "bands"), dtype="f4",
                              data=refl, fillvalue=np.float32(fill), compression="gzip",
                              compression_opts=4, chunks=(min(ny, 64), min(nx, 64), refl.shape[2]))
        v.attrs.update({"long_name": "Surface Reflectance", "units": "unitless"})
        g = f.create_group("sensor_band_parameters")
        g.create_variable("wavelengths", ("bands",), data=wavelengths.astype("f4")).attrs.update(
            {"long_name": "Wavelength Centers", "units": "nm"})
        g.create_variable("fwhm", ("bands",), data=fwhm.astype("f4")).attrs.update(
            {"long_name": "Full Width at Half Max", "units": "nm"})
        g.create_variable("good_wavelengths", ("bands",), data=good.astype("u1")).attrs.update(
            {"long_name": "Wavelengths where reflectance is useable: 1 = good data, 0 = bad data"})
        loc = f.create_group("location")
        loc.dimensions = {"ortho_y": glt_x.shape[0], "ortho_x": glt_x.shape[1]}
        for name, arr, long in (("lat", lat, "Latitude (WGS-84)"), ("lon", lon, "Longitude (WGS-84)"),
                                ("elev", elev, "Surface Elevation")):
            loc.create_variable(name, ("downtrack", "crosstrack"), data=arr.astype("f8"),
                                fillvalue=np.float64(fill)).attrs["long_name"] = long
        for name, arr, long in (("glt_x", glt_x, "GLT Sample Lookup"), ("glt_y", glt_y, "GLT Line Lookup")):
            loc.create_variable(name, ("ortho_y", "ortho_x"), data=arr.astype("i4"),
                                fillvalue=np.int32(0)).attrs["long_name"] = long
    return path


def write_emit_mask(path: Path, mask: np.ndarray, band_names: Sequence[str], fill: float,
                    geotransform: Sequence[float], spatial_ref: str, attrs: dict) -> Path:
    """EMIT L2A MASK layout: root ``mask(downtrack, crosstrack, bands)`` and the band names in
    ``sensor_band_parameters/mask_bands``."""
    import h5netcdf

    path.parent.mkdir(parents=True, exist_ok=True)
    ny, nx, nb = mask.shape
    with h5netcdf.File(path, "w") as f:
        f.dimensions = {"downtrack": ny, "crosstrack": nx, "bands": nb}
        f.attrs.update({**attrs, "geotransform": np.asarray(geotransform, dtype=np.float64),
                        "spatial_ref": spatial_ref})
        v = f.create_variable("mask", ("downtrack", "crosstrack", "bands"), dtype="f4", data=mask,
                              fillvalue=np.float32(fill), compression="gzip", compression_opts=4)
        v.attrs["long_name"] = "Masks"
        g = f.create_group("sensor_band_parameters")
        import h5py

        g.create_variable("mask_bands", ("bands",), data=np.array(list(band_names), dtype=object),
                          dtype=h5py.string_dtype())
    return path
