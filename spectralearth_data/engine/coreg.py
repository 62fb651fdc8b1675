"""Co-registration check: image correlation between an HSI patch and Sentinel-2 on the same cell.

The HSI band nearest to each S2 reference band (red, NIR) is compared with the S2 band averaged
down to the HSI pixel size; the peak of the normalised cross-correlation over small integer shifts
gives the shift, refined to sub-pixel with a parabola through the peak and its neighbours. The stored ``coreg_shift_px`` is
the shift length in HSI pixels (NaN when too few pixels are valid to tell).
"""

from __future__ import annotations

import warnings

import numpy as np

#: Common names of the S2 bands used as the reference.
REFERENCE_COMMON_NAMES = ("red", "nir")


def block_mean(img: np.ndarray, factor: int) -> np.ndarray:
    """Average ``factor`` x ``factor`` blocks (10 m S2 -> 30/60 m HSI pixels); NaN-aware."""
    if factor == 1:
        return img
    h, w = img.shape[0] // factor, img.shape[1] // factor
    blocks = img[: h * factor, : w * factor].reshape(h, factor, w, factor)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)  # all-NaN blocks -> NaN, on purpose
        return np.nanmean(blocks, axis=(1, 3))


def _parabola(m1: float, c: float, p1: float) -> float:
    d = m1 - 2 * c + p1
    return 0.0 if d == 0 else 0.5 * (m1 - p1) / d


def _detrend(img: np.ndarray) -> np.ndarray:
    """Remove the best-fit plane (illumination and spectral-level differences), NaN-aware."""
    h, w = img.shape
    yy, xx = np.mgrid[0:h, 0:w]
    ok = np.isfinite(img)
    A = np.column_stack([np.ones(ok.sum()), xx[ok], yy[ok]])
    coef, *_ = np.linalg.lstsq(A, img[ok], rcond=None)
    out = img - (coef[0] + coef[1] * xx + coef[2] * yy)
    return np.where(ok, out, np.nan)


def _ncc(a: np.ndarray, b: np.ndarray) -> float:
    ok = np.isfinite(a) & np.isfinite(b)
    if ok.sum() < 16:
        return -1.0
    x, y = a[ok] - a[ok].mean(), b[ok] - b[ok].mean()
    den = np.sqrt((x * x).sum() * (y * y).sum())
    return float((x * y).sum() / den) if den > 0 else -1.0


def phase_shift(a: np.ndarray, b: np.ndarray, radius: int = 3) -> tuple[float, float]:
    """(dy, dx) in pixels such that ``b`` sampled at ``(y + dy, x + dx)`` matches ``a`` at (y, x).

    Both images are detrended, the normalised cross-correlation is evaluated at every integer
    shift within ``radius`` over the common interior, and the peak is refined with a parabola
    through its neighbours. (Small 32-64 px patches with smooth content make FFT phase
    correlation unreliable; the spatial search is exact and cheap at this size.)
    """
    a, b = _detrend(a), _detrend(b)
    h, w = a.shape
    r = radius
    core = a[r : h - r, r : w - r]
    scores = np.full((2 * r + 1, 2 * r + 1), -1.0)
    for dy in range(-r, r + 1):
        for dx in range(-r, r + 1):
            scores[dy + r, dx + r] = _ncc(core, b[r + dy : h - r + dy, r + dx : w - r + dx])
    py, px = np.unravel_index(int(np.argmax(scores)), scores.shape)
    fy = _parabola(scores[py - 1, px], scores[py, px], scores[py + 1, px]) if 0 < py < 2 * r else 0.0
    fx = _parabola(scores[py, px - 1], scores[py, px], scores[py, px + 1]) if 0 < px < 2 * r else 0.0
    return float(py - r + fy), float(px - r + fx)


def coreg_shift_px(hsi: list[np.ndarray], ref: list[np.ndarray], min_valid: float = 0.5) -> float:
    """Mean shift length (HSI pixels) over pairs of (HSI band, reference band at HSI resolution),
    physical values with NaN where invalid. NaN when a pair has < ``min_valid`` finite pixels or
    no texture."""
    shifts = []
    for a, b in zip(hsi, ref):
        ok = np.isfinite(a) & np.isfinite(b)
        if ok.mean() < min_valid or np.nanstd(a) == 0 or np.nanstd(b) == 0:
            return float("nan")
        dy, dx = phase_shift(a, b)
        shifts.append(np.hypot(dy, dx))
    return float(np.mean(shifts)) if shifts else float("nan")
