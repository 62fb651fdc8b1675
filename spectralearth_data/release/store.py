"""The release writer (DESIGN.md, "The release store"): Zarr v3 groups + GeoParquet commit log,
on a local folder or an object store (:mod:`.storage`), written by many writers at once.

Layout 2 (keys relative to the release root; every object is written once unless noted)::

    zarr.json                       root group; attrs written ONCE (conditional create): release_id,
                                    cell_m, created, pipeline_version, code_version, layout=2,
                                    synthesized, conventions. Never updated.
    <sensor>/zarr.json              sensor group, created once (the loser of a creation race reads
                                    and checks it): sensor, kind, gsd_m, patch_px, title, licence
                                    {id, redistributable, attribution}. Never updated.
    <sensor>/<batch>/zarr.json      the batch's group (attrs: batch) - owned by one writer
    <sensor>/<batch>/data   (N, C, H, W)  native dtype, CF scale_factor/add_offset/_FillValue
                                    (missing_value for float products); grid_mapping-free: each
                                    patch's CRS and transform are index columns
    <sensor>/<batch>/mask   (N, H, W)     uint8 MaskFlag bits (fill 1 = nodata)
    <sensor>/<batch>/wavelength, fwhm (C,) nm (NaN for SAR)
                                    sharded per :mod:`.layout`; only the batch owner creates,
                                    resizes (its array zarr.json) and writes them
    index/batches/<batch>.json      batch record, written once: partition, plan_digest, tile config
                                    + config_id, pipeline_version, created
    index/leases/<batch>.json       writer lease (conditional create, heartbeat rewrites by its
                                    holder, deleted at the end; locally also a ``.lock`` flock file)
    index/patches/<batch>/part-<sensor>-<shard:06d>.parquet
                                    THE COMMIT LOG: one object per committed shard (exclusive put)
                                    after the shard's data; rows = INDEX_COLUMNS (``batch``,
                                    ``epsg``, ``transform`` included); key-value metadata
                                    ``spectralearth:part`` = {sensor, shard, batch, attempted}

A batch is what one writer writes for one (partition, plan): ``<partition>-<plan_digest[:10]>``
(:func:`.layout.batch_id`). Writers of different batches share no object they write (the root and
sensor groups are create-only), so partitions of the grid tile into one release concurrently
without a global lock; a second writer of the same batch is refused by its lease.

Commit protocol. One task writes one shard (``patches_per_shard`` rows) of one sensor of its batch
(one object per shard and array on an object store), then puts its index part with a conditional
create. The part is the "done" marker: rows are meaningful only once their part exists, so the
index never points at torn data, and readers (:mod:`.reader`) trust only committed parts. Padded
rows (the rest of a shard, shard slots of a killed task) are in no part and invisible to every
reader of the index. A rerun reads the parts of every batch (:func:`.reader.committed`), skips
every patch already attempted anywhere in the release (kept or dropped: the part's metadata lists
both), and hands its batch's shard slots without a part to new tasks, which rewrite those shards
whole. Shards with a part are never written again.
"""

from __future__ import annotations

import datetime as dt
import functools
import hashlib
import io
import json
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pyarrow.parquet as pq

from ..catalog import BandSpec, SensorSpec
from ..errors import ReleaseError
from ..masks import MaskFlag
from ..schema import INDEX_COLUMNS, LOCATION_COLUMNS
from .layout import (
    LAYOUT_VERSION,
    PART_META_KEY,
    PARTS_DIR,  # noqa: F401 - re-exported for the commands on a store
    batch_record_key,
    part_key,
    part_name,  # noqa: F401 - re-exported
    patch_array_spec,
)
from .storage import Location, ObjectExists, open_location

#: Version of the code that writes releases (the tiling engine and this writer), written into
#: every index row, the store attributes and the manifest. Bump it whenever the bytes written for
#: the same inputs change.
PIPELINE_VERSION = "spectralearth-engine/0.3.0"  # 0.3: layout 2 (batches, commit log with batch/epsg/transform)

@dataclass(frozen=True)
class GroupLayout:
    """Shape facts of one sensor group: bands, patch size, shard size and dtype."""

    sensor: str
    n_bands: int
    patch_px: int
    patches_per_shard: int
    dtype: str
    fill: float


def patch_sha256(data: np.ndarray) -> str:
    """The ``sha256`` of the index: of a patch's C-order bytes (hashed in place, no copy for a
    contiguous patch)."""
    return hashlib.sha256(memoryview(np.ascontiguousarray(data)).cast("B")).hexdigest()  # type: ignore[arg-type]


def _now() -> str:
    return dt.datetime.now(dt.UTC).isoformat(timespec="seconds")


def open_root(store, cell_m: int, release_id: str | None = None, create: bool = True,
              synthesized: bool = False):
    """Open (or create, with a conditional create) the release's root group, checking its
    ``cell_m``. Its attributes are written once, at creation, and never updated."""
    from .reader import open_group

    loc = open_location(store, create=create)
    meta = _read_json(loc, "zarr.json")
    if meta is None:
        if not create:
            raise ReleaseError(f"{loc.url}: not a release store (no zarr.json)")
        if loc.local is not None and any(not _being_created(p.name) for p in loc.local.iterdir()):
            raise ReleaseError(f"{loc.url}: folder exists and is not a release store; choose another --store")
        attrs = {
            "release_id": release_id or Path(loc.url.rstrip("/")).name.removesuffix(".zarr") or "release",
            "cell_m": int(cell_m),
            "created": _now(),
            "pipeline_version": PIPELINE_VERSION,
            "code_version": _code_version(),
            "layout": LAYOUT_VERSION,
            "synthesized": bool(synthesized),
            "conventions": "CF-1.10; layout 2 per SpectralEarth release/store.py (sensor/batch groups, "
                           "index/patches commit log)",
        }
        if synthesized:
            attrs["note"] = "SYNTHESIZED: tiled from synthesized scenes, not real acquisitions"
        body = {"zarr_format": 3, "node_type": "group", "attributes": attrs}
        try:
            loc.put("zarr.json", json.dumps(body, indent=2).encode(), exclusive=True)
        except ObjectExists:
            meta = _read_json(loc, "zarr.json")  # another writer created it first: check it below
    if meta is not None:
        if (meta.get("attributes") or {}).get("layout") != LAYOUT_VERSION:
            raise ReleaseError(f"{loc.url}: a layout-1 release (one writer, arrays at <sensor>/data); tile into a "
                               "new release (layout 2 writes <sensor>/<batch>/ groups)")
        have = (meta.get("attributes") or {}).get("cell_m")
        if have is not None and int(have) != int(cell_m):
            raise ReleaseError(f"{loc.url}: store has cell_m={have} but the plan has cell_m={cell_m}")
    return open_group(loc, mode="a")


def _being_created(name: str) -> bool:
    """Whether a folder entry is what a writer creating the release leaves while it does so: hidden
    files, obstore's staging copy of ``zarr.json`` (``zarr.json#<n>``, linked into place by the
    conditional create), the ``index`` folder. A second writer starting at the same moment must
    take such a folder for a release being created, not refuse it as a foreign folder."""
    return name.startswith(".") or name.startswith("zarr.json") or name == "index"


def _read_json(loc: Location, key: str) -> dict | None:
    try:
        return json.loads(loc.get(key))
    except FileNotFoundError:
        return None
    except ValueError as e:
        raise ReleaseError(f"{loc.child(key)}: not JSON ({e})") from None


def ensure_sensor_group(store, spec: SensorSpec, patch_px: int) -> None:
    """Create ``<sensor>/zarr.json`` once (conditional create); a writer that finds it created
    (by itself earlier or by another writer) checks that it describes the same product."""
    loc = open_location(store)
    key = f"{spec.name}/zarr.json"
    attrs = {"sensor": spec.name, "kind": spec.kind, "gsd_m": spec.gsd_m, "patch_px": int(patch_px),
             "title": spec.title,
             "licence": {"id": spec.licence.id, "redistributable": spec.licence.redistributable,
                         "attribution": spec.licence.attribution}}
    meta = _read_json(loc, key)
    if meta is None:
        try:
            loc.put(key, json.dumps({"zarr_format": 3, "node_type": "group", "attributes": attrs}, indent=2).encode(),
                    exclusive=True)
            return
        except ObjectExists:
            meta = _read_json(loc, key)
    have = (meta or {}).get("attributes") or {}
    for k in ("kind", "patch_px"):
        if k in have and have[k] != attrs[k]:
            raise ReleaseError(f"{loc.child(key)}: sensor group has {k}={have[k]!r}, this run writes {k}={attrs[k]!r}")


def _code_version() -> str:
    from importlib.metadata import PackageNotFoundError, version

    try:
        return version("spectralearth")
    except PackageNotFoundError:  # running from a checkout that is not installed
        return "unknown"


def cf_attrs(spec: SensorSpec, bands: tuple[BandSpec, ...]) -> dict:
    """CF attributes of ``<sensor>/data``: decode with ``value = dn * scale_factor + add_offset``."""
    b0 = bands[0]
    attrs = {
        "long_name": spec.title,
        "units": b0.unit,
        "scale_factor": b0.scale,
        "add_offset": b0.offset,
        "band_names": [b.name for b in bands],
        "valid_range": [min(b.valid_range[0] for b in bands), max(b.valid_range[1] for b in bands)],
        "gsd_m": spec.gsd_m,
        "licence": spec.licence.id,
        "redistributable": spec.licence.redistributable,
    }
    if b0.nodata is not None:
        # xarray's zarr-v3 backend reads a float ``_FillValue`` attribute only in its own base64
        # encoding (a plain number makes open_zarr fail), so float products state the fill value
        # as CF ``missing_value``, which plain xarray masks too; the array's own zarr
        # ``fill_value`` is the same number for any reader.
        key = "missing_value" if np.dtype(b0.dtype).kind == "f" else "_FillValue"
        attrs[key] = b0.nodata
    attrs["coordinates"] = "wavelength fwhm"
    if any(b.polarisation for b in bands):
        attrs["polarisation"] = [b.polarisation for b in bands]
    if spec.kind == "sar":
        attrs["comment"] = "linear power (gamma0); dB = 10 * log10(value)"
    return attrs


def ensure_group(root, spec: SensorSpec, bands: tuple[BandSpec, ...], layout: GroupLayout, batch: str) -> None:
    """Create ``<sensor>/<batch>/{data,mask,wavelength,fwhm}`` if absent (and the sensor group,
    create-only); check the layout if present. Only the batch's owner calls this.

    A run killed while it created the batch's arrays leaves them incomplete; no shard of them can
    have been committed yet, so they are created again from scratch.
    """
    name = spec.name
    C, P, k = layout.n_bands, layout.patch_px, layout.patches_per_shard
    ensure_sensor_group(_root_location(root), spec, P)
    sg = root[name]
    if batch in sg:
        g = sg[batch]
        if {"data", "mask"} <= set(g.array_keys()):
            shape = g["data"].shape
            if shape[1:] != (C, P, P) or g["data"].shards[0] != k:
                raise ReleaseError(
                    f"store batch {name}/{batch} has patches {shape[1:]} in shards of {g['data'].shards[0]}, "
                    f"this run needs {(C, P, P)} in shards of {k}"
                )
            _write_band_coords(g, bands)
            return
        del sg[batch]
    g = sg.require_group(batch)
    g.attrs.update({"batch": batch})
    attrs = cf_attrs(spec, bands)
    attrs["batch"] = batch
    g.create_array(
        "data", shape=(0, C, P, P), **patch_array_spec((C, P, P), k), dtype=layout.dtype,
        fill_value=layout.fill, dimension_names=("patch", "band", "y", "x"), attributes=attrs,
    )
    g.create_array(
        "mask", shape=(0, P, P), **patch_array_spec((P, P), k), dtype="uint8",
        fill_value=int(MaskFlag.NODATA), dimension_names=("patch", "y", "x"),
        attributes={"long_name": "quality flags", "flag_masks": [int(f) for f in MaskFlag],
                    "flag_meanings": " ".join(f.name.lower() for f in MaskFlag)},  # type: ignore[union-attr]
    )
    _write_band_coords(g, bands)


def _root_location(root) -> Location:
    """The :class:`Location` a zarr root group was opened on."""
    zs = root.store
    local = getattr(zs, "root", None)
    if local is not None:
        return open_location(Path(local))
    return Location("object-store", zs.store, None)  # zarr's ObjectStore over an obstore store


def _write_band_coords(g, bands: tuple[BandSpec, ...]) -> None:
    """(Re)write ``wavelength`` and ``fwhm`` (NaN for SAR, so every product has one layout).

    Idempotent, so a run killed between creating these arrays and filling them is repaired.
    """
    present = set(g.array_keys())
    for var, vals in (("wavelength", [b.wavelength_nm for b in bands]), ("fwhm", [b.fwhm_nm for b in bands])):
        if var in present:
            a = g[var]
        else:
            long_name = "band centre wavelength" if var == "wavelength" else "full width at half maximum"
            a = g.create_array(var, shape=(len(bands),), dtype="float32", fill_value=np.nan,
                               dimension_names=("band",), attributes={"units": "nm", "long_name": long_name})
        want = np.asarray([np.nan if v is None else v for v in vals], dtype="float32")
        if not np.array_equal(a[:], want, equal_nan=True):  # a resume normally writes nothing here
            a[:] = want


def reserve(root, sensor: str, batch: str, n_shards: int) -> None:
    """Grow ``<sensor>/<batch>/data`` and ``mask`` along N to hold ``n_shards`` shards (never
    shrinks). Only the batch owner resizes its arrays."""
    g = root[sensor][batch]
    k = g["data"].shards[0]
    n = n_shards * k
    for var in ("data", "mask"):  # each on its own: a kill may fall between the two resizes
        if g[var].shape[0] < n:
            g[var].resize((n, *g[var].shape[1:]))


@functools.lru_cache(maxsize=16)
def _cached_location(url: str) -> Location:
    return open_location(url)


def _loc(store) -> Location:
    return store if isinstance(store, Location) else _cached_location(str(store))


def write_shard(store, sensor: str, batch: str, shard: int, data: np.ndarray, mask: np.ndarray) -> None:
    """Write one whole shard (``k`` patches) of ``sensor`` in ``batch``: rows ``shard*k ..
    shard*k+k-1`` (one object per array on an object store)."""
    import zarr

    zs = _loc(store).zarr_store()
    d = zarr.open_array(store=zs, path=f"{sensor}/{batch}/data", mode="r+", zarr_format=3)
    m = zarr.open_array(store=zs, path=f"{sensor}/{batch}/mask", mode="r+", zarr_format=3)
    k = d.shards[0]  # type: ignore[index]  # every array the writer creates is sharded
    if data.shape[0] != k or mask.shape[0] != k:
        raise ValueError(f"a shard holds {k} patches, got {data.shape[0]}")
    d[shard * k : (shard + 1) * k] = data
    m[shard * k : (shard + 1) * k] = mask


def commit_part(store, sensor: str, batch: str, shard: int, rows, attempted: list[str]) -> str:
    """Commit one shard: its index part as ONE object, created only if absent (a conditional
    create: an existing commit is never overwritten). Returns the part's key."""
    import geopandas as gpd

    loc = _loc(store)
    key = part_key(batch, sensor, shard)
    gdf = rows if isinstance(rows, gpd.GeoDataFrame) else gpd.GeoDataFrame(rows, columns=list(INDEX_COLUMNS), geometry="geometry", crs="EPSG:4326")
    gdf = gdf.set_crs("EPSG:4326", allow_override=True)[list(INDEX_COLUMNS)]
    table = _to_arrow(gdf)
    meta = dict(table.schema.metadata or {})
    meta[PART_META_KEY] = json.dumps({"sensor": sensor, "shard": shard, "batch": batch, "attempted": attempted}).encode()
    buf = io.BytesIO()
    pq.write_table(table.replace_schema_metadata(meta), buf)
    body = buf.getvalue()
    try:
        loc.put(key, body, exclusive=True)
    except ObjectExists:
        if loc.get(key) == body:  # our own put, retried after a lost response: committed once
            return key
        raise ReleaseError(f"{loc.child(key)}: shard {shard} of {sensor} in batch {batch} is committed already; "
                           "another writer of this batch ran (check index/leases)") from None
    return key


def _to_arrow(gdf):
    """GeoParquet-ready Arrow table (with the ``geo`` metadata), so extra key-value metadata
    can be added before the single atomic write."""
    from geopandas.io.arrow import _geopandas_to_arrow

    return _geopandas_to_arrow(gdf, index=False)


def clean_temporaries(store) -> int:
    """Remove temp files left by a killed local run (never a committed part). Object stores have
    none: a put is atomic."""
    loc = _loc(store)
    if loc.local is None or not (loc.local / "index").is_dir():
        return 0
    n = 0
    for p in (loc.local / "index").rglob("*.tmp"):
        p.unlink(missing_ok=True)
        n += 1
    return n


def plan_digest(patch_ids, cell_m: int) -> str:
    """sha256 of a plan's (or partition's) sorted patch ids and cell size: the batch's identity."""
    h = hashlib.sha256(f"cell_m={int(cell_m)}\n".encode())
    for pid in sorted(set(patch_ids)):
        h.update(pid.encode() + b"\n")
    return h.hexdigest()


def ensure_batch_record(store, batch: str, partition: str | None, digest: str, config: dict, config_id: str) -> dict:
    """Write ``index/batches/<batch>.json`` once, or check a resume against it: a different tile
    config for an existing batch is refused, naming the changed keys."""
    loc = _loc(store)
    key = batch_record_key(batch)
    have = _read_json(loc, key)
    if have is None:
        rec = {"batch": batch, "partition": partition or "all", "plan_digest": digest, "config": config,
               "config_id": config_id, "pipeline_version": PIPELINE_VERSION, "created": _now()}
        try:
            loc.put(key, json.dumps(rec, indent=2, sort_keys=True).encode(), exclusive=True)
            return rec
        except ObjectExists:
            have = _read_json(loc, key)
    old = (have or {}).get("config") or {}
    changed = sorted(k for k in set(old) | set(config) if old.get(k) != config.get(k))
    if changed:
        diff = ", ".join(f"{k}: {old.get(k)!r} -> {config.get(k)!r}" for k in changed)
        raise ReleaseError(f"{loc.child(key)}: batch {batch} was tiled with another config ({diff}); "
                           "rerun with the batch's settings, or tile into a new release")
    return have or {}


def locations(index, cell_m: int):
    """One row per cell of ``index`` (LOCATION_COLUMNS; ``sensors`` '+'-joined), derived from the
    index (layout 2 stores no locations table: publish writes it per version)."""
    import geopandas as gpd

    from ..grid import parse_cell_id

    rows = []
    for cell_id, grp in index.groupby("cell_id", sort=True):
        rows.append({
            "cell_id": cell_id, "cell_m": int(cell_m), "epsg": parse_cell_id(cell_id, cell_m).epsg,
            "sensors": "+".join(sorted(set(grp["sensor"]))), "geometry": grp.geometry.iloc[0],
        })
    return gpd.GeoDataFrame(rows, columns=list(LOCATION_COLUMNS), geometry="geometry", crs="EPSG:4326")


def consolidate_batch(root, sensor: str, batch: str) -> None:
    """Consolidated metadata in ``<sensor>/<batch>/zarr.json`` (the batch's own object, written by
    its owner at the end of each run), so plain readers over HTTP or object storage open the batch
    with ``xr.open_zarr(url, group="<sensor>/<batch>")`` in one request, without listing."""
    import warnings

    import zarr

    with warnings.catch_warnings():
        warnings.filterwarnings("ignore", message=".*[Cc]onsolidated metadata.*")
        zarr.consolidate_metadata(root.store, path=f"{sensor}/{batch}", zarr_format=3)


def consolidate(store: Path) -> None:
    """Write consolidated metadata into the ``zarr.json`` of the root and of each sensor group, so
    readers on object storage or plain HTTP (which cannot list folders) open a group in one request.

    Our own code never reads it (``use_consolidated=False`` everywhere): after a killed run it
    may be stale until the next run or ``publish`` writes it again.
    """
    import warnings

    import zarr

    from .reader import sensor_groups

    with warnings.catch_warnings():
        # zarr warns that consolidation is not in the v3 spec yet, and about index/ (not zarr)
        warnings.filterwarnings("ignore", message=".*[Cc]onsolidated metadata.*")
        warnings.filterwarnings("ignore", message=".*not recognized as a component of a Zarr hierarchy.*")
        for name in sensor_groups(store):  # each sensor group (``open_zarr(group=...)``)
            zarr.consolidate_metadata(str(store), path=name, zarr_format=3)
        zarr.consolidate_metadata(str(store), zarr_format=3)
