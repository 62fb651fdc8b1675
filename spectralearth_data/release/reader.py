"""Reading a release (DESIGN.md, "The release store"): the one place that opens its Zarr groups,
reads its index parts and decodes its CF-coded arrays, for every reader of a release (the
loader in ``spectralearth_model.data``, :mod:`.validate`, :mod:`.publish`, :mod:`.export`,
:mod:`.quicklook`, the tiling engine's resume and the curation flow). Layout: :mod:`.store`.

Final signatures (layout 2; ``store`` is always ``StoreLike = Path | str | Location``: a local
folder, an ``s3://``/``gs://``/``az://`` URL or a :class:`.storage.Location`)::

    location(store) -> Location                             # opened for reading (no folder created)
    open_group(store, mode="r"|"a") -> zarr.Group           # the root group, via Location.zarr_store()
    sensor_groups(store) -> list[str]                       # products with a <sensor>/zarr.json
    batches(store, sensor) -> list[str]                     # batch ids with arrays under <sensor>/
    array_key(sensor, batch, var="data") -> str             # "<sensor>/<batch>/<var>" ("<sensor>/<var>" for batch "")
    part_paths(store) -> list[str]                          # commit-log KEYS (relative to the root), sorted:
                                                            #   "index/patches/<batch>/part-<sensor>-<shard:06d>.parquet"
    part_batch(key) -> str                                  # the batch of a part key ("" for a layout-1 part)
    iter_parts(store, parts=None) -> Iterator[tuple[str, dict]]   # (key, meta); meta = {"sensor", "shard",
                                                            #   "attempted", "batch"}; parts: only those keys
    read_part(store, key, columns=None) -> pyarrow.Table    # one committed part
    committed(store, batch=None) -> (set[str], dict[str, set[int]])  # (patch ids attempted RELEASE-WIDE,
                                                            #   committed shards per sensor of ``batch``; None: all batches)
    read_index(store, parts=None) -> GeoDataFrame           # INDEX_COLUMNS (batch, epsg, transform included)
    read_index_columns(store, columns, parts=None) -> DataFrame
    read_patch_index(store, parts=None) -> DataFrame        # LOADER_COLUMNS (+ "batch"), sorted by sensor, batch, row
    product_layout(root, sensor, batch=None) -> ProductLayout   # batch None: the first batch (all share bands/coding)
    open_patch_arrays(store, sensor, batch) -> (data, mask) # zarr arrays of one batch (read-only)
    decode(raw, layout) / decode_stored(raw, coding)        # unchanged
    open_release(store, sensors, parts=None, direct_reads=True) -> Release
        # Release.index: read_patch_index + "batch_row"; its "row" is the LOADER'S POSITION: a
        # product's batches laid end to end (shards kept whole), Release.locate(sensor, row) ->
        # (batch, batch_row); Release.read_raw([(sensor, row) | (sensor, batch, batch_row), ...])
    shards.open_chunk_reader(folder) -> ChunkReader | None  # local folders only (the loader's pread path)

A row of the index lives at ``<sensor>/<batch>/data[row]`` (``row`` is local to its batch). Only
rows of committed parts are meaningful: padded rows and shards of a writer still at work are in no
part, so every reader here sees exactly the committed patches. Layout-1 releases (parts directly
in ``index/patches/``, arrays at ``<sensor>/data``) read as batch ``""``.

* the CF coding of ``<sensor>/data``: :class:`CFCoding` / :func:`cf_coding` (one rule for scale,
  offset and fill value), :class:`ProductLayout` / :func:`product_layout` (what the loader needs);
* decoding: :func:`decode` (usable bands, nodata -> 0, for the model), :func:`decode_stored`
  (every stored band, fill -> NaN, for pictures), :func:`nodata_pixels` and :func:`empty_pixels`;
* :class:`Release` / :func:`open_release`: a release opened for a set of products.

Single patches of a local release are read by :mod:`.shards` (one ``pread`` each).
"""

from __future__ import annotations

import io
import json
import math
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal

import numpy as np

from ..errors import CatalogError, ReleaseError
from ..schema import INDEX_COLUMNS
from .layout import PART_META_KEY, PARTS_DIR
from .storage import Location, open_location

#: A release given as a local path, a URL or an opened :class:`.storage.Location`.
StoreLike = Path | str | Location

#: Index columns the loader reads (:func:`read_patch_index`).
LOADER_COLUMNS: tuple[str, ...] = ("patch_id", "cell_id", "sensor", "datetime", "row", "scene_id", "anchor_scene_id")

#: Top-level names of a release that are never sensor groups.
NOT_SENSORS = ("index", "versions", "stac")


# -- the store ------------------------------------------------------------------------------------


def location(store: StoreLike) -> Location:
    """``store`` as a :class:`Location` for reading (a missing local folder is an error, not created)."""
    return open_location(store, create=False)


def open_group(store: StoreLike, mode: Literal["r", "a"] = "r"):
    """The root group of ``store`` (Zarr v3), read-only or (``"a"``) for the writer. Its
    consolidated metadata is never read (a writer never updates it)."""
    import zarr

    loc = open_location(store, create=mode != "r")
    return zarr.open_group(store=loc.zarr_store(read_only=mode == "r"), mode=mode, zarr_format=3,
                           use_consolidated=False)


def _json_object(loc: Location, key: str) -> dict | None:
    try:
        return json.loads(loc.get(key))
    except FileNotFoundError:
        return None
    except ValueError:
        return None


def sensor_groups(store: StoreLike) -> list[str]:
    """Names of the sensor groups present in ``store`` (top-level groups with a zarr.json)."""
    loc = location(store)
    out = []
    for name in loc.list_dirs(""):
        if name in NOT_SENSORS:
            continue
        meta = _json_object(loc, f"{name}/zarr.json")
        if meta is not None and meta.get("node_type") == "group":
            out.append(name)
    return sorted(out)


def batches(store: StoreLike, sensor: str) -> list[str]:
    """Batch ids of ``sensor`` with arrays (``<sensor>/<batch>/data``); ``[""]`` for a layout-1
    group (arrays directly in the sensor group)."""
    loc = location(store)
    subs = loc.list_dirs(f"{sensor}/")
    if "data" in subs and loc.exists(f"{sensor}/data/zarr.json"):
        return [""]
    return sorted(b for b in subs if loc.exists(f"{sensor}/{b}/data/zarr.json"))


def array_key(sensor: str, batch: str, var: str = "data") -> str:
    """Key of the array ``var`` of one batch of ``sensor`` (layout 1: batch ``""``)."""
    return f"{sensor}/{batch}/{var}" if batch else f"{sensor}/{var}"


# -- the index ------------------------------------------------------------------------------------


def part_batch(key: str) -> str:
    """The batch of a commit-log key: ``index/patches/<batch>/part-...`` (``""``: layout 1)."""
    rest = key[len(PARTS_DIR) + 1:] if key.startswith(PARTS_DIR + "/") else key
    return rest.rsplit("/", 1)[0] if "/" in rest else ""


class PartKey(str):
    """A commit-log key (``index/patches/<batch>/part-<sensor>-<shard>.parquet``); ``.name`` is its
    file name, as for the :class:`Path` that layout-1 readers got."""

    @property
    def name(self) -> str:
        return self.rsplit("/", 1)[-1]

    @property
    def batch(self) -> str:
        return part_batch(self)


def part_paths(store: StoreLike) -> list[str]:
    """Keys (:class:`PartKey`, relative to the release root) of every committed index part,
    sorted. A part is one object written once after its shard's data, so a listed part is a
    committed one (a local writer's temporary files have a dot name and are never listed)."""
    loc = location(store)
    keys = []
    for o in loc.list(PARTS_DIR + "/"):
        name = o.key.rsplit("/", 1)[-1]
        if name.startswith("part-") and name.endswith(".parquet"):
            keys.append(PartKey(o.key))
    return sorted(keys)


def read_part(store: StoreLike, key: str, columns: Sequence[str] | None = None):
    """One index part as a :class:`pyarrow.Table` (``columns``: only those)."""
    import pyarrow.parquet as pq

    loc = location(store)
    cols = list(columns) if columns is not None else None
    if loc.local is not None:
        return pq.read_table(loc.local / key, columns=cols)
    return pq.read_table(io.BytesIO(loc.get(key)), columns=cols)


def _part_meta(loc: Location, key: str) -> dict:
    meta = _parquet_file(loc, key).schema_arrow.metadata or {}
    if PART_META_KEY not in meta:
        raise ReleaseError(f"{loc.child(key)}: index part without SpectralEarth metadata")
    out = json.loads(meta[PART_META_KEY])
    out.setdefault("batch", part_batch(key))
    return out


def iter_parts(store: StoreLike, parts: Sequence[str] | None = None) -> Iterator[tuple[str, dict]]:
    """(key, metadata) of every committed index part (or of ``parts``); :class:`ReleaseError` for a
    part without the writer's metadata (its sensor, shard, batch and the patch ids it attempted)."""
    loc = location(store)
    for key in (part_paths(loc) if parts is None else [PartKey(k) for k in parts]):
        yield key, _part_meta(loc, key)


def committed(store: StoreLike, batch: str | None = None) -> tuple[set[str], dict[str, set[int]]]:
    """(patch ids already attempted in any batch of the release, committed shard ids per sensor
    of ``batch``; every batch's shards merged when ``batch`` is None)."""
    done: set[str] = set()
    shards: dict[str, set[int]] = {}
    for _, meta in iter_parts(store):
        done.update(meta["attempted"])
        if batch is None or meta["batch"] == batch:
            shards.setdefault(meta["sensor"], set()).add(int(meta["shard"]))
    return done, shards


def _with_layout_columns(df, key: str):
    """Columns a layout-1 part lacks (``batch`` from its key; ``epsg``/``transform`` unknown)."""
    if "batch" not in df.columns:
        df["batch"] = part_batch(key)
    return df


def read_index(store: StoreLike, parts: Sequence[str] | None = None):
    """All index rows of the committed parts (or of ``parts``) as one GeoDataFrame (empty with
    INDEX_COLUMNS if none); every part is checked for the writer's metadata (:func:`iter_parts`)."""
    import geopandas as gpd
    import pandas as pd
    from geopandas.io.arrow import _arrow_to_geopandas

    loc = location(store)
    frames = []
    for key, _ in iter_parts(loc, parts):
        df = _arrow_to_geopandas(read_part(loc, key))
        if len(df):
            frames.append(_with_layout_columns(df, key))
    if not frames:
        return gpd.GeoDataFrame({c: [] for c in INDEX_COLUMNS}, geometry="geometry", crs="EPSG:4326")
    return gpd.GeoDataFrame(pd.concat(frames, ignore_index=True), geometry="geometry", crs="EPSG:4326")


def _parquet_file(loc: Location, key: str):
    import pyarrow.parquet as pq

    return pq.ParquetFile(loc.local / key if loc.local is not None else io.BytesIO(loc.get(key)))


def read_index_columns(store: StoreLike, columns: Sequence[str], parts: Sequence[str] | None = None):
    """``columns`` of every index row (of ``parts``) as a plain DataFrame (empty if there is no
    part), in part order. Reads only those columns and no part metadata. ``batch`` is filled from
    the part's key for layout-1 parts."""
    import pandas as pd

    loc = location(store)
    cols = list(columns)
    frames = []
    for key in (part_paths(loc) if parts is None else list(parts)):
        f = _parquet_file(loc, key)
        want = [c for c in cols if c in f.schema_arrow.names]
        df = f.read(columns=want).to_pandas()
        for c in cols:
            if c not in df.columns:
                df[c] = part_batch(key) if c == "batch" else None
        frames.append(df[cols])
    return pd.concat(frames, ignore_index=True) if frames else pd.DataFrame(columns=cols)


def read_patch_index(store: StoreLike, parts: Sequence[str] | None = None):
    """The patch index as the loader uses it: :data:`LOADER_COLUMNS` + ``batch``, ``datetime`` as
    UTC, sorted by sensor, batch and row; :class:`ReleaseError` for a release without any part."""
    import pandas as pd

    loc = location(store)
    keys = part_paths(loc) if parts is None else list(parts)
    if not keys:
        raise ReleaseError(f"{loc.url}: no {PARTS_DIR}/part-*.parquet in any batch; was the release tiled?")
    df = read_index_columns(loc, (*LOADER_COLUMNS, "batch"), keys)
    df["datetime"] = pd.to_datetime(df["datetime"], utc=True)
    return df.sort_values(["sensor", "batch", "row"], kind="stable").reset_index(drop=True)


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


def batch_group(root, sensor: str, batch: str | None = None):
    """The group holding the arrays of one batch of ``sensor`` (``None``: its first batch;
    layout 1: the sensor group itself)."""
    grp = root[sensor]
    if "data" in grp.array_keys():
        return grp
    if batch is None:
        names = sorted(n for n in grp.group_keys() if "data" in grp[n].array_keys())
        if not names:
            raise ReleaseError(f"{sensor}: sensor group without any batch of arrays")
        batch = names[0]
    return grp[batch]


def open_patch_arrays(store: StoreLike, sensor: str, batch: str):
    """(data, mask) zarr arrays (read-only) of one batch of ``sensor``."""
    import zarr

    zs = location(store).zarr_store(read_only=True)
    return tuple(zarr.open_array(store=zs, path=array_key(sensor, batch, v), mode="r", zarr_format=3)
                 for v in ("data", "mask"))


def product_layout(root, sensor: str, batch: str | None = None) -> ProductLayout:
    """The :class:`ProductLayout` of ``sensor`` in the opened release ``root`` (bands, coding and
    shard size of ``batch``, by default its first batch: every batch of a product shares them;
    ``n_patches``: that batch's array length)."""
    from ..catalog import load_sensor

    grp = batch_group(root, sensor, batch)
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


@dataclass
class Release:
    """An opened release: root attributes, the patch index and each product's layout.

    ``path`` is the local folder (a :class:`Path`) or the URL of a remote release; ``location`` is
    where it is. :meth:`read_raw` reads stored patches by ``(sensor, batch, row)``: one ``pread``
    each on a local folder in the writer's layout (:mod:`.shards`), through zarr otherwise.
    """

    path: Any  # Path (local) or str (URL)
    attrs: dict[str, Any]
    index: Any  # pandas.DataFrame (read_patch_index)
    products: dict[str, ProductLayout]
    location: Location | None = None
    direct_reads: bool = True
    #: per product: (start positions, batch ids) of its batches in the loader's positions
    offsets: dict[str, tuple[np.ndarray, list[str]]] = field(default_factory=dict)
    _opened: dict = field(default_factory=dict, repr=False, compare=False)
    _pid: int | None = field(default=None, repr=False, compare=False)

    @property
    def release_id(self) -> str:
        return str(self.attrs.get("release_id") or self.attrs.get("release") or Path(str(self.path)).stem)

    def __getstate__(self) -> dict[str, Any]:
        state = dict(self.__dict__)
        state["_opened"], state["_pid"] = {}, None  # never ship open handles to another process
        return state

    def _cache(self) -> dict:
        import os

        if self._pid != os.getpid():
            self._opened, self._pid = {}, os.getpid()
        return self._opened

    def chunk_readers(self, sensor: str, batch: str):
        """pread readers of one batch's (data, mask), or None (remote, reads disabled, another layout)."""
        from .shards import open_chunk_reader

        cache = self._cache()
        key = ("readers", sensor, batch)
        if key not in cache:
            pair = (None, None)
            loc = self.location or location(self.path)
            if self.direct_reads and loc.local is not None:
                pair = tuple(open_chunk_reader(loc.local / array_key(sensor, batch, v)) for v in ("data", "mask"))  # type: ignore[assignment]
            cache[key] = pair if pair[0] is not None and pair[1] is not None else None
        return cache[key]

    def async_arrays(self, sensor: str, batch: str):
        """(data, mask) of one batch as zarr ``AsyncArray``s, opened once per process."""
        cache = self._cache()
        key = ("zarr", sensor, batch)
        if key not in cache:
            import asyncio

            import zarr.api.asynchronous as za
            from zarr.core.sync import sync

            zs = (self.location or location(self.path)).zarr_store(read_only=True)

            async def open_pair():
                return await asyncio.gather(*[za.open_array(store=zs, path=array_key(sensor, batch, v), mode="r")
                                              for v in ("data", "mask")])

            cache[key] = tuple(sync(open_pair()))
        return cache[key]

    def locate(self, sensor: str, row: int) -> tuple[str, int]:
        """(batch, row in the batch) of the loader's per-product position ``row`` (:attr:`index`)."""
        starts, names = self.offsets[sensor]
        i = int(np.searchsorted(starts, row, side="right")) - 1
        if i < 0:
            raise IndexError(f"{sensor}: position {row} is before the first batch")
        return names[i], int(row - starts[i])

    def read_raw(self, patches: Sequence[tuple]) -> list[tuple[np.ndarray, np.ndarray]]:
        """Stored (data, uint8 mask) of patches given as ``(sensor, row)`` (the loader's position,
        :attr:`index` ``row``) or ``(sensor, batch, batch_row)``: local ones with one ``pread``
        each, the rest gathered through zarr's event loop in one hand-off."""
        patches = [p if len(p) == 3 else (p[0], *self.locate(p[0], int(p[1]))) for p in patches]
        out: list[Any] = [None] * len(patches)
        via_zarr = []
        for n, (sensor, batch, row) in enumerate(patches):
            readers = self.chunk_readers(sensor, batch)
            if readers is None:
                via_zarr.append(n)
            else:
                out[n] = (readers[0].read(int(row)), readers[1].read(int(row)).astype(np.uint8, copy=False))
        if via_zarr:
            import asyncio

            from zarr.core.sync import sync

            arrays = [self.async_arrays(patches[n][0], patches[n][1]) for n in via_zarr]

            async def gather():
                return await asyncio.gather(*[a.getitem(int(patches[n][2])) for pair, n in zip(arrays, via_zarr)
                                              for a in pair])

            got = sync(gather())
            for i, n in enumerate(via_zarr):
                out[n] = (np.asarray(got[2 * i]), np.asarray(got[2 * i + 1], dtype=np.uint8))
        return out


def open_release(store: StoreLike, sensors: Sequence[str], parts: Sequence[str] | None = None,
                 direct_reads: bool = True) -> Release:
    """Open ``store`` (a folder or URL) for the products ``sensors`` (reading the committed parts,
    or ``parts``); a clear :class:`ReleaseError` if it cannot serve them."""
    try:
        loc = location(store)
    except ReleaseError:
        raise ReleaseError(f"release {store} does not exist") from None
    try:
        root = open_group(loc)
    except Exception as e:  # noqa: BLE001 -- zarr raises several types for a folder that is not a group
        raise ReleaseError(f"release {loc.url} is not a Zarr group ({type(e).__name__}: {e})") from None
    index = read_patch_index(loc, parts)
    in_index = set(index["sensor"].unique())
    lacking = [s for s in sensors if s not in root or s not in in_index]
    if lacking:
        have = ", ".join(sorted(in_index)) or "none"
        raise ReleaseError(
            f"release {loc.url} lacks product(s) {', '.join(lacking)} that the model needs (it has: {have})"
        )
    index = index[index["sensor"].isin(list(sensors))].reset_index(drop=True)
    products = {s: product_layout(root, s) for s in sensors}
    index, offsets = _positions(index, products)
    path = loc.local if loc.local is not None else loc.url
    return Release(path=path, attrs=dict(root.attrs), index=index, products=products, location=loc,
                   direct_reads=direct_reads, offsets=offsets)


def _positions(index, products: dict[str, ProductLayout]):
    """The loader's view of a product's batches as one run of positions: each batch (in id order)
    starts where the previous one's committed shards end, so ``row`` (the position) of
    :attr:`Release.index` keeps shards whole (``row // patches_per_shard`` is one shard of one
    batch) and ``batch_row`` is the row within the batch's arrays."""
    index = index.rename(columns={"row": "batch_row"})
    pos = np.zeros(len(index), dtype=np.int64)
    offsets: dict[str, tuple[np.ndarray, list[str]]] = {}
    for sensor, grp in index.groupby("sensor", sort=True):
        k = products[sensor].patches_per_shard if sensor in products else 1
        starts, names, start = [], [], 0
        for batch, g in grp.groupby("batch", sort=True):
            starts.append(start)
            names.append(str(batch))
            pos[g.index.to_numpy()] = start + g["batch_row"].to_numpy()
            start += (int(g["batch_row"].max()) // k + 1) * k
        offsets[str(sensor)] = (np.asarray(starts, dtype=np.int64), names)
    index.insert(list(index.columns).index("batch_row"), "row", pos)
    return index, offsets
