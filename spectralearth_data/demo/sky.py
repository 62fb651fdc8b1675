"""Per-scene acquisition conditions: clouds, their shadows and the scene footprint edge.

Everything is defined in the surface CRS, so every grid a scene is written on (10/20/60 m, a
neighbouring UTM zone, an EMIT swath) sees the same clouds. Shadows are the cloud field shifted
away from the sun; a scene may be cut by a straight footprint edge, beyond which it has no data.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import shapely
from shapely.geometry import Polygon, box

from .surface import Surface, smooth_field

#: Resolution of the cloud field (m). Clouds are smooth, so 30 m is plenty.
SKY_PX_M = 30.0


@dataclass(frozen=True)
class Sky:
    """Cloud opacity and shadow on a 30 m grid over the surface, plus the footprint half-plane."""

    x0: float
    y0: float
    opacity: np.ndarray  # (h, w) 0..1
    shadow: np.ndarray  # (h, w) bool
    edge: tuple[float, float, float] | None  # valid where a*x + b*y <= c (surface CRS)

    def _lookup(self, grid: np.ndarray, x: np.ndarray, y: np.ndarray, fill):
        h, w = grid.shape
        c = np.floor((x - self.x0) / SKY_PX_M).astype(np.int64)
        r = np.floor((self.y0 - y) / SKY_PX_M).astype(np.int64)
        ok = (c >= 0) & (c < w) & (r >= 0) & (r < h)
        out = np.full(x.shape, fill, dtype=grid.dtype)
        out[ok] = grid[r[ok], c[ok]]
        return out

    def cloud(self, x: np.ndarray, y: np.ndarray) -> np.ndarray:
        """Cloud opacity 0..1 at surface-CRS points."""
        return self._lookup(self.opacity, x, y, 0.0)

    def in_shadow(self, x: np.ndarray, y: np.ndarray) -> np.ndarray:
        return self._lookup(self.shadow, x, y, False)

    def in_footprint(self, x: np.ndarray, y: np.ndarray) -> np.ndarray:
        if self.edge is None:
            return np.ones(np.shape(x), dtype=bool)
        a, b, c = self.edge
        return a * x + b * y <= c

    def footprint(self, outline: Polygon) -> Polygon:
        """``outline`` (surface CRS) clipped by the footprint edge."""
        if self.edge is None:
            return outline
        a, b, c = self.edge
        # A big polygon for the half-plane a*x + b*y <= c, built around its boundary line.
        cx, cy = outline.centroid.x, outline.centroid.y
        n = np.hypot(a, b)
        px, py = cx - a * ((a * cx + b * cy - c) / n**2), cy - b * ((a * cx + b * cy - c) / n**2)
        tx, ty = -b / n * 1e6, a / n * 1e6  # along the line
        ox, oy = -a / n * 1e6, -b / n * 1e6  # into the valid side
        half = Polygon([(px + tx, py + ty), (px - tx, py - ty), (px - tx + ox, py - ty + oy),
                        (px + tx + ox, py + ty + oy)])
        return shapely.intersection(outline, half)


def make_sky(surface: Surface, rng: np.random.Generator, cloud_fraction: float,
             cut_fraction: float) -> Sky:
    """Clouds covering about ``cloud_fraction`` of the surface, shadows, and a footprint edge that
    removes about ``cut_fraction`` of the surface width (0 = scene covers everything)."""
    xmin, ymin, xmax, ymax = surface.bounds
    h, w = round((ymax - ymin) / SKY_PX_M), round((xmax - xmin) / SKY_PX_M)
    field = smooth_field(rng, (h, w), 5.0)
    if cloud_fraction > 0:
        thr = np.quantile(field, 1.0 - cloud_fraction)
        opacity = np.clip((field - thr) / 0.6 + 0.35, 0.0, 1.0) * (field > thr)
    else:
        opacity = np.zeros((h, w))
    cloudy = opacity > 0
    # Morning sun from the south-east: shadows fall north-west of the clouds (8 px = 240 m).
    dr, dc = -int(rng.integers(5, 10)), -int(rng.integers(4, 9))
    shadow = np.zeros_like(cloudy)
    shadow[max(dr, 0): h + min(dr, 0), max(dc, 0): w + min(dc, 0)] = cloudy[
        max(-dr, 0): h + min(-dr, 0), max(-dc, 0): w + min(-dc, 0)]
    shadow &= ~cloudy
    edge = None
    if cut_fraction > 0:
        angle = np.deg2rad(rng.uniform(10.0, 30.0))  # normal mostly east: a steep, slanted edge
        a, b = np.cos(angle), np.sin(angle)
        # Valid side a*x+b*y <= c, with c placed so ~cut_fraction of the width is lost on the east.
        xc = xmax - cut_fraction * (xmax - xmin)
        yc = 0.5 * (ymin + ymax)
        edge = (float(a), float(b), float(a * xc + b * yc))
    return Sky(xmin, ymax, opacity.astype(np.float32), shadow, edge)


def outline(bounds: tuple[float, float, float, float]) -> Polygon:
    return box(*bounds)
