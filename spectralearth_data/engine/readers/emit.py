"""EMIT L2A NetCDF (swath geometry) -> the cell grid, through the product's GLT (nearest).

Layout (EMIT L2A RFL/MASK, see tests/data/fixtures/MANIFEST.md §3): ``reflectance(downtrack,
crosstrack, bands)`` float32 with fill -9999; ``sensor_band_parameters/{wavelengths, fwhm,
good_wavelengths}``; ``location/{glt_x, glt_y}`` (ortho_y, ortho_x) int32, **1-based, 0 = no
data**, on the EPSG:4326 ortho grid given by the root attributes ``geotransform`` (GDAL 6-tuple)
and ``spatial_ref``. The mask file has ``mask(downtrack, crosstrack, bands)`` with layer names in
``sensor_band_parameters/mask_bands``.

For each target pixel centre: UTM -> lon/lat -> ortho pixel -> GLT -> swath (line, sample); only
the swath window those samples span is read. Bands flagged bad in ``good_wavelengths`` are set to
the fill value and do not count for the pixel flags.
"""

from __future__ import annotations

import contextlib

import numpy as np
from pyproj import Transformer

from ...catalog import BandSpec, SensorSpec
from ...credentials import redact
from ...errors import InputDataError
from .. import qa as qamod
from ..hrefs import local_path


@contextlib.contextmanager
def _open_h5(href: str, source: str | None = None):
    import h5py

    path = local_path(href)
    try:
        if path is not None:
            with h5py.File(path, "r") as f:
                yield f
        else:
            from .httpfile import open_http

            # the href's read-time credentials (for ``auth: earthdata`` the first Earthdata
            # Login that the server accepts): used for this open only, never stored
            with open_http(href, source) as fh, h5py.File(fh, "r") as f:
                yield f
    except InputDataError:
        raise
    except (OSError, ValueError) as e:
        raise InputDataError(f"{redact(href)}: cannot read EMIT NetCDF ({redact(str(e))})") from None


def glt_lookup(f, geobox) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(line, sample, valid) swath indices (0-based) for every pixel of ``geobox``."""
    try:
        gt = np.asarray(f.attrs["geotransform"], dtype=np.float64)
        glt_x = f["location/glt_x"][:]
        glt_y = f["location/glt_y"][:]
    except KeyError as e:
        raise InputDataError(f"EMIT file {f.filename}: missing {e} (geotransform / location/glt_x, glt_y)") from None
    h, w = geobox.shape
    cols, rows = np.meshgrid(np.arange(w) + 0.5, np.arange(h) + 0.5)
    x, y = geobox.affine @ (cols, rows)
    lon, lat = Transformer.from_crs(geobox.crs.epsg, 4326, always_xy=True).transform(np.asarray(x), np.asarray(y))
    oc = np.floor((lon - gt[0]) / gt[1]).astype(np.int64)
    orow = np.floor((lat - gt[3]) / gt[5]).astype(np.int64)
    inside = (oc >= 0) & (oc < glt_x.shape[1]) & (orow >= 0) & (orow < glt_x.shape[0])
    gx = np.zeros((h, w), np.int64)
    gy = np.zeros((h, w), np.int64)
    gx[inside] = glt_x[orow[inside], oc[inside]]
    gy[inside] = glt_y[orow[inside], oc[inside]]
    valid = inside & (gx > 0) & (gy > 0)
    return gy - 1, gx - 1, valid


def _sample(var, line: np.ndarray, sample: np.ndarray, valid: np.ndarray, fill: float) -> np.ndarray:
    """``var[line, sample, :]`` for valid pixels as (C, H, W); reads one bounding swath window."""
    h, w = valid.shape
    nb = var.shape[2]
    out = np.full((nb, h, w), fill, dtype=np.float32)
    if not valid.any():
        return out
    l0, l1 = int(line[valid].min()), int(line[valid].max()) + 1
    s0, s1 = int(sample[valid].min()), int(sample[valid].max()) + 1
    win = var[l0:l1, s0:s1, :]
    out[:, valid] = win[line[valid] - l0, sample[valid] - s0, :].T
    return out


def read_emit_scene(spec: SensorSpec, scene, geobox, bands: tuple[BandSpec, ...]):
    """EMIT reflectance and mask of one scene on ``geobox`` (a :class:`SceneRaster`)."""
    from . import SceneRaster, asset_href, usable_mask

    fill = bands[0].nodata if bands[0].nodata is not None else -9999.0
    href = asset_href(spec, scene, spec.data_asset)  # type: ignore[arg-type]
    with _open_h5(href, scene.source) as f:
        line, sample, valid = glt_lookup(f, geobox)
        if "reflectance" not in f:
            raise InputDataError(f"{href}: no 'reflectance' variable (is this an EMIT L2A RFL file?)")
        var = f["reflectance"]
        idx = np.array([b.index if b.index is not None else i for i, b in enumerate(bands)])
        if idx.max() >= var.shape[2]:
            raise InputDataError(f"{href}: has {var.shape[2]} bands, the catalog lists {len(bands)}")
        cube = _sample(var, line, sample, valid, fill)[idx]
        good = np.ones(var.shape[2], bool)
        if "sensor_band_parameters/good_wavelengths" in f:
            good = f["sensor_band_parameters/good_wavelengths"][:].astype(bool)
    good = good[idx]
    cube[~good] = fill
    cube[~np.isfinite(cube)] = fill
    data = cube.astype(bands[0].dtype, copy=False)
    mask = qamod.data_bits(data, bands, usable_mask(bands) & good)
    if spec.qa is not None:
        mask |= _emit_mask(spec, scene, line, sample, valid, geobox.shape)
    return SceneRaster(data, mask)


def _emit_mask(spec, scene, line, sample, valid, shape) -> np.ndarray:
    from . import asset_href

    try:
        href = asset_href(spec, scene, spec.qa.asset)
    except InputDataError:
        return np.zeros(shape, np.uint8)  # a scene without its mask file: data flags only
    with _open_h5(href, scene.source) as f:
        if "mask" not in f:
            raise InputDataError(f"{href}: no 'mask' variable (is this an EMIT L2A MASK file?)")
        names = [n.decode() if isinstance(n, bytes) else str(n) for n in f["sensor_band_parameters/mask_bands"][:]]
        missing = [e.layer for e in spec.qa.entries if e.flags and e.layer not in names]
        if missing:  # e.g. a V002 EMITL2AMASK file ("Cloud Flag"): reading it would flag nothing
            raise InputDataError(f"{href}: mask_bands {names} lack the catalog's flag layers {missing} "
                                 "(the catalog lists the EMITL2ARFL V001 mask band names)")
        layers = _sample(f["mask"], line, sample, valid, -9999.0)
    return qamod.layers_to_bits(spec.qa, {n: layers[i] for i, n in enumerate(names)}, shape)
