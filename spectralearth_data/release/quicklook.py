"""A PNG of one location across products: RGB composites, SAR VV (dB), LST (K), HSI mean spectrum."""

from __future__ import annotations

from pathlib import Path

import numpy as np

from ..errors import ReleaseError
from ..masks import INVALID
from . import reader

#: Wavelengths (nm) used for true-colour composites of optical and HSI products.
RGB_NM = (650.0, 560.0, 480.0)


def _decoded(root, sensor: str, row: int, batch: str = ""):
    """(float32 (C, H, W) physical values of every stored band, NaN where there is no valid data;
    (C,) wavelengths in nm, NaN where none) of one patch (row ``row`` of ``batch``)."""
    g = reader.batch_group(root, sensor, batch or None)
    raw = g["data"][row]
    mask = g["mask"][row]
    val = reader.decode_stored(raw, reader.cf_coding(g["data"], sensor))
    val[:, (mask & int(INVALID)) != 0] = np.nan
    wl = g["wavelength"][:] if "wavelength" in g else np.full(raw.shape[0], np.nan)
    return val, wl


def _stretch(img: np.ndarray) -> np.ndarray:
    lo, hi = np.nanpercentile(img, 2), np.nanpercentile(img, 98)
    return np.clip((img - lo) / (hi - lo if hi > lo else 1.0), 0, 1)


def quicklook(store, cell_id: str, out_png) -> Path:
    """Write a PNG with one panel per product present at ``cell_id`` (its best patch by valid
    fraction), plus the mean spectrum of each HSI patch. Returns the PNG path."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    out_png = Path(out_png)
    idx = reader.read_index(store)
    rows = idx[idx["cell_id"] == cell_id].sort_values("valid_fraction", ascending=False).drop_duplicates("sensor")
    if rows.empty:
        raise ReleaseError(f"{store}: no patches for cell {cell_id!r}")
    root = reader.open_group(store)
    hsi = [r for r in rows.itertuples() if root[r.sensor].attrs.get("kind") == "hsi"]
    n = len(rows) + (1 if hsi else 0)
    fig, axes = plt.subplots(1, n, figsize=(3.2 * n, 3.4), squeeze=False)
    for ax, r in zip(axes[0], rows.itertuples()):
        val, wl = _decoded(root, r.sensor, int(r.row), str(r.batch))
        kind = root[r.sensor].attrs.get("kind")
        if kind == "sar":
            ax.imshow(10 * np.log10(np.clip(val[0], 1e-6, None)), cmap="gray")
            title = f"{r.sensor} VV (dB)"
        elif kind == "thermal":
            im = ax.imshow(val[0], cmap="inferno")
            fig.colorbar(im, ax=ax, fraction=0.046, label="K")
            title = f"{r.sensor} (K)"
        else:
            idxs = [int(np.nanargmin(np.abs(wl - w))) for w in RGB_NM]
            ax.imshow(np.dstack([_stretch(val[i]) for i in idxs]))
            title = f"{r.sensor} RGB"
        ax.set_title(f"{title}\n{str(r.datetime)[:10]}", fontsize=8)
        ax.axis("off")
    if hsi:
        ax = axes[0][-1]
        for r in hsi:
            val, wl = _decoded(root, r.sensor, int(r.row), str(r.batch))
            flat = val.reshape(len(val), -1)
            n = np.isfinite(flat).sum(axis=1)
            mean = np.where(n > 0, np.nansum(flat, axis=1) / np.maximum(n, 1), np.nan)  # bad bands: gaps
            ax.plot(wl, mean, label=r.sensor, lw=1)
        ax.set_xlabel("wavelength (nm)", fontsize=8)
        ax.set_ylabel("mean reflectance", fontsize=8)
        ax.legend(fontsize=7)
        ax.set_title("HSI mean spectrum", fontsize=8)
    fig.suptitle(f"{cell_id} ({root.attrs.get('release_id')})", fontsize=9)
    fig.tight_layout()
    out_png.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(out_png, dpi=90)
    plt.close(fig)
    return out_png
