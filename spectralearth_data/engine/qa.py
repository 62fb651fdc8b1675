"""Per-pixel quality: product QA layers and data values -> :class:`MaskFlag` bits; patch fractions.

The meaning of every QA value, bit or layer comes from the product's ``qa`` entry in
catalogs/sensors (``QASpec``); nothing here knows a sensor.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence

import numpy as np

from ..catalog import BandSpec, QAClass, QASpec
from ..masks import CLOUDY, INVALID, MaskFlag


def classes_to_bits(qa: QASpec, values: np.ndarray) -> np.ndarray:
    """Class-valued QA (e.g. S2 SCL) -> uint8 flags through a lookup table."""
    lut = np.zeros(max(256, int(values.max(initial=0)) + 1), dtype=np.uint8)
    for e in qa.entries:
        lut[int(e.value)] |= np.uint8(e.mask_bits)  # type: ignore[arg-type]
    return lut[values.astype(np.int64, copy=False)]


def bitflags_to_bits(qa: QASpec, values: np.ndarray) -> np.ndarray:
    """Bit-packed QA (e.g. Landsat QA_PIXEL) -> uint8 flags: each set bit adds its flags."""
    v = values.astype(np.int64, copy=False)
    out = np.zeros(v.shape, dtype=np.uint8)
    for e in qa.entries:
        if e.mask_bits:
            out[((v >> int(e.bit)) & 1).astype(bool)] |= np.uint8(e.mask_bits)  # type: ignore[arg-type]
    return out


def layers_to_bits(qa: QASpec, layers: Mapping[str, np.ndarray], shape: tuple[int, int]) -> np.ndarray:
    """One layer per condition (EMIT mask, EnMAP/DESIS quality layers) -> uint8 flags.

    Layers the scene does not provide are skipped. A plain layer sets its entry's flags where its
    value is > 0 (fill values of a layer, e.g. -9999, are not conditions and are ignored); a layer
    with ``classes`` sets, per pixel, the flags of its value. A ``per_band`` layer arrives as
    ``(k, H, W)`` (its usable bands) and a pixel gets the flags of any of the k values.
    """
    out = np.zeros(shape, dtype=np.uint8)
    for e in qa.entries:
        arr = layers.get(e.layer)  # type: ignore[arg-type]
        if arr is None or not e.sets_flags:
            continue
        for band in (arr if arr.ndim == 3 else (arr,)):
            out |= layer_bits(e, band)
    return out


def layer_bits(entry: QAClass, arr: np.ndarray) -> np.ndarray:
    """uint8 flags of one 2-D quality layer (see :func:`layers_to_bits`)."""
    if entry.classes is None:
        return np.where((arr > 0) & np.isfinite(arr), np.uint8(entry.mask_bits), np.uint8(0))
    out = np.zeros(arr.shape, dtype=np.uint8)
    for value, bits in entry.class_bits().items():
        out[arr == value] |= np.uint8(bits)
    return out


def qa_to_bits(qa: QASpec, values: np.ndarray) -> np.ndarray:
    """Dispatch on ``qa.kind`` for a single-layer QA raster."""
    if qa.kind == "classes":
        return classes_to_bits(qa, values)
    if qa.kind == "bits":
        return bitflags_to_bits(qa, values)
    raise ValueError("layers QA needs layers_to_bits")


def data_bits(data: np.ndarray, bands: Sequence[BandSpec], good: np.ndarray | None = None) -> np.ndarray:
    """Flags from the data values themselves, ``data`` being ``(C, H, W)`` native numbers.

    NODATA where every (good) band is the fill value or not finite; SATURATED where only some
    bands are, or a value lies outside the band's documented valid range. ``good`` is a ``(C,)``
    bool array of bands to consider (EMIT's per-scene good_wavelengths); default all.
    """
    sel = np.arange(len(bands)) if good is None else np.flatnonzero(good)
    missing = np.zeros(data.shape[1:], dtype=np.int32)
    bad = np.zeros(data.shape[1:], dtype=bool)
    for i in sel:
        band, x = bands[int(i)], data[i]
        miss = ~np.isfinite(x) if x.dtype.kind == "f" else np.zeros(x.shape, bool)
        if band.nodata is not None:
            miss |= x == band.nodata
        lo, hi = band.valid_range
        bad |= ~miss & ((x < lo) | (x > hi))
        missing += miss
    out = np.zeros(data.shape[1:], dtype=np.uint8)
    n = len(sel)
    out[missing == n] |= np.uint8(MaskFlag.NODATA)
    out[(missing > 0) & (missing < n)] |= np.uint8(MaskFlag.SATURATED)
    out[bad] |= np.uint8(MaskFlag.SATURATED)
    return out


def fractions(mask: np.ndarray) -> tuple[float, float]:
    """(valid_fraction, cloud_fraction) of one patch mask.

    valid = share of pixels without NODATA/SATURATED; cloud = share of *valid* pixels flagged
    cloud or cloud shadow (0 when no pixel is valid).
    """
    valid = (mask & int(INVALID)) == 0
    n_valid = int(valid.sum())
    vf = n_valid / mask.size
    cf = float(((mask & int(CLOUDY)) != 0)[valid].sum()) / n_valid if n_valid else 0.0
    return vf, cf
