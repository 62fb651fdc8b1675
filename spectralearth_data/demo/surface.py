"""The synthetic ground truth every demo product is rendered from.

One land-cover map (classes = columns of ``reference_spectra.csv``) and a brightness field live on
a fine 5 m grid in one UTM zone, a bit larger than the demo region. 5 m divides every native pixel
edge the demo writes (10/20/30/60 m grids, Landsat's 15 m-offset grid), so a sensor pixel is the
exact area mean of the surface under it: :meth:`Surface.fractions` answers "how much of each class
(weighted by brightness) lies in this box" with a summed-area table, in O(1) per pixel. Products
then mix the class spectra linearly with those fractions, which keeps all sensors consistent.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from pyproj import Transformer
from scipy import ndimage

#: Surface pixel size (m); divides 10, 15, 20, 30 and 60.
SURFACE_PX_M = 5.0
#: Margin around the region (m) and the snapping step of the surface extent (m).
MARGIN_M = 480.0
SNAP_M = 120.0


def smooth_field(rng: np.random.Generator, shape: tuple[int, int], sigma_px: float) -> np.ndarray:
    """Zero-mean, unit-std Gaussian random field with correlation length ``sigma_px`` pixels."""
    field = ndimage.gaussian_filter(rng.standard_normal(shape), sigma_px, mode="reflect")
    return (field - field.mean()) / (field.std() + 1e-12)


@dataclass(frozen=True)
class Surface:
    """Class map + brightness on a north-up 5 m grid in ``epsg`` (top-left ``x0``, ``y0``)."""

    epsg: int
    x0: float
    y0: float
    labels: np.ndarray  # (H, W) int class index 0..K-1
    brightness: np.ndarray  # (H, W) float, ~1
    sat: np.ndarray  # (K, H+1, W+1) summed-area table of brightness * one-hot

    @property
    def shape(self) -> tuple[int, int]:
        return self.labels.shape  # type: ignore[return-value]

    @property
    def bounds(self) -> tuple[float, float, float, float]:
        """``(xmin, ymin, xmax, ymax)`` in the surface CRS."""
        h, w = self.shape
        return (self.x0, self.y0 - h * SURFACE_PX_M, self.x0 + w * SURFACE_PX_M, self.y0)

    def fractions(self, x: np.ndarray, y: np.ndarray, half_m: float) -> tuple[np.ndarray, np.ndarray]:
        """Brightness-weighted class fractions of the boxes ``x +- half_m``, ``y +- half_m``.

        Returns ``(F (K, *x.shape), inside (x.shape) bool)``; ``inside`` is False where the box
        falls (partly) off the surface. Coordinates are in the surface CRS.
        """
        h, w = self.shape
        c0 = np.rint((x - half_m - self.x0) / SURFACE_PX_M).astype(np.int64)
        c1 = np.rint((x + half_m - self.x0) / SURFACE_PX_M).astype(np.int64)
        r0 = np.rint((self.y0 - (y + half_m)) / SURFACE_PX_M).astype(np.int64)
        r1 = np.rint((self.y0 - (y - half_m)) / SURFACE_PX_M).astype(np.int64)
        inside = (c0 >= 0) & (r0 >= 0) & (c1 <= w) & (r1 <= h)
        c0, c1 = np.clip(c0, 0, w), np.clip(c1, 0, w)
        r0, r1 = np.clip(r0, 0, h), np.clip(r1, 0, h)
        area = np.maximum((c1 - c0) * (r1 - r0), 1).astype(np.float64)
        s = self.sat
        total = s[:, r1, c1] - s[:, r0, c1] - s[:, r1, c0] + s[:, r0, c0]
        return total / area, inside


def _summed_area(labels: np.ndarray, brightness: np.ndarray, k: int) -> np.ndarray:
    h, w = labels.shape
    sat = np.zeros((k, h + 1, w + 1))
    for i in range(k):
        sat[i, 1:, 1:] = np.cumsum(np.cumsum(np.where(labels == i, brightness, 0.0), 0), 1)
    return sat


def make_surface(region_bounds_lonlat: tuple[float, float, float, float], epsg: int, n_classes: int,
                 seed: int) -> Surface:
    """A seeded land-cover surface covering the region (lon/lat bounds) plus a margin, in ``epsg``.

    Classes come from the arg-max of smooth random fields (patchy fields, blocks, a lake), so
    every class occupies connected areas of a few hundred metres, like a real landscape.
    """
    rng = np.random.default_rng([seed, 1])
    lon0, lat0, lon1, lat1 = region_bounds_lonlat
    tr = Transformer.from_crs(4326, epsg, always_xy=True)
    xs, ys = tr.transform([lon0, lon0, lon1, lon1], [lat0, lat1, lat0, lat1])
    xmin = np.floor((min(xs) - MARGIN_M) / SNAP_M) * SNAP_M
    xmax = np.ceil((max(xs) + MARGIN_M) / SNAP_M) * SNAP_M
    ymin = np.floor((min(ys) - MARGIN_M) / SNAP_M) * SNAP_M
    ymax = np.ceil((max(ys) + MARGIN_M) / SNAP_M) * SNAP_M
    h, w = int((ymax - ymin) / SURFACE_PX_M), int((xmax - xmin) / SURFACE_PX_M)
    # Fields on a 20 m grid, upsampled: cheap, and smooth at 5 m.
    coarse = (h // 4 + 1, w // 4 + 1)
    fields = np.stack([smooth_field(rng, coarse, 6.0) for _ in range(n_classes)])
    up = ndimage.zoom(fields, (1, 4, 4), order=1)[:, :h, :w]
    labels = np.argmax(up, axis=0).astype(np.int16)
    tex = smooth_field(rng, coarse, 1.5)
    brightness = 1.0 + 0.06 * ndimage.zoom(tex, 4, order=1)[:h, :w]
    brightness += 0.02 * rng.standard_normal((h, w))
    return Surface(epsg, float(xmin), float(ymax), labels, brightness,
                   _summed_area(labels, brightness, n_classes))
