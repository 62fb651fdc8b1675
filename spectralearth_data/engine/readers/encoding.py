"""Each scene's own DN encoding, re-encoding onto the catalog's, and a plausibility check.

A release stores one product with one set of CF attributes (the catalog bands' ``scale`` and
``offset``), but providers encode scenes differently: Sentinel-2 before processing baseline 04.00
has no offset, Earth Search's ``sentinel-2-l2a`` COGs mostly have the −1000 DN offset already
subtracted (``earthsearch:boa_offset_applied``) while their ``raster:bands`` still list −0.1, and
``sentinel-2-c1-l2a`` keeps the offset in the pixels and says so. So every scene's encoding is
resolved per band (:func:`scene_encoding`), in this order:

1. the ``raster:bands`` ``scale``/``offset`` of the band's own single-band asset in the item
   (STAC raster extension: a missing ``scale`` is 1, a missing ``offset`` 0), when it states
   either;
2. else the product's ``offset_rule`` (Sentinel-2 by ``s2:processing_baseline``: Planetary
   Computer items carry no ``raster:bands``);
3. else the catalog band's own scale/offset;

and then, when the item says its offset is already applied (a provider's
``offset_applied_property`` is true), the offset is 0: the pixels are ``value / scale``.
:func:`reencode` converts the DNs onto the catalog encoding in place, so the patches of every
scene decode alike. :class:`ClearSample` collects clear pixels of a scene and
:meth:`ClearSample.verdict` flags one whose decoded reflectance is implausibly negative, the
sign of an offset applied twice (a mislabelled ``boa_offset_applied: false``, Element84/earth-search
#71).
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any

import numpy as np

from ...catalog import BandSpec, SensorSpec

#: A clear (unflagged) land pixel's reflectance is above this in every band: visible bands of
#: vegetation, soil and built-up land are >= 0.02, and water, snow, cloud and shadow are flagged.
#: An offset of -0.1 applied to pixels that already hold it puts the visible medians near -0.07.
PLAUSIBLE_MIN_MEDIAN = -0.02
#: Fewer clear pixels than this give no verdict (a sliver of a scene says nothing).
MIN_CLEAR_PIXELS = 256
#: At most this many clear pixels per band are kept from one read (a strip), evenly spaced.
SAMPLE_PER_READ = 4096


@dataclass(frozen=True)
class BandEncoding:
    """How one band of one scene is encoded: ``value = dn * scale + offset``; ``origin`` says
    where that came from (for messages)."""

    scale: float
    offset: float
    origin: str


def _is_true(value: Any) -> bool:
    return value is True or (isinstance(value, str) and value.strip().lower() == "true")


def _raster_band(scene, spec: SensorSpec, band: BandSpec) -> dict | None:
    """``raster:bands[0]`` of the band's single-band asset in the scene's item, if it states a
    scale or an offset (cube assets are left to their readers: orders carry their own table)."""
    if band.asset is None:
        return None
    from . import asset_href

    assets = (scene.item or {}).get("assets") or {}
    try:
        href = asset_href(spec, scene, band.asset)
    except Exception:  # the read itself reports a missing asset
        return None
    key = next((k for k, v in scene.assets.items() if v == href), None)
    rbs = (assets.get(key) or {}).get("raster:bands") if key is not None else None
    if not isinstance(rbs, list) or len(rbs) != 1 or not isinstance(rbs[0], dict):
        return None
    rb = rbs[0]
    if rb.get("scale") is None and rb.get("offset") is None:
        return None
    return rb


def scene_encoding(spec: SensorSpec, scene, bands: tuple[BandSpec, ...]) -> tuple[BandEncoding, ...]:
    """The encoding of each of ``bands`` in ``scene`` (see the module docstring for the order)."""
    props = (scene.item or {}).get("properties") or {}
    applied = [name for name in spec.offset_applied_properties if _is_true(props.get(name))]
    rule = spec.offset_rule
    out = []
    for b in bands:
        rb = _raster_band(scene, spec, b)
        if rb is not None:
            scale = float(rb["scale"]) if rb.get("scale") is not None else 1.0
            offset = float(rb["offset"]) if rb.get("offset") is not None else 0.0
            origin = "item raster:bands"
        elif rule is not None:
            scale, offset = b.scale, rule.offset_for(props)
            origin = f"offset_rule on {rule.property}={props.get(rule.property)!r}"
        else:
            scale, offset, origin = b.scale, b.offset, "catalog"
        if applied:
            origin += f", offset already applied ({applied[0]}: true)"
            offset = 0.0
        out.append(BandEncoding(scale, offset, origin))
    return tuple(out)


def _same(a: float, b: float) -> bool:
    return math.isclose(a, b, rel_tol=1e-9, abs_tol=1e-12)


def reencode(data: np.ndarray, bands: tuple[BandSpec, ...], encoding: tuple[BandEncoding, ...]) -> None:
    """Convert ``data`` (C, H, W) from the scene's ``encoding`` onto the bands' catalog encoding,
    in place, leaving fill values alone.

    Same scale: an integer DN shift ``(scene_offset - band_offset) / scale``; another scale: the
    value is recomputed (``dn * s + o``, then back with the band's scale/offset, rounded for
    integer products). Integer results are clipped to the dtype (and kept off a fill value of 0).
    """
    info = np.iinfo(data.dtype) if data.dtype.kind in "ui" else None
    for i, (b, enc) in enumerate(zip(bands, encoding)):
        if _same(enc.scale, b.scale) and _same(enc.offset, b.offset):
            continue
        x = data[i]
        valid = x != b.nodata if b.nodata is not None else np.ones(x.shape, bool)
        if data.dtype.kind == "f":
            valid &= np.isfinite(x)
        if _same(enc.scale, b.scale):
            shift = round((enc.offset - b.offset) / b.scale)
            if shift == 0:
                continue
            new = x[valid].astype(np.int64) + shift if info is not None else x[valid] + shift
        else:
            value = x[valid].astype(np.float64) * enc.scale + enc.offset
            new = (value - b.offset) / b.scale
            if info is not None:
                new = np.rint(new).astype(np.int64)
        if info is not None:
            lo = max(info.min, 1) if b.nodata == 0 else info.min
            new = np.clip(new, lo, info.max)
        x[valid] = new.astype(data.dtype)


class ClearSample:
    """Clear pixels of one scene, sampled over its reads, for :meth:`verdict`.

    Only bands in reflectance that count for the model (``usable``) are sampled; a pixel is clear
    when its mask has no flag at all (no nodata, cloud, shadow, snow/ice, water, saturation).
    """

    def __init__(self, bands: tuple[BandSpec, ...]):
        self.bands = bands
        self.index = [i for i, b in enumerate(bands) if b.usable and b.unit == "reflectance"]
        self.values: list[list[np.ndarray]] = [[] for _ in self.index]
        self.count = 0

    def add(self, data: np.ndarray, mask: np.ndarray) -> None:
        """Sample the clear pixels of one read (``data`` native, catalog encoding)."""
        if not self.index:
            return
        clear = np.flatnonzero(mask.ravel() == 0)
        if clear.size == 0:
            return
        step = max(1, clear.size // SAMPLE_PER_READ)
        pick = clear[::step]
        self.count += pick.size
        for n, i in enumerate(self.index):
            b = self.bands[i]
            self.values[n].append(data[i].ravel()[pick].astype(np.float64) * b.scale + b.offset)

    def medians(self) -> dict[str, float]:
        """Median decoded value per sampled band (empty when no clear pixel was seen)."""
        if not self.count:
            return {}
        return {self.bands[i].name: float(np.median(np.concatenate(v))) for i, v in zip(self.index, self.values)}

    def verdict(self, sensor: str, scene_id: str, encoding: tuple[BandEncoding, ...] | None = None) -> str | None:
        """A one-line warning when the scene's clear pixels decode implausibly low, else None."""
        if self.count < MIN_CLEAR_PIXELS:
            return None
        med = self.medians()
        low = {k: v for k, v in med.items() if v < PLAUSIBLE_MIN_MEDIAN}
        if not low:
            return None
        worst = min(low, key=low.__getitem__)
        how = ""
        if encoding:
            enc = encoding[self.bands.index(next(b for b in self.bands if b.name == worst))]
            how = f"; its offset {enc.offset:g} came from {enc.origin}"
        return (
            f"{sensor} scene {scene_id}: implausible reflectance, the clear-pixel median of "
            f"{len(low)} band(s) is below {PLAUSIBLE_MIN_MEDIAN:g} ({worst} {low[worst]:.3f} over "
            f"{self.count} clear pixels){how}: the offset looks wrong (applied twice?)"
        )
