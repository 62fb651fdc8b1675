"""Read bands of GeoTIFF/COG assets onto a target pixel grid (a cell or a strip of cells).

The target grid is explicit (an odc-geo ``GeoBox``: shape, affine, CRS), so every product lands
on the same cell pixels. Two paths:

* **aligned**: the source is in the target CRS with the same pixel size and its pixel edges fall
  on the target's (integer offset): a plain windowed read, no resampling, bit-exact.
* **warp**: anything else (another UTM zone, a half-pixel offset, another pixel size): GDAL's
  warper reads only the source blocks it needs and resamples, bilinear for physical values and
  nearest for QA. Both grids are pixel-is-area, so pixel centres map to pixel centres.
"""

from __future__ import annotations

import functools
import math
import re
from collections.abc import Sequence

import numpy as np
import rasterio
import rasterio.warp
from rasterio.enums import Resampling
from rasterio.errors import RasterioError
from rasterio.windows import Window

from ...errors import InputDataError
from ..hrefs import gdal_path, redact

#: GDAL settings for cloud reads: no directory listings, merged range requests, a read cache.
#: (GDAL_CACHEMAX stays GDAL's default: rasterio reads small integers as *bytes*, see PERF.md.)
GDAL_ENV = {
    "GDAL_DISABLE_READDIR_ON_OPEN": "EMPTY_DIR",
    "GDAL_HTTP_MULTIRANGE": "YES",
    "GDAL_HTTP_MERGE_CONSECUTIVE_RANGES": "YES",
    "GDAL_HTTP_MAX_RETRY": "3",
    "GDAL_HTTP_RETRY_DELAY": "0.5",
    "VSI_CACHE": "TRUE",
}


def _aligned_offset(src_transform, dst_transform) -> tuple[int, int] | None:
    """(col, row) offset of the target's top-left pixel in the source grid, or None when the
    grids differ by a rotation, a pixel size or a fractional pixel."""
    a, b, c, d, e, f = src_transform[:6]
    A, B, C, D, E, F = dst_transform[:6]
    if b != 0 or d != 0 or B != 0 or D != 0:
        return None
    if not (math.isclose(a, A, rel_tol=1e-9) and math.isclose(e, E, rel_tol=1e-9)):
        return None
    col, row = (C - c) / a, (F - f) / e
    if abs(col - round(col)) > 1e-6 or abs(row - round(row)) > 1e-6:
        return None
    return round(col), round(row)


def _read_aligned(ds, indexes, out: np.ndarray, col: int, row: int) -> None:
    """Copy the overlap of the source window into ``out`` (prefilled with the fill value)."""
    _, h, w = out.shape
    c0, r0 = max(col, 0), max(row, 0)
    c1, r1 = min(col + w, ds.width), min(row + h, ds.height)
    if c1 <= c0 or r1 <= r0:
        return
    win = Window(c0, r0, c1 - c0, r1 - r0)
    out[:, r0 - row : r1 - row, c0 - col : c1 - col] = ds.read(indexes, window=win, out_dtype=out.dtype)


def _check_crs(ds, href: str, expect_epsg: int | None) -> None:
    if ds.crs is None:
        raise InputDataError(f"{href}: raster has no CRS; cannot place it on the grid")
    if expect_epsg is not None:
        got = ds.crs.to_epsg()
        if got != expect_epsg:
            raise InputDataError(
                f"{href}: raster CRS is {ds.crs.to_string()} but its STAC item says EPSG:{expect_epsg}"
            )


def read_onto(
    href: str,
    geobox,
    *,
    indexes: Sequence[int] | None = None,
    dtype: str,
    nodata: float | None,
    resampling: Resampling = Resampling.bilinear,
    source: str | None = None,
    expect_epsg: int | None = None,
) -> np.ndarray:
    """Bands ``indexes`` (1-based; all when None) of raster ``href`` on ``geobox``.

    Returns ``(len(indexes), H, W)`` in ``dtype``; pixels the source does not cover, or where it
    is ``nodata``, are ``nodata`` (0 when the product has no fill value). Raises
    :class:`InputDataError` naming the href when it cannot be opened or decoded, has no CRS, or
    its CRS disagrees with the item (``expect_epsg``).
    """
    fill = 0 if nodata is None else nodata
    h, w = geobox.shape
    path = gdal_path(href, source)
    try:
        with rasterio.Env(**GDAL_ENV), rasterio.open(path) as ds:
            _check_crs(ds, href, expect_epsg)
            idx = list(indexes) if indexes is not None else list(range(1, ds.count + 1))
            if max(idx) > ds.count:
                raise InputDataError(f"{href}: has {ds.count} bands, band {max(idx)} was asked for")
            out = np.full((len(idx), h, w), fill, dtype=dtype)
            src_nodata = nodata if nodata is not None else ds.nodata
            off = _aligned_offset(ds.transform, geobox.affine) if ds.crs.to_epsg() == geobox.crs.epsg else None
            if off is not None:
                _read_aligned(ds, idx, out, *off)
            else:
                rasterio.warp.reproject(
                    source=rasterio.band(ds, idx),
                    destination=out,
                    src_nodata=src_nodata,
                    dst_transform=geobox.affine,
                    dst_crs=f"EPSG:{geobox.crs.epsg}",
                    dst_nodata=fill,
                    resampling=resampling,
                    init_dest_nodata=True,
                    # products are read at their native GSD, so the kernel is a plain 2x2
                    # bilinear; GDAL would otherwise widen it by the extent-dependent scale ratio
                    # of a rotated grid (measured: 2.5x slower, and patch values up to 50 DN
                    # different depending on which neighbouring cells share the warp)
                    XSCALE=1,
                    YSCALE=1,
                )
            if src_nodata is not None and nodata is not None and src_nodata != nodata:
                out[out == src_nodata] = nodata
            return out
    except InputDataError:  # e.g. "no CRS" from a header cut short in transfer: do not keep it cached
        forget_cached(path)
        raise
    except RasterioError as e:
        forget_cached(path)
        # GDAL names the (possibly signed) path it opened: say the unsigned href instead
        raise InputDataError(f"{href}: cannot read raster ({redact(_first_line(e).replace(path, href))})") from None


def _first_line(e: Exception) -> str:
    """First line of a GDAL error, without query strings: a signed href's SAS signature must not
    reach an error message (and from there a log or a Prefect result)."""
    text = str(e).strip().splitlines()
    return re.sub(r"\?[^\s'\"]*", "", text[0]) if text else type(e).__name__


def forget_cached(path: str) -> None:
    """Drop what GDAL's process-wide /vsicurl cache holds for ``path`` after a failed read.

    A failed transfer (reset, truncated body, retries spent) otherwise stays cached as "file
    absent" or as short data, and every later read of that URL in this process (a rerun, a
    task retry on the same worker) fails the same way without asking the server again.
    rasterio has no binding for this, so the GDAL C function is called through ctypes.
    """
    if not path.startswith("/vsi"):
        return
    fn = _gdal_function("VSICurlPartialClearCache")
    if fn is not None:
        fn(path.encode())


@functools.cache
def _gdal_function(name: str):
    """A function of the libgdal rasterio runs on (None if it cannot be found)."""
    import ctypes
    import ctypes.util
    import glob
    import os

    here = os.path.dirname(rasterio.__file__)
    candidates = sorted(glob.glob(os.path.join(here + ".libs", "libgdal*"))) + [ctypes.util.find_library("gdal")]
    for lib in filter(None, candidates):
        try:
            fn = getattr(ctypes.CDLL(lib), name)
        except (OSError, AttributeError):
            continue
        fn.argtypes, fn.restype = [ctypes.c_char_p], None
        return fn
    return None
