"""Reading a release (DESIGN.md, "The release store"): the one place that opens its Zarr groups,
reads its index parts and decodes its CF-coded arrays, for every reader of a release (the
loader in ``spectralearth_model.data``, :mod:`.validate`, :mod:`.publish`, :mod:`.export`,
:mod:`.quicklook`, the tiling engine's resume and the curation flow).

* the store: :func:`open_group`, :func:`sensor_groups`;
* the index: :func:`iter_parts`, :func:`committed`, :func:`read_index` (every part checked for the
  writer's part metadata), :func:`read_index_columns` and :func:`read_patch_index` (plain Parquet
  reads, for any release in the layout);
* the CF coding of ``<sensor>/data``: :class:`CFCoding` / :func:`cf_coding` (one rule for scale,
  offset and fill value), :class:`ProductLayout` / :func:`product_layout` (what the loader needs);
* decoding: :func:`decode` (usable bands, nodata -> 0, for the model), :func:`decode_stored`
  (every stored band, fill -> NaN, for pictures), :func:`nodata_pixels` and :func:`empty_pixels`;
* :class:`Release` / :func:`open_release`: a release opened for a set of products.

Single patches of a local release are read by :mod:`.shards` (one ``pread`` each).
"""

from __future__ import annotations

import json
import math
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal

import numpy as np

from ..errors import CatalogError, ReleaseError
from ..schema import INDEX_COLUMNS
from .layout import PART_META_KEY, PARTS_DIR

#: Index columns the loader reads (:func:`read_patch_index`).
LOADER_COLUMNS: tuple[str, ...] = ("patch_id", "cell_id", "sensor", "datetime", "row", "scene_id", "anchor_scene_id")


# -- the store ------------------------------------------------------------------------------------


def open_group(store: Path | str, mode: Literal["r", "a"] = "r"):
    """The root group of ``store`` (Zarr v3), read-only or (``"a"``) for the writer and the
    commands that update attributes. Its consolidated metadata is never read: it may be stale
    after a killed run (see :func:`.store.consolidate`)."""
    import zarr

    return zarr.open_group(str(store), mode=mode, zarr_format=3, use_consolidated=False)


def sensor_groups(store: Path | str) -> list[str]:
    """Names of the sensor groups present in ``store`` (folders with a zarr.json)."""
    return sorted(p.name for p in Path(store).iterdir() if p.is_dir() and (p / "zarr.json").exists())


# -- the index ------------------------------------------------------------------------------------


def part_paths(store: Path | str) -> list[Path]:
    """The committed index parts of ``store``, sorted by name (the writer's temporary files have a
    dot name and are never listed)."""
    parts = Path(store) / PARTS_DIR
    return sorted(parts.glob("part-*.parquet")) if parts.is_dir() else []


def iter_parts(store: Path | str) -> Iterator[tuple[Path, dict]]:
    """(path, metadata) of every committed index part; :class:`ReleaseError` for a part without
    the writer's metadata (its shard and the patch ids it attempted)."""
    import pyarrow.parquet as pq

    for p in part_paths(store):
        meta = pq.read_schema(p).metadata or {}
        if PART_META_KEY not in meta:
            raise ReleaseError(f"{p}: index part without SpectralEarth metadata")
        yield p, json.loads(meta[PART_META_KEY])


def committed(store: Path | str) -> tuple[set[str], dict[str, set[int]]]:
    """(patch ids already attempted, committed shard ids per sensor)."""
    done: set[str] = set()
    shards: dict[str, set[int]] = {}
    for _, meta in iter_parts(store):
        done.update(meta["attempted"])
        shards.setdefault(meta["sensor"], set()).add(int(meta["shard"]))
    return done, shards


def read_index(store: Path | str):
    """All index rows of the store as one GeoDataFrame (empty with INDEX_COLUMNS if none); every
    part is checked for the writer's metadata (:func:`iter_parts`)."""
    import geopandas as gpd
    import pandas as pd

    paths = [p for p, _ in iter_parts(store)]
    frames = [gpd.read_parquet(p) for p in paths]
    frames = [f for f in frames if len(f)]
    if not frames:
        return gpd.GeoDataFrame({c: [] for c in INDEX_COLUMNS}, geometry="geometry", crs="EPSG:4326")
    return gpd.GeoDataFrame(pd.concat(frames, ignore_index=True), geometry="geometry", crs="EPSG:4326")


def read_index_columns(store: Path | str, columns: Sequence[str]):
    """``columns`` of every index row as a plain DataFrame (empty if there is no part), in part
    order. Reads only those columns and no part metadata, so it serves any release in the layout."""
    import pandas as pd

    frames = [pd.read_parquet(p, columns=list(columns)) for p in part_paths(store)]
    return pd.concat(frames, ignore_index=True) if frames else pd.DataFrame(columns=list(columns))


def read_patch_index(store: Path | str):
    """The patch index as the loader uses it: :data:`LOADER_COLUMNS`, ``datetime`` as UTC, sorted
    by sensor and row; :class:`ReleaseError` for a release without any index part."""
    import pandas as pd

    if not part_paths(store):
        raise ReleaseError(f"{store}: no {PARTS_DIR}/part-*.parquet; was the release tiled?")
    df = read_index_columns(store, LOADER_COLUMNS)
    df["datetime"] = pd.to_datetime(df["datetime"], utc=True)
    return df.sort_values(["sensor", "row"], kind="stable").reset_index(drop=True)


# -- the CF coding of <sensor>/data ---------------------------------------------------------------


@dataclass(frozen=True)
class CFCoding:
    """How the stored numbers of one ``<sensor>/data`` array decode, per stored channel:
    ``physical = stored * scale + offset``; a stored value equal to ``fill`` holds no data."""

    scale: np.ndarray  # (C,) float32
    offset: np.ndarray  # (C,) float32
    fill: np.ndarray  # (C,) float64, NaN = no fill value


def _attr_vector(attrs: dict[str, Any], key: str, n: int, default: float) -> np.ndarray:
    """A CF attribute as a per-channel vector (CF allows a scalar; we also accept a list of n)."""
    v = attrs.get(key, default)
    if v is None:
        v = default
    arr = np.asarray(v, dtype=np.float64).reshape(-1)
    return np.full(n, arr[0]) if arr.size == 1 else arr


def _catalog_fill(sensor: str) -> float:
    """The catalog's nodata value of ``sensor`` (NaN: none, or a product the catalog lacks)."""
    from ..catalog import load_sensor

    try:
        spec = load_sensor(sensor)
    except CatalogError:
        return math.nan
    fill = next((b.nodata for b in spec.bands if b.nodata is not None), None)
    return math.nan if fill is None else float(fill)


def cf_coding(data, sensor: str) -> CFCoding:
    """The :class:`CFCoding` of ``data`` (the zarr array ``<sensor>/data``) from its attributes.

    The fill value is ``_FillValue``, else ``missing_value`` (how the writer states the fill of a
    float product), else the catalog's nodata value for ``sensor``.
    """
    c = int(data.shape[1])
    attrs = dict(data.attrs)
    key = next((k for k in ("_FillValue", "missing_value") if attrs.get(k) is not None), None)
    fill = _attr_vector(attrs, key, c, math.nan) if key else np.full(c, _catalog_fill(sensor))
    return CFCoding(
        scale=_attr_vector(attrs, "scale_factor", c, 1.0).astype(np.float32),
        offset=_attr_vector(attrs, "add_offset", c, 0.0).astype(np.float32),
        fill=fill,
    )


@dataclass(frozen=True)
class ProductLayout:
    """What the loader needs to know about one product's group in a release.

    ``bands`` selects the usable channels out of the stored ``C``; ``scale``/``offset``/``fill``
    are per selected channel, from the CF attributes (``fill`` NaN where there is none).
    """

    sensor: str
    bands: tuple[int, ...]
    scale: np.ndarray  # (C,) float32
    offset: np.ndarray  # (C,) float32
    fill: np.ndarray  # (C,) float64, NaN = no fill value
    wavelength: np.ndarray  # (C,) float32 nm, 0 for SAR
    fwhm: np.ndarray  # (C,) float32 nm, 0 for SAR
    gsd: float
    size_px: int
    patches_per_shard: int
    n_patches: int

    @property
    def channels(self) -> int:
        return len(self.bands)


def _usable_channels(sensor: str, n_stored: int, names: Sequence[str] | None) -> tuple[int, ...]:
    """Stored channel indices of the catalog's usable bands.

    A release may store all of a product's bands or only the usable ones; band names (a ``band``
    coordinate or the ``band_names`` attribute of ``data``) decide, else the channel count does.
    """
    from ..catalog import load_sensor

    spec = load_sensor(sensor)
    usable = [b.name for b in spec.usable_bands]
    if names is not None:
        pos = {n: i for i, n in enumerate(names)}
        missing = [n for n in usable if n not in pos]
        if missing:
            raise ReleaseError(f"{sensor}/band lacks usable bands {missing[:5]} of the catalog")
        return tuple(pos[n] for n in usable)
    if n_stored == len(usable):
        return tuple(range(n_stored))
    if n_stored == len(spec.bands):
        return tuple(i for i, b in enumerate(spec.bands) if b.usable)
    raise ReleaseError(
        f"{sensor}/data has {n_stored} channels; the catalog has {len(spec.bands)} bands "
        f"({len(usable)} usable) and there is no band coordinate to match them"
    )


def _read_names(group, key: str) -> list[str] | None:
    if key not in group:
        return None
    return [str(v) for v in np.asarray(group[key][...]).tolist()]


def product_layout(root, sensor: str) -> ProductLayout:
    """The :class:`ProductLayout` of ``sensor`` in the opened release ``root``."""
    from ..catalog import load_sensor

    grp = root[sensor]
    data = grp["data"]
    n, c, h, _ = data.shape
    names = _read_names(grp, "band") or dict(data.attrs).get("band_names")
    bands = _usable_channels(sensor, c, names)
    sel = np.asarray(bands)
    coding = cf_coding(data, sensor)
    coords = {k: np.asarray(grp[k][...], dtype=np.float32) if k in grp else np.zeros(c, np.float32)
              for k in ("wavelength", "fwhm")}
    shards = getattr(data, "shards", None) or data.chunks
    return ProductLayout(
        sensor=sensor,
        bands=bands,
        scale=coding.scale[sel],
        offset=coding.offset[sel],
        fill=coding.fill[sel],
        wavelength=np.nan_to_num(coords["wavelength"][sel]),
        fwhm=np.nan_to_num(coords["fwhm"][sel]),
        gsd=float(load_sensor(sensor).gsd_m),
        size_px=int(h),
        patches_per_shard=int(shards[0]),
        n_patches=int(n),
    )


# -- decoding -------------------------------------------------------------------------------------


def _native_fill(fill: np.ndarray, dtype: np.dtype) -> tuple[np.ndarray, np.ndarray]:
    """(has_fill, fill) per channel, ``fill`` in the array's own dtype where that is exact: an
    integer array compared with a float64 fill would be upcast pixel by pixel, and a fill value
    the dtype cannot hold never occurs in it."""
    has_fill = ~np.isnan(fill)
    if not np.issubdtype(dtype, np.floating) and np.all(np.mod(fill[has_fill], 1) == 0):
        info = np.iinfo(dtype)
        has_fill &= (fill >= info.min) & (fill <= info.max)
        fill = np.where(has_fill, fill, 0).astype(dtype)
    return has_fill, fill


def nodata_pixels(raw: np.ndarray, fill: np.ndarray, channels: Sequence[int] | None = None) -> np.ndarray:
    """(H, W) True where any of ``channels`` of ``raw`` (C, H, W) (default: all) holds its fill
    value, or NaN in a floating array. ``fill[i]`` is the fill value of ``channels[i]``."""
    channels = range(raw.shape[0]) if channels is None else channels
    nodata = np.zeros(raw.shape[1:], dtype=bool)
    has_fill, fill = _native_fill(fill, raw.dtype)
    floating = np.issubdtype(raw.dtype, np.floating)
    for i, c in enumerate(channels):
        if has_fill[i]:
            np.logical_or(nodata, raw[c] == fill[i], out=nodata)
        if floating:
            np.logical_or(nodata, np.isnan(raw[c]), out=nodata)
    return nodata


def empty_pixels(raw: np.ndarray, fill: np.ndarray) -> np.ndarray:
    """(H, W) True where every channel of ``raw`` (C, H, W) that has a fill value (``fill``, per
    channel) holds it: a pixel with no data at all. All False when no channel has one."""
    has_fill, fill = _native_fill(fill, raw.dtype)
    if not has_fill.any():
        return np.zeros(raw.shape[1:], dtype=bool)
    if not has_fill.all():
        raw, fill = raw[has_fill], fill[has_fill]
    return np.all(raw == fill[:, None, None], axis=0)


def decode(raw: np.ndarray, layout: ProductLayout) -> tuple[np.ndarray, np.ndarray]:
    """Native (C, H, W) -> float32 physical units of the usable bands and a (H, W) nodata mask.

    ``raw`` holds either the usable bands or every stored band (then ``layout.bands`` selects).
    physical = raw * scale_factor + add_offset (CF); a pixel whose value equals ``_FillValue`` in
    any band is nodata: every band there becomes 0.

    Written for speed (it runs for every patch the loader reads): one casting copy into the
    output, then in-place scale and offset over the whole cube, fill values compared in the native
    dtype, and no boolean-index assignment unless there is nodata (~2.5x the straightforward
    ``astype``/``*``/``+``).
    """
    full = raw.shape[0] == layout.channels
    bands = range(layout.channels) if full else layout.bands
    out = np.empty((layout.channels, *raw.shape[1:]), dtype=np.float32)
    if full:
        np.copyto(out, raw, casting="unsafe")
    else:
        for i, c in enumerate(bands):
            out[i] = raw[c]
    nodata = nodata_pixels(raw, layout.fill, bands)
    scale, offset = layout.scale, layout.offset
    if np.all(scale == scale[0]):
        out *= scale[0]
    else:
        out *= scale[:, None, None]
    if np.any(offset != 0):
        out += offset[:, None, None]
    if nodata.any():
        out[:, nodata] = 0.0
    return out, nodata


def decode_stored(raw: np.ndarray, coding: CFCoding) -> np.ndarray:
    """Native (C, H, W) -> float32 physical units of every stored band, NaN wherever a band holds
    its fill value (band by band: a band the product does not measure there is a gap, the others
    keep their values)."""
    out = raw.astype(np.float32)
    out *= coding.scale[:, None, None]
    out += coding.offset[:, None, None]
    has_fill, fill = _native_fill(coding.fill, raw.dtype)
    if has_fill.any():
        out[(raw == fill[:, None, None]) & has_fill[:, None, None]] = np.nan
    return out


# -- a release opened for the loader --------------------------------------------------------------


@dataclass(frozen=True)
class Release:
    """An opened release: root attributes, the patch index and each product's layout."""

    path: Path
    attrs: dict[str, Any]
    index: Any  # pandas.DataFrame (read_patch_index)
    products: dict[str, ProductLayout]

    @property
    def release_id(self) -> str:
        return str(self.attrs.get("release_id") or self.attrs.get("release") or self.path.stem)


def open_release(store: Path | str, sensors: Sequence[str]) -> Release:
    """Open ``store`` for the products ``sensors``; a clear :class:`ReleaseError` if it cannot serve them."""
    store = Path(store)
    if not store.exists():
        raise ReleaseError(f"release {store} does not exist")
    try:
        root = open_group(store)
    except Exception as e:  # noqa: BLE001 -- zarr raises several types for a folder that is not a group
        raise ReleaseError(f"release {store} is not a Zarr group ({type(e).__name__}: {e})") from None
    index = read_patch_index(store)
    in_index = set(index["sensor"].unique())
    lacking = [s for s in sensors if s not in root or s not in in_index]
    if lacking:
        have = ", ".join(sorted(in_index)) or "none"
        raise ReleaseError(
            f"release {store} lacks product(s) {', '.join(lacking)} that the model needs (it has: {have})"
        )
    index = index[index["sensor"].isin(list(sensors))].reset_index(drop=True)
    products = {s: product_layout(root, s) for s in sensors}
    return Release(path=store, attrs=dict(root.attrs), index=index, products=products)
