"""Render a product's bands and QA from the surface and a scene's sky, on any pixel grid.

Pure array functions: a grid gives pixel centres (converted to the surface CRS), the surface gives
class fractions under each pixel, and the sensor's :class:`~spectralearth_data.catalog.SensorSpec`
gives band responses, dtypes, scale/offset, nodata and QA meanings. Nothing here writes files.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from affine import Affine
from pyproj import Transformer

from ..catalog import BandSpec, QASpec, SensorSpec
from ..masks import MaskFlag
from .sky import Sky
from .spectra import class_band_table, cloud_band_values, reference_spectra
from .surface import Surface

#: Cloud-shadow darkening of the surface signal (diffuse light only).
SHADOW_FACTOR = 0.35
#: Reflectance noise (1 sigma) added to every optical band.
NOISE_REFL = 0.002


@dataclass(frozen=True)
class Grid:
    """A north-up pixel grid: ``epsg``, top-left corner, pixel size and shape."""

    epsg: int
    x0: float
    y0: float
    px: float
    width: int
    height: int

    @property
    def transform(self) -> Affine:
        return Affine(self.px, 0.0, self.x0, 0.0, -self.px, self.y0)

    @property
    def bounds(self) -> tuple[float, float, float, float]:
        return (self.x0, self.y0 - self.height * self.px, self.x0 + self.width * self.px, self.y0)

    def centres(self) -> tuple[np.ndarray, np.ndarray]:
        """Pixel-centre coordinates ``(x, y)``, each (height, width), in the grid CRS."""
        xs = self.x0 + (np.arange(self.width) + 0.5) * self.px
        ys = self.y0 - (np.arange(self.height) + 0.5) * self.px
        return np.meshgrid(xs, ys)


def grid_over(bounds: tuple[float, float, float, float], epsg: int, px: float, origin_mod: float = 0.0,
              inset_m: float = 0.0) -> Grid:
    """The grid of pixel size ``px`` inside ``bounds`` (shrunk by ``inset_m``) whose edges sit at
    ``origin_mod`` modulo ``px`` (15 for Landsat-style origins)."""
    xmin, ymin, xmax, ymax = (bounds[0] + inset_m, bounds[1] + inset_m,
                              bounds[2] - inset_m, bounds[3] - inset_m)
    x0 = np.ceil((xmin - origin_mod) / px) * px + origin_mod
    y0 = np.floor((ymax - origin_mod) / px) * px + origin_mod
    width = int((xmax - x0) // px)
    height = int((y0 - ymin) // px)
    return Grid(epsg, float(x0), float(y0), float(px), width, height)


def to_surface_crs(x: np.ndarray, y: np.ndarray, epsg: int, surface: Surface):
    if epsg == surface.epsg:
        return x, y
    tr = Transformer.from_crs(epsg, surface.epsg, always_xy=True)
    return tr.transform(x, y)


@dataclass(frozen=True)
class Conditions:
    """Per-pixel state of one scene on one grid (all (H, W))."""

    fractions: np.ndarray  # (K, H, W) brightness-weighted class fractions
    valid: np.ndarray  # bool: inside the footprint and the surface
    cloud: np.ndarray  # float opacity 0..1
    shadow: np.ndarray  # bool
    water: np.ndarray  # bool: mostly water


def conditions_at(surface: Surface, sky: Sky, x: np.ndarray, y: np.ndarray, half_m: float) -> Conditions:
    """Fractions and sky state at surface-CRS pixel centres with a ``2*half_m`` footprint."""
    frac, inside = surface.fractions(x, y, half_m)
    valid = inside & sky.in_footprint(x, y)
    water = frac[water_class()] > 0.5 * frac.sum(axis=0)
    return Conditions(frac, valid, sky.cloud(x, y), sky.in_shadow(x, y) & valid, water & valid)


def water_class() -> int:
    """Index of the darkest class in the NIR (the water class of the reference table)."""
    wl, _, refl = reference_spectra()
    return int(np.argmin(refl[np.argmin(np.abs(wl - 860.0))]))


def class_ndvi() -> np.ndarray:
    """NDVI of each reference class (K,), from its 665 and 865 nm reflectance."""
    wl, _, refl = reference_spectra()
    red, nir = refl[np.argmin(np.abs(wl - 665.0))], refl[np.argmin(np.abs(wl - 865.0))]
    return (nir - red) / (nir + red)


def reflectance(sensor: SensorSpec, platform: str | None, cond: Conditions, rng: np.random.Generator,
                band_idx: list[int] | None = None) -> np.ndarray:
    """Surface reflectance as the sensor sees it, with clouds and shadows: ``(C, H, W)`` float32."""
    table = class_band_table(sensor, platform)  # (K, C)
    cloud = cloud_band_values(sensor, platform)  # (C,)
    if band_idx is not None:
        table, cloud = table[:, band_idx], cloud[band_idx]
    refl = np.einsum("kc,khw->chw", table, cond.fractions)
    refl *= np.where(cond.shadow, SHADOW_FACTOR, 1.0)[None]
    a = cond.cloud[None]
    refl = (1.0 - a) * refl + a * cloud[:, None, None]
    refl += rng.normal(0.0, NOISE_REFL, refl.shape)
    return refl.astype(np.float32)


def surface_temperature(cond: Conditions, day_offset_k: float, rng: np.random.Generator) -> np.ndarray:
    """Land-surface temperature (K), ``(H, W)``: vegetation and water cool, sealed surfaces hot.

    Per class ``T = 313 - 16 * NDVI`` (water 294 K), mixed by area; clouds show their cold tops
    (~265 K) and shadows cool the ground by a few kelvin.
    """
    t_class = 313.0 - 16.0 * np.clip(class_ndvi(), 0.0, 1.0)
    t_class[water_class()] = 294.0
    w = cond.fractions / np.maximum(cond.fractions.sum(axis=0, keepdims=True), 1e-6)
    t = np.einsum("k,khw->hw", t_class, w) + day_offset_k
    t -= 4.0 * cond.shadow
    t = (1.0 - cond.cloud) * t + cond.cloud * 265.0
    return (t + rng.normal(0.0, 0.3, t.shape)).astype(np.float32)


def backscatter(cond: Conditions, polarisation: str, rng: np.random.Generator, enl: float = 4.4) -> np.ndarray:
    """Linear gamma0 ``(H, W)`` with multiplicative Gamma speckle of ``enl`` looks.

    Per class (dB): water -22 VV / -28 VH (specular); vegetation ~ -10 VV / -16 VH (volume);
    sealed/built-up -6 VV / -13 VH (double bounce); interpolated on NDVI. Clouds are transparent.
    """
    ndvi = np.clip(class_ndvi(), 0.0, 1.0)
    if polarisation.upper() in {"VV", "HH"}:
        db = -6.0 - 6.0 * ndvi
        db[water_class()] = -22.0
    else:
        db = -13.0 - 4.0 * ndvi
        db[water_class()] = -28.0
    w = cond.fractions / np.maximum(cond.fractions.sum(axis=0, keepdims=True), 1e-6)
    g0 = np.einsum("k,khw->hw", 10.0 ** (db / 10.0), w)
    speckle = rng.gamma(enl, 1.0 / enl, g0.shape)
    return (g0 * speckle).astype(np.float32)


def to_native(values: np.ndarray, band: BandSpec, valid: np.ndarray) -> np.ndarray:
    """Physical values -> stored numbers: ``dn = (value - offset) / scale``, clipped to the
    band's valid range, the band's nodata outside ``valid``."""
    dn = (values.astype(np.float64) - band.offset) / band.scale
    lo, hi = band.valid_range
    dn = np.clip(dn, lo, hi)
    if np.issubdtype(np.dtype(band.dtype), np.integer):
        dn = np.rint(dn)
    out = dn.astype(band.dtype)
    if band.nodata is not None:
        out[~valid] = np.asarray(band.nodata, dtype=band.dtype)
    return out


def mask_flags(cond: Conditions) -> dict[MaskFlag, np.ndarray]:
    """The :class:`MaskFlag` conditions of every pixel (bool arrays)."""
    nodata = ~cond.valid
    cloud = (cond.cloud > 0.1) & cond.valid
    no = np.zeros_like(nodata)
    return {
        MaskFlag.NODATA: nodata,
        MaskFlag.CLOUD: cloud,
        MaskFlag.CLOUD_SHADOW: cond.shadow & ~cloud,
        MaskFlag.WATER: cond.water & ~cloud,
        MaskFlag.SNOW_ICE: no,
        MaskFlag.SATURATED: no,
    }


def _flag_mask(flags: dict[MaskFlag, np.ndarray], names: tuple[str, ...]) -> np.ndarray:
    out = np.zeros_like(flags[MaskFlag.NODATA])
    for name in names:
        out |= flags[MaskFlag.from_name(name)]
    return out


def _pick(entries, flag: str | None, prefer: str):
    """The QA entry for one condition: flags == (flag,) (or none), preferring ``prefer`` in its meaning."""
    want = (flag,) if flag else ()
    cands = [e for e in entries if tuple(e.flags) == want]
    for e in cands:
        if prefer and prefer in e.meaning.lower():
            return e
    return cands[0] if cands else None


def encode_qa(qa: QASpec, cond: Conditions, vegetated: np.ndarray, n_bands: int = 1) -> dict[str, np.ndarray]:
    """The QA layer(s) of the product in its native encoding, keyed by layer name.

    ``classes`` (S2 SCL-like): one class per pixel; ``bits`` (Landsat QA_PIXEL-like): one bit per
    entry whose flags hold; ``layers``: a 0/1 layer per entry (``qa.asset`` first), or, where the
    entries name bands (DESIS QL_QUALITY-2), one ``(bands, H, W)`` raster keyed ``qa.asset`` with
    each layer at its band (layers without flags stay 0). A layer with ``classes`` (EnMAP
    QL_QUALITY_CLASSES / QL_PIXELMASK) holds its class values: the value that sets no flag (or 0)
    elsewhere, the value of each condition where it holds (nodata last); a ``per_band`` layer
    (QL_PIXELMASK) repeats it in ``n_bands`` bands. The values come from the catalog entries, so
    the encoding is what the pipeline's QA reader decodes.
    """
    flags = mask_flags(cond)
    if qa.kind == "classes":
        out = np.zeros(cond.valid.shape, dtype=qa.dtype)
        order = [
            (~vegetated, _pick(qa.entries, None, "not vegetated")),
            (vegetated, _pick(qa.entries, None, "vegetation")),
            (flags[MaskFlag.WATER], _pick(qa.entries, "water", "")),
            (flags[MaskFlag.CLOUD_SHADOW], _pick(qa.entries, "cloud_shadow", "cloud shadow")),
            (flags[MaskFlag.CLOUD], _pick(qa.entries, "cloud", "high")),
            (flags[MaskFlag.NODATA], _pick(qa.entries, "nodata", "")),
        ]
        for where, entry in order:
            if entry is not None:
                out[where] = entry.value
        return {qa.asset: out}
    if qa.kind == "bits":
        out = np.zeros(cond.valid.shape, dtype=np.int64)
        for e in qa.entries:
            if e.flags:
                on = _flag_mask(flags, e.flags)
            elif "clear" in e.meaning.lower():
                on = ~(flags[MaskFlag.CLOUD] | flags[MaskFlag.NODATA])
            else:
                continue
            out |= on.astype(np.int64) << int(e.bit)
        # Fill pixels carry only the fill bit(s), like the real product.
        fill_bits = sum(1 << int(e.bit) for e in qa.entries if "nodata" in e.flags)
        out[flags[MaskFlag.NODATA]] = fill_bits
        return {qa.asset: out.astype(qa.dtype)}
    layers: dict[str, np.ndarray] = {}
    for e in qa.entries:
        if e.classes is None:
            layers[str(e.layer)] = _flag_mask(flags, e.flags).astype(qa.dtype)
            continue
        plain = [v for v, names in e.classes.items() if not names]
        arr = np.full(cond.valid.shape, min(plain) if plain else 0, dtype=qa.dtype)
        for value, names in sorted(e.classes.items(), key=lambda kv: "nodata" in kv[1]):
            if names:
                arr[_flag_mask(flags, tuple(names))] = value
        layers[str(e.layer)] = np.broadcast_to(arr, (n_bands, *arr.shape)).copy() if e.per_band else arr
    if qa.banded:
        stack = np.zeros((max(int(e.band) for e in qa.entries), *cond.valid.shape), dtype=qa.dtype)  # type: ignore[arg-type]
        for e in qa.entries:
            stack[int(e.band) - 1] = layers[str(e.layer)]  # type: ignore[arg-type]
        return {qa.asset: stack}
    return layers
