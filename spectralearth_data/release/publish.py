"""Publish a release: validate it, then freeze what is committed as the next immutable version.

``publish`` writes, in this order (each object once; see :mod:`.versions` and :mod:`.compact`):

1. the compacted index objects of the partitions that changed since the parent version, and
   ``versions/vN/partitions.parquet``;
2. the version record ``versions/vN.json`` with a conditional create: the version exists once
   its record does, and two publishers can never both make ``vN``;
3. the "latest" pointers, rewritten by every publish and part of no version: ``release.json``
   (the manifest older readers, ``validate`` and ``upload`` check), ``stac/collection.json`` and
   ``stac/items.parquet`` (:mod:`.catalogue`), ``croissant.json`` and ``README.md`` (:mod:`.card`).

A publish with nothing committed since the parent (and the same release id) is refused, so a
rerun of a finished curation publishes nothing new; one killed after step 2 only refreshes the
pointers when run again. Works on a local folder and on an object-store URL alike.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import json
from pathlib import Path

from ..errors import ReleaseError
from . import compact as cp
from . import versions as vs
from .layout import MANIFEST, PARTS_DIR
from .storage import Location, ObjectExists, open_location
from .store import PIPELINE_VERSION

#: Objects every publish rewrites: pointers to the latest version, part of no version.
LATEST_POINTERS: tuple[str, ...] = (MANIFEST, "stac/collection.json", "stac/items.parquet", "croissant.json",
                                    "README.md")
#: What a synthesized release says wherever it goes.
SYNTHESIZED_NOTE = "SYNTHESIZED demo data - not real acquisitions"


def publish(store, release_id: str | None = None, rename: bool = False) -> Path | str:
    """Validate ``store`` (a folder or URL) and publish its committed patches as the next version;
    returns where ``release.json`` was written (a Path for a folder, else its URL).

    ``release_id`` defaults to the published one, else the root attribute. An empty store is
    refused, and so is a new id for a store published under another one unless ``rename`` (a
    release's id is its identity). :class:`.versions.NothingNew` when nothing was committed
    since the latest version.
    """
    loc = open_location(store, create=False)
    if not loc.exists("zarr.json"):
        raise ReleaseError(f"{loc.url}: not a release store (no zarr.json)")
    root = _root_attrs(loc)
    published = _published_id(loc)
    release_id = release_id or published or str(root.get("release_id") or "")
    if not release_id or any(c in release_id for c in "/\\ "):
        raise ReleaseError(f"release id {release_id!r}: use a non-empty name without slashes or spaces")
    if published is not None and published != release_id and not rename:
        raise ReleaseError(
            f"{loc.url}: already published as {published!r}; publishing it as {release_id!r} would rename the "
            f"release: pass --rename to do that, or --release-id {published} to publish it again")
    parts, rows = vs.read_commit_log(loc)
    if not len(rows):
        raise ReleaseError(f"{loc.url}: empty release: the index has no patches (tile wrote none); not published")
    parent = vs.latest(loc)
    if parent is not None:
        _check_parent(loc, parent, parts)
        if {(p.key, p.sha256) for p in parts} == {(p["key"], p["sha256"]) for p in parent["commit_log"]} \
                and parent.get("release_id") == release_id:
            if _pointer_version(loc) != parent["id"]:  # a publish killed after its record: finish it
                _write_pointers(loc, parent, rows, root)
                return _manifest_path(loc)
            raise vs.NothingNew(f"{loc.url}: nothing new since {parent['id']} (no index part committed since); "
                                "not published again")
    _validate(loc)
    record = _make_version(loc, parent, parts, rows, root, release_id)
    vs.put_record(loc, record)
    _write_pointers(loc, record, rows, root)
    return _manifest_path(loc)


def is_synthesized(root: dict, rows) -> bool:
    """A release of synthesized scenes: the writer's root attribute says so, or a scene id is one
    of the demo's (every demo scene id ends in ``_SYNTH``, whichever catalogue found it)."""
    if root.get("synthesized"):
        return True
    ids = rows["scene_id"].astype(str) if len(rows) else []
    return bool(len(ids)) and bool(ids.str.endswith("_SYNTH").any())  # type: ignore[union-attr]


def _make_version(loc: Location, parent: dict | None, parts, rows, root: dict, release_id: str) -> dict:
    n = vs.version_number(parent["id"]) + 1 if parent else 1
    vid = vs.version_id(n)
    by_key = {p.key: p for p in parts}
    rows = rows.assign(partition=cp.partitions(rows))
    reuse: dict[str, list[dict]] = {}
    for e in (parent or {}).get("index", []):
        reuse.setdefault(e["partition"], []).append(e)
    entries: list[dict] = []
    for partition, prows in rows.groupby("partition", sort=True):
        inputs = cp.inputs_digest([(k, by_key[k].sha256) for k in set(prows["part"])])
        old = reuse.get(str(partition), [])
        if old and all(e["inputs_sha256"] == inputs for e in old):
            entries += old  # unchanged partition: the parent's objects, listed again
            continue
        for obj in cp.compact(prows.drop(columns=["partition"]), str(partition)):
            key = cp.object_key(vid, str(partition), obj.number)
            _put_new(loc, key, obj.data)
            entries.append(obj.entry(key, inputs, vid))
    table_key = cp.partitions_key(vid)
    _put_new(loc, table_key, cp.partitions_table(entries))
    counts = {}
    for sensor, grp in rows.groupby("sensor", sort=True):
        counts[str(sensor)] = {"patches": len(grp), "cells": int(grp["cell_id"].nunique()),
                               "licence": str(grp["licence"].iloc[0]),
                               "redistributable": bool(grp["redistributable"].iloc[0])}
    synthesized = is_synthesized(root, rows)
    record = {
        "format": vs.RECORD_FORMAT,
        "id": vid,
        "parent": parent["id"] if parent else None,
        "release_id": release_id,
        "created": _now(),
        "pipeline_version": PIPELINE_VERSION,
        "code_version": root.get("code_version"),
        "cell_m": int(root["cell_m"]) if root.get("cell_m") is not None else None,
        "synthesized": synthesized,
        "tile_configs": vs.tile_configs(loc, {p.batch for p in parts}),
        "patches": len(rows),
        "cells": int(rows["cell_id"].nunique()),
        "counts": counts,
        "content_sha256": content_sha256(rows["sha256"]),
        "commit_log": [{"key": p.key, "sha256": p.sha256, "size": p.size, "rows": p.rows, "batch": p.batch}
                       for p in parts],
        "index": entries,
        "partitions": table_key,
    }
    if synthesized:
        record["note"] = SYNTHESIZED_NOTE
    return record


def content_sha256(hashes) -> str:
    """sha256 over the sorted patch hashes: equal for two releases with the same patches."""
    return hashlib.sha256("\n".join(sorted(hashes)).encode()).hexdigest()


def _put_new(loc: Location, key: str, data: bytes) -> None:
    """Create ``key``; one left by a publish killed before its record belongs to no version and
    is replaced (its version id was never taken)."""
    try:
        loc.put(key, data, exclusive=True)
    except ObjectExists:
        loc.put(key, data)


def _check_parent(loc: Location, parent: dict, parts) -> None:
    """Every commit-log object of the parent is still there, unchanged (objects are written once)."""
    have = {p.key: p.sha256 for p in parts}
    for p in parent["commit_log"]:
        if have.get(p["key"]) != p["sha256"]:
            what = "is missing" if p["key"] not in have else "has changed"
            raise ReleaseError(f"{loc.child(p['key'])}: committed in {parent['id']} but {what}; a published "
                               "version's objects are never rewritten: restore it from a copy of the release")


def _validate(loc: Location) -> None:
    """Validate every committed part against its data (:func:`.validate.validate_store`)."""
    from .validate import validate_store

    target = loc.local if loc.local is not None else loc.url
    problems = validate_store(target, check_manifest=False)  # a stale manifest is what this rewrites
    if problems:
        raise ReleaseError(f"{loc.url}: {len(problems)} problem(s), not published; first: {problems[0]}")


def _write_pointers(loc: Location, record: dict, rows, root: dict) -> None:
    from . import card, catalogue

    manifest = _manifest(loc, record, root)
    vrows = rows[rows["part"].isin({p["key"] for p in record["commit_log"]})]
    catalogue.write_stac(loc, record, vrows, root)
    card.write_croissant(loc, record, vrows)
    card.write_card(loc, record, vrows, root)
    loc.put(MANIFEST, json.dumps(manifest, indent=1, sort_keys=True).encode())
    if loc.local is not None and root.get("layout") != 2:
        _refresh_local_root(loc.local, record)


def _manifest(loc: Location, record: dict, root: dict) -> dict:
    """``release.json``: the manifest of the latest version (the fields ``validate`` and ``upload``
    check: release_id, index_parts, content_sha256)."""
    sensors = {}
    for name, c in record["counts"].items():
        shape, dtype = _product_shape(loc, name, record)
        sensors[name] = {**c, "shape": shape, "dtype": dtype}
    out = {
        "format": "spectralearth-release/1",
        "release_id": record["release_id"],
        "published": record["created"],
        "version": record["id"],
        "versions": vs.version_ids(loc),
        "cell_m": record["cell_m"],
        "pipeline_version": record["pipeline_version"],
        "code_version": record["code_version"],
        "patches": record["patches"],
        "cells": record["cells"],
        "sensors": sensors,
        "licences": root.get("licences", {}),
        "content_sha256": record["content_sha256"],
        "synthesized": record["synthesized"],
        "index_parts": sorted(p["key"][len(PARTS_DIR) + 1:] for p in record["commit_log"]),
    }
    if record["synthesized"]:
        out["note"] = SYNTHESIZED_NOTE
    return out


def _product_shape(loc: Location, sensor: str, record: dict) -> tuple[list[int], str]:
    """(per-patch shape, dtype) of a product's data array, from its zarr.json (any batch)."""
    batches = sorted({p["batch"] for p in record["commit_log"]})
    for b in batches or [""]:
        key = f"{sensor}/{b}/data/zarr.json" if b else f"{sensor}/data/zarr.json"
        try:
            meta = json.loads(loc.get(key))
        except FileNotFoundError:
            continue
        return [int(v) for v in meta["shape"][1:]], str(meta["data_type"])
    return [], ""


def _refresh_local_root(store: Path, record: dict) -> None:
    """The layout before batches keeps the published id in the root attributes and consolidated
    metadata for HTTP readers (both already rewritten by every tile run of that layout)."""
    from . import reader
    from . import store as st

    root = reader.open_group(store, mode="a")
    root.attrs.update({"release_id": record["release_id"], "published": record["created"], "version": record["id"]})
    st.consolidate(store)


def _root_attrs(loc: Location) -> dict:
    try:
        meta = json.loads(loc.get("zarr.json"))
    except (FileNotFoundError, ValueError) as e:
        raise ReleaseError(f"{loc.child('zarr.json')}: unreadable root group ({e})") from None
    return dict(meta.get("attributes") or {})


def _published_id(loc: Location) -> str | None:
    """The release id of the latest version (or of a manifest of a release published before
    versions); None when never published."""
    last = vs.latest(loc)
    if last is not None:
        return str(last["release_id"])
    try:
        manifest = json.loads(loc.get(MANIFEST))
    except (FileNotFoundError, ValueError):
        return None
    rid = manifest.get("release_id") if isinstance(manifest, dict) else None
    return str(rid) if rid else None


def _pointer_version(loc: Location) -> str | None:
    try:
        return json.loads(loc.get(MANIFEST)).get("version")
    except (FileNotFoundError, ValueError, AttributeError):
        return None


def _manifest_path(loc: Location) -> Path | str:
    return loc.local / MANIFEST if loc.local is not None else loc.child(MANIFEST)


def _now() -> str:
    return dt.datetime.now(dt.UTC).isoformat(timespec="seconds")
