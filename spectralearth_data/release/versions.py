"""Versions of a release: immutable records of a fixed set of committed commit-log objects.

A release grows by tiling (each shard's commit-log part is written once, after its data); a
*version* freezes what is committed at one moment::

    versions/v000001.json               the record (written once, with a conditional create)
    versions/v000001/index/<p>-000.parquet   the compacted index of partition <p> (:mod:`.compact`)
    versions/v000001/partitions.parquet  one row per compacted object: partition, bbox, count, key

A record lists its id, its parent, when it was made, the pipeline version, the tile configs of its
batches (with their ``config_id``), counts per product, every commit-log object it contains (key,
sha256, size, rows) and its compacted index objects. A new version lists the commit-log objects
of its parent plus the new ones, and reuses the parent's compacted objects for the partitions it
did not change: publishing never rewrites an object of an older version.

The commit log is read through :class:`~.storage.Location` (list + get), so a local folder and an
``s3://`` prefix are read the same way; a part's rows locate their data by the ``batch`` column
(``<sensor>/<batch>/data``) when the writer wrote one, else at ``<sensor>/data``.
"""

from __future__ import annotations

import hashlib
import io
import json
import re
from collections.abc import Iterable
from dataclasses import dataclass

from ..errors import ReleaseError
from .layout import PART_META_KEY
from .storage import Location, ObjectExists, open_location

VERSIONS_DIR = "versions"
LEASES_DIR = "index/leases"
BATCHES_DIR = "index/batches"
RECORD_FORMAT = "spectralearth-version/1"
_VERSION_RE = re.compile(r"^v(\d{6})$")


class NothingNew(ReleaseError):
    """A publish found no committed object (and no new id) since the parent version."""


@dataclass(frozen=True)
class CommitPart:
    """One committed commit-log object (an index part): its key, bytes' sha256 and size."""

    key: str
    sha256: str
    size: int
    rows: int
    sensor: str
    shard: int
    batch: str


def version_id(n: int) -> str:
    return f"v{n:06d}"


def version_number(vid: str) -> int:
    m = _VERSION_RE.match(vid)
    if not m:
        raise ReleaseError(f"version {vid!r}: a version id looks like v000001")
    return int(m.group(1))


def record_key(vid: str) -> str:
    return f"{VERSIONS_DIR}/{vid}.json"


def normalize_version(v: str | int) -> str:
    """``v000002`` from ``2``, ``"2"``, ``"v2"`` or ``"v000002"``."""
    text = str(v).strip()
    digits = text[1:] if text.lower().startswith("v") else text
    if not digits.isdigit():
        raise ReleaseError(f"version {v!r}: give a version id such as v000001 (or its number, 1)")
    return version_id(int(digits))


# -- the commit log ----------------------------------------------------------------------------


def read_part_bytes(data: bytes, key: str):
    """(rows as a GeoDataFrame, the writer's part metadata) of one commit-log object's bytes."""
    import geopandas as gpd
    import pyarrow as pa
    import pyarrow.parquet as pq

    try:
        meta = pq.read_schema(pa.BufferReader(data)).metadata or {}
        rows = gpd.read_parquet(io.BytesIO(data))
    except Exception as e:  # noqa: BLE001 -- a corrupt part fails in pyarrow with several types
        raise ReleaseError(f"{key}: unreadable index part ({type(e).__name__}: {e})") from None
    if PART_META_KEY not in meta:
        raise ReleaseError(f"{key}: index part without SpectralEarth metadata")
    return rows, json.loads(meta[PART_META_KEY])


def read_commit_log(loc: Location, keys: Iterable[str] | None = None):
    """(parts, rows): every committed part (:func:`.reader.part_paths`, or those of ``keys``) with
    its sha256 and size, and all their rows as one GeoDataFrame with ``batch`` (from the part key
    for a part written before batches) and ``part`` (the part's key) added. Each object is read
    once: its bytes are hashed and parsed."""
    import geopandas as gpd
    import pandas as pd

    from . import reader

    keys = reader.part_paths(loc) if keys is None else list(keys)
    parts: list[CommitPart] = []
    frames = []
    for key in keys:
        data = loc.get(key)
        rows, meta = read_part_bytes(data, key)
        batch = str(meta.get("batch") or reader.part_batch(key))
        rows = rows.copy()
        if "batch" not in rows.columns:
            rows["batch"] = batch
        rows["batch"] = rows["batch"].astype(str)
        rows["part"] = key
        parts.append(CommitPart(key=key, sha256=hashlib.sha256(data).hexdigest(), size=len(data),
                                rows=len(rows), sensor=str(meta.get("sensor", "")), shard=int(meta.get("shard", -1)),
                                batch=batch))
        if len(rows):
            frames.append(rows)
    if frames:
        allrows = gpd.GeoDataFrame(pd.concat(frames, ignore_index=True), geometry="geometry", crs="EPSG:4326")
    else:
        from ..schema import INDEX_COLUMNS

        cols = dict.fromkeys((*INDEX_COLUMNS, "batch", "part"))
        allrows = gpd.GeoDataFrame({c: [] for c in cols}, geometry="geometry", crs="EPSG:4326")
    return parts, allrows


def tile_configs(loc: Location, batches: Iterable[str] | None = None) -> dict[str, dict]:
    """``{batch: {"config", "config_id", "partition", "plan_digest"}}`` of the writers' batch records
    (``index/batches/<batch>.json``, else the config kept in the batch lease); writer host and pid
    are left out. ``batches``: only those."""
    want = None if batches is None else set(batches)
    out: dict[str, dict] = {}
    for folder in (BATCHES_DIR, LEASES_DIR):
        for info in loc.list(folder + "/"):
            batch = info.key.rsplit("/", 1)[-1].rsplit(".", 1)[0]
            if not info.key.endswith(".json") or batch in out or (want is not None and batch not in want):
                continue
            try:
                rec = json.loads(loc.get(info.key))
            except (ValueError, FileNotFoundError):
                continue
            cfg = rec.get("config", rec.get("tile_config"))
            if cfg is not None:
                out[batch] = {"config": cfg, "config_id": rec.get("config_id"), "partition": rec.get("partition"),
                              "plan_digest": rec.get("plan_digest")}
    return out


# -- version records ---------------------------------------------------------------------------


def version_ids(loc: Location) -> list[str]:
    """Ids of the published versions, oldest first."""
    ids = []
    for info in loc.list(VERSIONS_DIR + "/"):
        rel = info.key[len(VERSIONS_DIR) + 1:]
        if rel.endswith(".json") and "/" not in rel and _VERSION_RE.match(rel[:-5]):
            ids.append(rel[:-5])
    return sorted(ids)


def read_record(loc: Location, vid: str) -> dict:
    """The record of version ``vid``; a one-line error naming the versions there are."""
    vid = normalize_version(vid)
    try:
        return json.loads(loc.get(record_key(vid)))
    except FileNotFoundError:
        have = version_ids(loc)
        raise ReleaseError(f"{loc.url}: no version {vid} (published: {', '.join(have) or 'none'})") from None


def latest(loc: Location) -> dict | None:
    ids = version_ids(loc)
    return read_record(loc, ids[-1]) if ids else None


def list_versions(path_or_url) -> list[dict]:
    """Every version record of a release, oldest first."""
    loc = open_location(path_or_url, create=False)
    return [read_record(loc, v) for v in version_ids(loc)]


def put_record(loc: Location, record: dict) -> str:
    """Write a version record with a conditional create; a one-line error if another publish took
    the id first (publish again: it becomes the next version)."""
    key = record_key(record["id"])
    try:
        loc.put(key, json.dumps(record, indent=1, sort_keys=True).encode(), exclusive=True)
    except ObjectExists:
        raise ReleaseError(f"{loc.child(key)}: another publish created {record['id']} meanwhile; "
                           "run publish again to make the next version") from None
    return key


# -- reading one version's patches -------------------------------------------------------------


def version_index(loc: Location, record: dict, columns: list[str] | None = None, bbox=None):
    """The committed patches of a version as one GeoDataFrame, from its compacted index objects
    (only those whose bbox meets ``bbox`` = (xmin, ymin, xmax, ymax), when given)."""
    import geopandas as gpd
    import pandas as pd

    objs = [o for o in record["index"] if bbox is None or _meets(o["bbox"], bbox)]
    frames = [read_compacted(loc, o["key"], columns=columns, bbox=bbox) for o in objs]
    frames = [f for f in frames if len(f)]
    if not frames:
        if objs:
            return read_compacted(loc, objs[0]["key"], columns=columns, bbox=bbox).iloc[:0]
        return gpd.GeoDataFrame({c: [] for c in (columns or ["patch_id", "sensor", "geometry"])},
                                geometry="geometry", crs="EPSG:4326")
    return gpd.GeoDataFrame(pd.concat(frames, ignore_index=True), geometry="geometry", crs="EPSG:4326")


def read_compacted(loc: Location, key: str, columns: list[str] | None = None, bbox=None):
    """One compacted GeoParquet object; only its footer and the row groups that meet ``bbox`` are
    read (range reads on an object store, :class:`RangeFile`)."""
    import geopandas as gpd

    cols = None if columns is None else list(dict.fromkeys([*columns, "geometry"]))
    src = loc.child(key) if loc.local is not None else RangeFile(loc, key)
    return gpd.read_parquet(src, columns=cols, bbox=bbox)


class RangeFile(io.RawIOBase):
    """A read-only, seekable file over one object, read by ranged GETs (for Parquet readers,
    which read the footer, then only the column chunks they need); ``requests`` and ``bytes_read``
    count what was fetched."""

    def __init__(self, loc: Location, key: str):
        super().__init__()
        self._loc, self._key = loc, key
        self._size = loc.head(key).size
        self._pos = 0
        self.requests = 0
        self.bytes_read = 0

    def readable(self) -> bool:
        return True

    def seekable(self) -> bool:
        return True

    def tell(self) -> int:
        return self._pos

    def seek(self, offset: int, whence: int = io.SEEK_SET) -> int:
        base = {io.SEEK_SET: 0, io.SEEK_CUR: self._pos, io.SEEK_END: self._size}[whence]
        self._pos = max(0, base + offset)
        return self._pos

    def read(self, n: int = -1) -> bytes:
        end = self._size if n is None or n < 0 else min(self._size, self._pos + n)
        if end <= self._pos:
            return b""
        self.requests += 1
        self.bytes_read += end - self._pos
        data = self._loc.get_range(self._key, self._pos, end)
        self._pos = end
        return data

    def readinto(self, b) -> int:
        data = self.read(len(b))
        b[:len(data)] = data
        return len(data)

    def size(self) -> int:
        return self._size


def _meets(a, b) -> bool:
    return not (a[2] < b[0] or a[0] > b[2] or a[3] < b[1] or a[1] > b[3])


# -- diff --------------------------------------------------------------------------------------


@dataclass(frozen=True)
class VersionDiff:
    old: str
    new: str
    added: dict[str, list[str]]  # product -> patch ids
    removed: dict[str, list[str]]

    def as_dict(self) -> dict:
        return {"old": self.old, "new": self.new,
                "added": {k: len(v) for k, v in self.added.items()},
                "removed": {k: len(v) for k, v in self.removed.items()},
                "added_patches": sorted(p for v in self.added.values() for p in v),
                "removed_patches": sorted(p for v in self.removed.values() for p in v)}


def diff(path_or_url, old: str, new: str) -> VersionDiff:
    """Patches added and removed between two versions, per product."""
    loc = open_location(path_or_url, create=False)
    a, b = read_record(loc, old), read_record(loc, new)
    ia = version_index(loc, a, columns=["patch_id", "sensor"])
    ib = version_index(loc, b, columns=["patch_id", "sensor"])
    sa = dict(zip(ia["patch_id"], ia["sensor"], strict=True))
    sb = dict(zip(ib["patch_id"], ib["sensor"], strict=True))
    added: dict[str, list[str]] = {}
    removed: dict[str, list[str]] = {}
    for pid in sorted(set(sb) - set(sa)):
        added.setdefault(sb[pid], []).append(pid)
    for pid in sorted(set(sa) - set(sb)):
        removed.setdefault(sa[pid], []).append(pid)
    return VersionDiff(old=a["id"], new=b["id"], added=added, removed=removed)
