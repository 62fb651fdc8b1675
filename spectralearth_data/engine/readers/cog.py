"""Read bands of GeoTIFF/COG assets onto a target pixel grid (a cell or a strip of cells).

The target grid is explicit (an odc-geo ``GeoBox``: shape, affine, CRS), so every product lands
on the same cell pixels. Two paths:

* **aligned**: the source is in the target CRS with the same pixel size and its pixel edges fall
  on the target's (integer offset): a plain windowed read, no resampling, bit-exact.
* **warp**: anything else (another UTM zone, a half-pixel offset, another pixel size): the source
  window the target samples is decoded and GDAL's warper resamples it, bilinear for physical
  values and nearest for QA. Both grids are pixel-is-area, so pixel centres map to pixel centres.
  Single-band rasters on one source grid are warped together (:func:`read_many_onto`).

Inside :func:`keep_open` (a tiling task) each raster is opened once, so GDAL's block cache
serves every strip of the task instead of decoding the same blocks again per strip.
"""

from __future__ import annotations

import contextlib
import functools
import math
import threading
from collections.abc import Iterator, Sequence
from typing import Any
from dataclasses import dataclass

import numpy as np
import rasterio
import rasterio.warp
from affine import Affine
from rasterio.enums import Resampling
from rasterio.errors import RasterioError
from rasterio.windows import Window

from ...credentials import REQUESTER_PAYS_HOWTO, auth_for, dlr_access, gdal_options, redact, resign_href
from ...errors import InputDataError
from ..hrefs import gdal_path, vsi_path

#: GDAL settings of every read: no directory listings, merged range requests, a read cache, and a
#: block cache of 512 MiB per process (given in bytes: rasterio reads small integers as bytes,
#: see PERF.md). GDAL's default is 5 % of the machine's RAM per process, so a worker's memory
#: would depend on the machine; 512 MiB holds a full block row of a 224-band EnMAP cube (352 MiB
#: at 512 px blocks), so no strip of a task decodes a block twice.
GDAL_ENV = {
    "GDAL_CACHEMAX": 512 * 2**20,
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


def _read_aligned(ds, indexes, shape: tuple[int, int], dtype: str, fill, col: int, row: int) -> np.ndarray:
    """The source window at (col, row) of size ``shape``; pixels outside the raster are ``fill``."""
    h, w = shape
    c0, r0 = max(col, 0), max(row, 0)
    c1, r1 = min(col + w, ds.width), min(row + h, ds.height)
    if (c0, r0, c1, r1) == (col, row, col + w, row + h):  # inside the raster: read, no copy
        return ds.read(indexes, window=Window(col, row, w, h), out_dtype=dtype)
    out = np.full((len(indexes), h, w), fill, dtype=dtype)
    if c1 > c0 and r1 > r0:
        win = Window(c0, r0, c1 - c0, r1 - r0)
        out[:, r0 - row : r1 - row, c0 - col : c1 - col] = ds.read(indexes, window=win, out_dtype=dtype)
    return out


def _source_window(ds, geobox, pad: int = 3) -> Window | None:
    """The window of ``ds`` that a warp onto ``geobox`` samples (bounds transformed with densified
    edges, ``pad`` pixels more for the kernel), clipped to the raster; None when they miss."""
    bounds = rasterio.warp.transform_bounds(f"EPSG:{geobox.crs.epsg}", ds.crs, *geobox.boundingbox, densify_pts=21)
    win = ds.window(*bounds)
    c0, r0 = math.floor(win.col_off) - pad, math.floor(win.row_off) - pad
    c1, r1 = math.ceil(win.col_off + win.width) + pad, math.ceil(win.row_off + win.height) + pad
    c0, r0, c1, r1 = max(c0, 0), max(r0, 0), min(c1, ds.width), min(r1, ds.height)
    if c1 <= c0 or r1 <= r0:
        return None
    return Window(c0, r0, c1 - c0, r1 - r0)


def _check_crs(ds, href: str, expect_epsg: int | None) -> None:
    if ds.crs is None:
        raise InputDataError(f"{href}: raster has no CRS; cannot place it on the grid")
    if expect_epsg is not None:
        got = ds.crs.to_epsg()
        if got != expect_epsg:
            raise InputDataError(
                f"{href}: raster CRS is {ds.crs.to_string()} but its STAC item says EPSG:{expect_epsg}"
            )


@dataclass
class _Pending:
    """A source window decoded into memory, waiting for its warp onto the target grid."""

    href: str
    src: np.ndarray  # (bands, h, w), native dtype
    transform: Affine
    crs: Any  # a rasterio CRS
    src_nodata: float | None  # None when the window holds no fill value


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
    return read_many_onto(
        [(href, indexes, expect_epsg)], geobox, dtype=dtype, nodata=nodata, resampling=resampling, source=source
    )[0]


def read_many_onto(
    requests: Sequence[tuple[str, Sequence[int] | None, int | None]],
    geobox,
    *,
    dtype: str,
    nodata: float | None,
    resampling: Resampling = Resampling.bilinear,
    source: str | None = None,
) -> list[np.ndarray]:
    """:func:`read_onto` for several ``(href, indexes, expect_epsg)`` of one product at once.

    Each raster is read as :func:`read_onto` would. Rasters that must be warped, share one source
    grid (one band per file, as Sentinel-2 and Landsat ship) and hold no fill value in the
    sampled window are warped together in one call: GDAL then computes the coordinate transform
    once for all bands (measured ~2x less CPU per band, bit-identical output).
    """
    fill = 0 if nodata is None else nodata
    outs: list[np.ndarray] = []
    pending: list[tuple[int, _Pending]] = []
    for n, (href, indexes, expect_epsg) in enumerate(requests):
        out, todo = _read_source(href, geobox, indexes, dtype, nodata, source, expect_epsg)
        outs.append(out)
        if todo is not None:
            pending.append((n, todo))
    groups: dict[tuple, list[tuple[int, _Pending]]] = {}
    for n, todo in pending:
        key: tuple = (todo.crs.to_wkt(), tuple(todo.transform), todo.src.shape[1:], todo.src.dtype.str)
        if todo.src_nodata is not None:  # per-band nodata semantics: warp alone
            key = (n,)
        groups.setdefault(key, []).append((n, todo))
    for members in groups.values():
        first = members[0][1]
        src = first.src if len(members) == 1 else np.concatenate([t.src for _, t in members])
        dst = outs[members[0][0]] if len(members) == 1 else np.concatenate([outs[m] for m, _ in members])
        try:
            with rasterio.Env(**GDAL_ENV):
                _warp(src, dst, first, geobox, fill, resampling)
        except RasterioError as e:
            names = ", ".join(t.href for _, t in members)
            raise InputDataError(f"{names}: cannot warp raster ({redact(_first_line(e))})") from None
        if len(members) > 1:
            i = 0
            for m, _ in members:
                k = outs[m].shape[0]
                outs[m][:] = dst[i : i + k]
                i += k
    return outs


def _read_source(href, geobox, indexes, dtype, nodata, source, expect_epsg,
                 renewed: str | None = None) -> tuple[np.ndarray, _Pending | None]:
    """The output array of one raster (prefilled, or complete for an aligned read) and, when it
    must be warped, its decoded source window.

    The href is signed again for every call (a token near expiry is replaced). When a signed
    read is refused with 403 (its SAS token expired, e.g. on a dataset :func:`keep_open` held
    for long), it is re-signed with a new token and reopened once (``renewed``: that path). A
    failed read with a DLR login logs in again and reopens once (the session cookies expire).
    """
    fill = 0 if nodata is None else nodata
    h, w = geobox.shape
    path = renewed or gdal_path(href, source)
    cache = getattr(_KEPT, "datasets", None)
    options = gdal_options(href, source)  # AWS_REQUEST_PAYER (requester pays), a DLR login
    try:
        with rasterio.Env(**GDAL_ENV, **options):
            ds = _open(path, cache)
            try:
                _check_crs(ds, href, expect_epsg)
                idx = list(indexes) if indexes is not None else list(range(1, ds.count + 1))
                if max(idx) > ds.count:
                    raise InputDataError(f"{href}: has {ds.count} bands, band {max(idx)} was asked for")
                off = _aligned_offset(ds.transform, geobox.affine) if _epsg_of(ds) == geobox.crs.epsg else None
                if off is not None:
                    return _read_aligned(ds, idx, (h, w), dtype, fill, *off), None
                win = _source_window(ds, geobox)
                if win is None:  # the raster does not reach the target: all fill
                    return np.full((len(idx), h, w), fill, dtype=dtype), None
                out = np.empty((len(idx), h, w), dtype=dtype)  # the warp sets every pixel (init_dest_nodata)
                src = ds.read(idx, window=win)
                src_nodata = nodata if nodata is not None else ds.nodata
                if src_nodata is not None and not _holds(src, src_nodata):
                    # GDAL's warper is ~2x slower with a source nodata value (a validity mask
                    # per pixel): without a fill pixel in the window the result is the same
                    src_nodata = None
                tr = ds.transform @ Affine.translation(win.col_off, win.row_off)
                return out, _Pending(href, src, tr, ds.crs, src_nodata)
            finally:
                if cache is None:
                    ds.close()
    except InputDataError:  # e.g. "no CRS" from a header cut short in transfer: do not keep it cached
        _drop(path, cache)
        raise
    except RasterioError as e:
        _drop(path, cache)
        if renewed is None and path != vsi_path(href) and _refused(e, path):
            fresh = resign_href(source, href)
            if fresh is not None:
                return _read_source(href, geobox, indexes, dtype, nodata, source, expect_epsg, vsi_path(fresh))
        if renewed is None and options and auth_for(source, href) == "dlr":
            # the DLR session cookies may have expired (the server then answers its login page):
            # log in again, once, and reopen
            dlr_access(href, fresh=True)
            return _read_source(href, geobox, indexes, dtype, nodata, source, expect_epsg, path)
        # GDAL names the (possibly signed) path it opened: say the unsigned href instead
        why = redact(_first_line(e).replace(path, href))
        if options.get("AWS_REQUEST_PAYER"):
            why += f"; {REQUESTER_PAYS_HOWTO}"
        raise InputDataError(f"{href}: cannot read raster ({why})") from None


def _refused(e: BaseException | None, path: str) -> bool:
    """Whether the server refused the signed read of ``path`` (HTTP 403: its SAS token expired).

    GDAL says "HTTP response code: 403" when an open is refused, but a refused block read of an
    open dataset only reports a short read ("TIFFReadEncodedStrip ... got 0 bytes"), so that
    case asks the server once, with a one-byte range request.
    """
    err, seen = e, 0
    while err is not None and seen < 8:  # rasterio chains GDAL's messages as causes
        if "403" in str(err):
            return True
        err, seen = err.__cause__ or err.__context__, seen + 1
    if not path.startswith("/vsicurl/"):
        return False
    import urllib.error
    import urllib.request

    req = urllib.request.Request(path[len("/vsicurl/"):], headers={"Range": "bytes=0-0"})
    try:
        with urllib.request.urlopen(req, timeout=15):
            return False
    except urllib.error.HTTPError as http_error:
        return http_error.code == 403
    except OSError:
        return False


def _holds(src: np.ndarray, value: float) -> bool:
    return bool(np.isnan(src).any() if np.isnan(value) else (src == value).any())


def _warp(src: np.ndarray, out: np.ndarray, p: _Pending, geobox, fill, resampling: Resampling) -> None:
    """Resample the decoded source window ``src`` onto ``geobox`` into ``out`` (pixels the source
    does not cover become ``fill``)."""
    rasterio.warp.reproject(
        source=src,
        destination=out,
        src_transform=p.transform,
        src_crs=p.crs,
        src_nodata=p.src_nodata,
        dst_transform=geobox.affine,
        dst_crs=f"EPSG:{geobox.crs.epsg}",
        dst_nodata=fill,
        resampling=resampling,
        init_dest_nodata=True,
        # products are read at their native GSD, so the kernel is a plain 2x2 bilinear; GDAL
        # would otherwise widen it by the extent-dependent scale ratio of a rotated grid
        # (measured: 2.5x slower, and patch values up to 50 DN different depending on which
        # neighbouring cells share the warp)
        XSCALE=1,
        YSCALE=1,
    )


#: Per thread: the datasets :func:`keep_open` holds open (None outside such a block).
_KEPT = threading.local()


@contextlib.contextmanager
def keep_open() -> Iterator[None]:
    """Within this block, :func:`read_onto` keeps each raster it opens open and reuses it.

    GDAL's block cache belongs to an open dataset: reopening a raster for every strip of a task
    decodes the same source blocks again for each strip (3.4x the CPU for an EnMAP cube). A task
    wraps its reads in this block, so each asset is opened once per task and its decoded blocks
    serve every strip and patch; everything is closed when the block ends. Per thread, so tasks
    on Dask's thread scheduler do not share handles. Nested blocks reuse the outer one.
    """
    if getattr(_KEPT, "datasets", None) is not None:
        yield
        return
    datasets: dict[str, object] = {}
    _KEPT.datasets = datasets
    try:
        yield
    finally:
        _KEPT.datasets = None
        for ds in datasets.values():
            ds.close()  # type: ignore[attr-defined]


def _open(path: str, cache: dict | None):
    if cache is None:
        return rasterio.open(path)
    ds = cache.get(path)
    if ds is None:
        ds = cache[path] = rasterio.open(path)
    return ds


def _drop(path: str, cache: dict | None) -> None:
    """After a failed read: close a kept dataset and clear GDAL's cache of ``path``."""
    if cache is not None and path in cache:
        with contextlib.suppress(Exception):
            cache.pop(path).close()
    forget_cached(path)


def _epsg_of(ds) -> int | None:
    return ds.crs.to_epsg()


def _first_line(e: Exception) -> str:
    """First line of a GDAL error. Callers :func:`~spectralearth_data.credentials.redact` it: a
    signed href's SAS signature must not reach an error message (and from there a log or a
    Prefect result)."""
    text = str(e).strip().splitlines()
    return text[0] if text else type(e).__name__


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
