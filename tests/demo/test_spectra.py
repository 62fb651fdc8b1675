"""Reference spectra (derived from real EnMAP tiles) and band responses (catalog SRF / FWHM)."""

from __future__ import annotations

import numpy as np
import pytest

from spectralearth_data.catalog import load_sensor
from spectralearth_data.demo import derive_reference_spectra
from spectralearth_data.demo.spectra import (
    REFERENCE_CSV,
    band_matrix,
    class_band_table,
    gaussian_response,
    reference_spectra,
    srf_file_for,
)


def test_committed_table_is_what_the_real_enmap_tiles_give(tmp_path):
    out = derive_reference_spectra.main(tmp_path / "table.csv")
    assert out.read_text() == REFERENCE_CSV.read_text()
    assert "EnMAP" in REFERENCE_CSV.read_text().splitlines()[0]  # attribution line


def test_reference_spectra_are_plausible_surfaces():
    wl, names, refl = reference_spectra()
    assert wl[0] == 380.0 and wl[-1] == 2500.0 and refl.shape == (len(wl), len(names)) == (425, 6)
    assert np.all((refl > 0) & (refl < 1))
    red, nir = refl[np.argmin(abs(wl - 665))], refl[np.argmin(abs(wl - 865))]
    ndvi = (nir - red) / (nir + red)
    assert ndvi.max() > 0.6, "a vegetated class"
    assert nir.min() < 0.1, "a water class"


@pytest.mark.parametrize("platform,expected", [
    ("Sentinel-2A", "Sentinel_2A_Spectral_Response.tsv"), ("Sentinel-2B", "Sentinel_2B_Spectral_Response.tsv"),
    ("landsat-8", "Landsat_8_Spectral_Response.tsv"), ("landsat-9", "Landsat_9_Spectral_Response.tsv"),
    ("EnMAP", None), ("SENTINEL-1A", None),
])
def test_srf_file_for_platform(platform, expected):
    assert srf_file_for(platform) == expected


def test_s2_uses_measured_srf_and_hsi_uses_gaussian_fwhm():
    s2, enmap = load_sensor("s2"), load_sensor("enmap")
    wl = reference_spectra()[0]
    m = band_matrix(s2, "Sentinel-2A")
    b04 = [b.name for b in s2.bands].index("B04")
    assert np.isclose(m[b04].sum(), 1.0)
    # measured SRF: B04 has no weight outside ~640..690 nm, unlike a broad Gaussian tail
    assert m[b04][(wl < 640) | (wl > 695)].sum() < 1e-3
    e = band_matrix(enmap)
    i = 40
    g = gaussian_response(wl, enmap.bands[i].wavelength_nm, enmap.bands[i].fwhm_nm)
    assert np.allclose(e[i], g / g.sum())
    assert class_band_table(enmap).shape == (6, len(enmap.bands))
