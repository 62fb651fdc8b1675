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


def publish(store, release_id: str) -> Path:
    """Validate ``store`` and write ``<store>/release.json``; returns its path.

    The manifest lists the release id, cell size, code and pipeline versions, per-sensor patch
    counts and licences, and a sha256 over the sorted patch hashes (``content_sha256``), so two
    stores with the same patches have the same content id whatever their row order.
    """
    from .validate import validate_store

    store = Path(store)
    problems = validate_store(store)
    if problems:
        raise ReleaseError(f"{store}: {len(problems)} problem(s), not published; first: {problems[0]}")
    if not release_id or any(c in release_id for c in "/\\ "):
        raise ReleaseError(f"release id {release_id!r}: use a non-empty name without slashes or spaces")
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
