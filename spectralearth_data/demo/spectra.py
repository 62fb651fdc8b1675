"""Reference spectra of the demo surface and their convolution to each product's bands.

The class spectra come from real EnMAP L2A tiles (``reference_spectra.csv``, see
``derive_reference_spectra.py``). A band's value is the response-weighted mean of a spectrum:
``r_b = sum(R_b(l) * r(l)) / sum(R_b(l))`` over the 5 nm grid. ``R_b`` is the measured spectral
response function from ``catalogs/srf`` where one exists for the band (Sentinel-2 MSI, Landsat
OLI), else a Gaussian with the band's catalog centre and FWHM. Using the same surface spectra for
every product is what makes the demo products consistent with each other.
"""

from __future__ import annotations

import functools
import re
from pathlib import Path

import numpy as np

from ..catalog import SensorSpec, catalog_root

REFERENCE_CSV = Path(__file__).resolve().parent / "reference_spectra.csv"

#: Column names of the Landsat OLI response files (prosail layout) -> STAC eo common names.
_OLI_COLUMNS = {
    "CoastalAerosol": "coastal",
    "Blue": "blue",
    "Green": "green",
    "Red": "red",
    "NIR": "nir08",
    "SWIR1": "swir16",
    "SWIR2": "swir22",
}

#: Bright, slightly blue-white cloud-top reflectance, falling off in the SWIR water/ice bands.
_CLOUD_ANCHORS_NM = np.array([380.0, 700.0, 1000.0, 1300.0, 1600.0, 2200.0, 2500.0])
_CLOUD_ANCHORS_R = np.array([0.62, 0.60, 0.58, 0.52, 0.40, 0.25, 0.20])


@functools.lru_cache(maxsize=1)
def reference_spectra() -> tuple[np.ndarray, tuple[str, ...], np.ndarray]:
    """``(wavelength_nm (L,), class names (K,), reflectance (L, K))`` of the demo classes."""
    lines = [ln for ln in REFERENCE_CSV.read_text().splitlines() if ln and not ln.startswith("#")]
    header = lines[0].split(",")
    table = np.array([[float(v) for v in ln.split(",")] for ln in lines[1:]])
    return table[:, 0], tuple(header[1:]), table[:, 1:]


def cloud_spectrum(wavelength_nm: np.ndarray) -> np.ndarray:
    """Plausible thick-cloud reflectance on ``wavelength_nm``."""
    return np.interp(wavelength_nm, _CLOUD_ANCHORS_NM, _CLOUD_ANCHORS_R)


def gaussian_response(grid_nm: np.ndarray, centre_nm: float, fwhm_nm: float) -> np.ndarray:
    """Gaussian band response on ``grid_nm``; sigma = FWHM / (2 sqrt(2 ln 2)).

    Narrow bands (FWHM below the grid step) still get a few samples by flooring sigma at half a
    grid step, so a 2.4 nm DESIS band is not reduced to one 5 nm sample with zero weight around it.
    """
    step = float(np.median(np.diff(grid_nm)))
    sigma = max(fwhm_nm / (2.0 * np.sqrt(2.0 * np.log(2.0))), 0.5 * step)
    return np.exp(-0.5 * ((grid_nm - centre_nm) / sigma) ** 2)


@functools.lru_cache(maxsize=8)
def _read_srf(filename: str) -> tuple[np.ndarray, dict[str, np.ndarray]]:
    path = catalog_root() / "srf" / filename
    rows = [ln.split("\t") for ln in path.read_text().splitlines() if ln.strip()]
    header = [h.strip() for h in rows[0]]
    data = np.array([[float(v) for v in r] for r in rows[1:]])
    return data[:, 0], {h: data[:, i] for i, h in enumerate(header) if i > 0}


def srf_file_for(platform: str) -> str | None:
    """Name of the response file in ``catalogs/srf`` for an item's ``platform``, if any."""
    p = platform.lower().replace("_", "-")
    if m := re.match(r"sentinel-?2([ab])", p):
        return f"Sentinel_2{m.group(1).upper()}_Spectral_Response.tsv"
    if m := re.match(r"landsat-?([89])", p):
        return f"Landsat_{m.group(1)}_Spectral_Response.tsv"
    return None


def _srf_column(sensor: SensorSpec, band_name: str, common_name: str | None, columns) -> str | None:
    """The response-file column of a band: ``B2`` for S2 ``B02``, common name for Landsat OLI."""
    short = re.sub(r"^B0*(\d+A?)$", r"B\1", band_name)
    if short in columns:
        return short
    for col, cn in _OLI_COLUMNS.items():
        if col in columns and cn in {common_name, band_name}:
            return col
    return None


def band_matrix(sensor: SensorSpec, platform: str | None = None) -> np.ndarray:
    """Normalised response weights ``(C, L)`` of the sensor's optical bands on the reference grid.

    Rows of bands without a wavelength (thermal, SAR) are zero; callers fill those bands from
    their own models.
    """
    grid, _, _ = reference_spectra()
    srf_name = srf_file_for(platform) if platform else None
    srf = _read_srf(srf_name) if srf_name and (catalog_root() / "srf" / srf_name).exists() else None
    rows = []
    for band in sensor.bands:
        w = np.zeros_like(grid)
        col = _srf_column(sensor, band.name, band.common_name, srf[1]) if srf else None
        if col is not None:
            w = np.clip(np.interp(grid, srf[0], srf[1][col], left=0.0, right=0.0), 0.0, None)
        elif band.wavelength_nm is not None and band.wavelength_nm < grid[-1]:
            w = gaussian_response(grid, band.wavelength_nm, band.fwhm_nm or 10.0)
        total = w.sum()
        rows.append(w / total if total > 0 else w)
    return np.stack(rows)


def class_band_table(sensor: SensorSpec, platform: str | None = None) -> np.ndarray:
    """Reflectance of every demo class in every band: ``(K, C)``."""
    _, _, refl = reference_spectra()
    return (band_matrix(sensor, platform) @ refl).T


def cloud_band_values(sensor: SensorSpec, platform: str | None = None) -> np.ndarray:
    """Thick-cloud reflectance in every band: ``(C,)``."""
    grid, _, _ = reference_spectra()
    return band_matrix(sensor, platform) @ cloud_spectrum(grid)
