"""The release writer (DESIGN.md, "The release store"): Zarr v3 groups + GeoParquet index parts.

Layout::

    <store>/zarr.json                    root attrs: release_id, cell_m, created, pipeline_version,
                                         sensors, licences
    <store>/<sensor>/data  (N, C, H, W)  native dtype, CF scale_factor/add_offset/_FillValue
                                         (missing_value for float products)
    <store>/<sensor>/mask  (N, H, W)     uint8 MaskFlag bits (fill 1 = nodata)
    <store>/<sensor>/wavelength, fwhm (C,) nm (optical products)
    <store>/index/patches/part-<sensor>-<shard>.parquet
    <store>/index/locations.parquet     one row per cell; ``sensors`` '+'-joined (e.g. "enmap+s2")

The layout's definition (paths, codecs, chunking) is :mod:`.layout`: the writer creates every
array from it, and the readers (:mod:`.reader`, :mod:`.shards`) read by it.

Commit protocol. One task writes one shard (``patches_per_shard`` rows of N) of one sensor, then
writes its index part to a temporary name and renames it into place. The part is the "done"
marker: rows of a shard are meaningful only once its part exists, so the index never points at
torn data. A rerun reads the parts (:func:`.reader.committed`), skips every patch already
attempted (kept or dropped: the part's metadata lists both), and hands the shard slots without a
part to new tasks, which rewrite those shards whole. Shards with a part are never written again,
so appending a region or rerunning never rewrites committed data.
"""

from __future__ import annotations

import contextlib
import datetime as dt
import hashlib
import json
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pyarrow.parquet as pq

from ..atomic import atomic_path
from ..catalog import BandSpec, SensorSpec
from ..errors import ReleaseError
from ..masks import MaskFlag
from ..schema import INDEX_COLUMNS, LOCATION_COLUMNS
from .layout import LOCATIONS, PART_META_KEY, PARTS_DIR, part_name, patch_array_spec

#: Version of the code that writes releases (the tiling engine and this writer), written into
#: every index row, the store attributes and the manifest. Bump it whenever the bytes written for
#: the same inputs change.
PIPELINE_VERSION = "spectralearth-engine/0.2.0"

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


def open_root(store: Path, cell_m: int, release_id: str | None = None, create: bool = True):
    """Open (or create) the store's root group, checking that its ``cell_m`` matches."""
    import zarr

    from .reader import open_group

    store = Path(store)
    if (store / "zarr.json").exists():
        root = open_group(store, mode="a")
        have = root.attrs.get("cell_m")
        if have is not None and int(have) != int(cell_m):
            raise ReleaseError(f"{store}: store has cell_m={have} but the plan has cell_m={cell_m}")
        return root
    if not create:
        raise ReleaseError(f"{store}: not a release store (no zarr.json)")
    if store.exists() and any(store.iterdir()):
        raise ReleaseError(f"{store}: folder exists and is not a release store; choose another --store")
    # created in place with its attributes: mode="w" would delete and re-create the folder, and
    # a second writer could then lock the new folder while this one holds the lock on the old
    root = zarr.create_group(
        str(store), zarr_format=3, overwrite=False,
        attributes={
            "release_id": release_id or store.stem,
            "cell_m": int(cell_m),
            "created": _now(),
            "pipeline_version": PIPELINE_VERSION,
            "code_version": _code_version(),
            "sensors": [],
            "licences": {},
            "conventions": "CF-1.10; layout per SpectralEarth DESIGN.md (release store)",
        },
    )
    (store / PARTS_DIR).mkdir(parents=True, exist_ok=True)
    return root


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


def ensure_group(root, spec: SensorSpec, bands: tuple[BandSpec, ...], layout: GroupLayout) -> None:
    """Create ``<sensor>/{data,mask,wavelength,fwhm}`` if absent; check the layout if present.

    A run killed while it created the group leaves it without some of its arrays; no shard of it
    can have been written or indexed yet, so the group is created again from scratch.
    """
    name = spec.name
    C, P, k = layout.n_bands, layout.patch_px, layout.patches_per_shard
    if name in root:
        g = root[name]
        if {"data", "mask"} <= set(g.array_keys()):
            shape = g["data"].shape
            if shape[1:] != (C, P, P) or g["data"].shards[0] != k:
                raise ReleaseError(
                    f"store group {name!r} has patches {shape[1:]} in shards of {g['data'].shards[0]}, "
                    f"this run needs {(C, P, P)} in shards of {k}"
                )
            _write_band_coords(g, bands)
            return
        del root[name]
    g = root.require_group(name)
    g.attrs.update({"sensor": name, "kind": spec.kind, "gsd_m": spec.gsd_m, "patch_px": P})
    g.create_array(
        "data", shape=(0, C, P, P), **patch_array_spec((C, P, P), k), dtype=layout.dtype,
        fill_value=layout.fill, dimension_names=("patch", "band", "y", "x"), attributes=cf_attrs(spec, bands),
    )
    g.create_array(
        "mask", shape=(0, P, P), **patch_array_spec((P, P), k), dtype="uint8",
        fill_value=int(MaskFlag.NODATA), dimension_names=("patch", "y", "x"),
        attributes={"long_name": "quality flags", "flag_masks": [int(f) for f in MaskFlag],
                    "flag_meanings": " ".join(f.name.lower() for f in MaskFlag)},  # type: ignore[union-attr]
    )
    _write_band_coords(g, bands)


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


def reserve(root, sensor: str, n_shards: int) -> None:
    """Grow ``<sensor>/data`` and ``mask`` along N to hold ``n_shards`` shards (never shrinks)."""
    g = root[sensor]
    k = g["data"].shards[0]
    n = n_shards * k
    for var in ("data", "mask"):  # each on its own: a kill may fall between the two resizes
        if g[var].shape[0] < n:
            g[var].resize((n, *g[var].shape[1:]))


def write_shard(store: Path, sensor: str, shard: int, data: np.ndarray, mask: np.ndarray) -> None:
    """Write one whole shard (``k`` patches) of ``sensor``: rows ``shard*k .. shard*k+k-1``."""
    import zarr

    d = zarr.open_array(str(store), path=f"{sensor}/data", mode="r+")
    m = zarr.open_array(str(store), path=f"{sensor}/mask", mode="r+")
    k = d.shards[0]  # type: ignore[index]  # every array the writer creates is sharded
    if data.shape[0] != k or mask.shape[0] != k:
        raise ValueError(f"a shard holds {k} patches, got {data.shape[0]}")
    d[shard * k : (shard + 1) * k] = data
    m[shard * k : (shard + 1) * k] = mask


def commit_part(store: Path, sensor: str, shard: int, rows, attempted: list[str]) -> Path:
    """Write the index part of one shard atomically (temp file, fsync, rename)."""
    import geopandas as gpd

    parts = Path(store) / PARTS_DIR
    parts.mkdir(parents=True, exist_ok=True)
    final = parts / part_name(sensor, shard)
    gdf = rows if isinstance(rows, gpd.GeoDataFrame) else gpd.GeoDataFrame(rows, columns=list(INDEX_COLUMNS), geometry="geometry", crs="EPSG:4326")
    gdf = gdf.set_crs("EPSG:4326", allow_override=True)[list(INDEX_COLUMNS)]
    table = _to_arrow(gdf)
    meta = dict(table.schema.metadata or {})
    meta[PART_META_KEY] = json.dumps({"sensor": sensor, "shard": shard, "attempted": attempted}).encode()
    # the temp file has a dot name: plain readers of the parts folder skip it, so one left by a
    # kill never breaks them (the next run removes it)
    with atomic_path(final) as tmp:
        pq.write_table(table.replace_schema_metadata(meta), tmp)
    return final


def _to_arrow(gdf):
    """GeoParquet-ready Arrow table (with the ``geo`` metadata), so extra key-value metadata
    can be added before the single atomic write."""
    from geopandas.io.arrow import _geopandas_to_arrow

    return _geopandas_to_arrow(gdf, index=False)


def clean_temporaries(store: Path) -> int:
    """Remove temp files left by a killed run (never a committed part)."""
    n = 0
    for p in (Path(store) / "index").rglob("*.tmp"):
        p.unlink(missing_ok=True)
        n += 1
    return n


def write_locations(store: Path, cell_m: int) -> int:
    """Rebuild index/locations.parquet (one row per cell with its sensors) from the index."""
    import geopandas as gpd

    from ..grid import parse_cell_id
    from .reader import read_index

    idx = read_index(store)
    rows = []
    for cell_id, grp in idx.groupby("cell_id", sort=True):
        rows.append({
            "cell_id": cell_id, "cell_m": int(cell_m), "epsg": parse_cell_id(cell_id, cell_m).epsg,
            "sensors": "+".join(sorted(set(grp["sensor"]))), "geometry": grp.geometry.iloc[0],
        })
    gdf = gpd.GeoDataFrame(rows, columns=list(LOCATION_COLUMNS), geometry="geometry", crs="EPSG:4326")
    with atomic_path(Path(store) / LOCATIONS) as tmp:
        gdf.to_parquet(tmp, index=False)
    return len(gdf)


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


def update_root_attrs(root, specs: dict[str, SensorSpec]) -> None:
    """Record the sensors present and a licence summary in the root attributes."""
    sensors = sorted(set(root.attrs.get("sensors", [])) | set(specs))
    lic = dict(root.attrs.get("licences", {}))
    for name, s in specs.items():
        lic[name] = {"id": s.licence.id, "redistributable": s.licence.redistributable, "attribution": s.licence.attribution}
    root.attrs.update({"sensors": sensors, "licences": lic, "updated": _now()})


@contextlib.contextmanager
def writer_lock(store: Path) -> Iterator[None]:
    """One writer per store: an exclusive ``flock`` on the store folder (spectralearth_data.lock).

    The kernel releases it when the writer dies (kill -9 included), so there is no stale lock to
    take over; a second writer stops with a :class:`ReleaseError`. Take it *before* creating the
    root group, so two runs starting on a new path cannot both create (and wipe) the store.
    """
    from ..lock import release_lock

    with release_lock(store):
        yield
