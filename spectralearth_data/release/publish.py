"""Publish a release: validate the store, then write its manifest JSON (the release's identity)."""

from __future__ import annotations

import datetime as dt
import hashlib
import json
from pathlib import Path

from ..atomic import atomic_path
from ..errors import ReleaseError
from . import reader
from . import store as st
from .store import PIPELINE_VERSION

MANIFEST = "release.json"


def publish(store, release_id: str, rename: bool = False) -> Path:
    """Validate ``store`` and write ``<store>/release.json``; returns its path.

    An empty store is refused (validation reports it), and so is a store already published under
    another id unless ``rename``: a release's id is its identity (upload URLs, training runs name
    it), so changing it must be asked for. Publishing again under the same id refreshes the
    manifest, e.g. after tiling more cells.

    The manifest lists the release id, cell size, code and pipeline versions, per-sensor patch
    counts and licences, and a sha256 over the sorted patch hashes (``content_sha256``), so two
    stores with the same patches have the same content id whatever their row order.
    """
    from .validate import validate_store

    store = Path(store)
    if not release_id or any(c in release_id for c in "/\\ "):
        raise ReleaseError(f"release id {release_id!r}: use a non-empty name without slashes or spaces")
    published = _published_id(store)
    if published is not None and published != release_id and not rename:
        raise ReleaseError(
            f"{store}: already published as {published!r}; publishing it as {release_id!r} would rename the "
            f"release: pass --rename to do that, or --release-id {published} to publish it again")
    if (store / "zarr.json").exists() and not len(reader.read_index_columns(store, ["row"])):
        raise ReleaseError(f"{store}: empty release: the index has no patches (tile wrote none); not published")
    problems = validate_store(store, check_manifest=False)  # a stale manifest is what this rewrites
    if problems:
        raise ReleaseError(f"{store}: {len(problems)} problem(s), not published; first: {problems[0]}")
    root = reader.open_group(store, mode="a")
    idx = reader.read_index(store)
    sensors = {}
    for name, grp in idx.groupby("sensor", sort=True):
        sensors[name] = {
            "patches": len(grp),
            "cells": int(grp["cell_id"].nunique()),
            "licence": str(grp["licence"].iloc[0]),
            "redistributable": bool(grp["redistributable"].iloc[0]),
            "shape": list(root[name]["data"].shape[1:]),
            "dtype": str(root[name]["data"].dtype),
        }
    content = hashlib.sha256("\n".join(sorted(idx["sha256"])).encode()).hexdigest()
    manifest = {
        "format": "spectralearth-release/1",
        "release_id": release_id,
        "published": dt.datetime.now(dt.UTC).isoformat(timespec="seconds"),
        "cell_m": int(root.attrs["cell_m"]),
        "pipeline_version": PIPELINE_VERSION,
        "code_version": root.attrs.get("code_version"),
        "patches": len(idx),
        "cells": int(idx["cell_id"].nunique()) if len(idx) else 0,
        "sensors": sensors,
        "licences": root.attrs.get("licences", {}),
        "content_sha256": content,
        "index_parts": sorted(p.name for p, _ in reader.iter_parts(store)),
    }
    root.attrs.update({"release_id": release_id, "published": manifest["published"]})
    st.consolidate(store)
    out = store / MANIFEST
    with atomic_path(out) as tmp:
        tmp.write_text(json.dumps(manifest, indent=1, sort_keys=True))
    return out


def _published_id(store: Path) -> str | None:
    """The release id in ``store``'s manifest; None when it has none (or one without an id)."""
    try:
        manifest = json.loads((store / MANIFEST).read_text())
    except (OSError, ValueError):
        return None
    rid = manifest.get("release_id") if isinstance(manifest, dict) else None
    return str(rid) if rid else None
