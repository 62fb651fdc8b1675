"""Export the redistributable part of a release (the ``licence``/``redistributable`` columns).

Sensor groups are copied byte for byte (shards are not re-encoded), together with their index
parts and batch records; products whose licence forbids redistribution (EnMAP, DESIS) are left
out. The root group gets the export's own attributes at creation (it is never updated later).
"""

from __future__ import annotations

import json
import shutil
from pathlib import Path

from ..errors import ReleaseError
from . import reader
from .layout import batch_record_key


def export(store, out, redistributable_only: bool = True) -> Path:
    """Copy ``store`` to ``out`` without the products that may not be redistributed."""
    store, out = Path(store), Path(out)
    if not (store / "zarr.json").exists():
        raise ReleaseError(f"{store}: not a release store (no zarr.json)")
    if out.exists():
        raise ReleaseError(f"{out}: already exists; export writes a new folder")
    idx = reader.read_index(store)
    keep: list[str] = []
    drop: list[str] = []
    for sensor, grp in idx.groupby("sensor", sort=True):
        ok = bool(grp["redistributable"].all())
        (keep if ok or not redistributable_only else drop).append(sensor)
    src = reader.open_group(store)
    out.mkdir(parents=True)
    root = json.loads((store / "zarr.json").read_text())
    lic = {s: src[s].attrs.get("licence") for s in keep}
    root["attributes"] = {**root.get("attributes", {}), "exported_from": src.attrs.get("release_id"),
                          "sensors": keep, "licences": lic, "left_out": drop}
    (out / "zarr.json").write_text(json.dumps(root, indent=2))
    for sensor in keep:
        shutil.copytree(store / sensor, out / sensor)
    batches = set()
    for key, meta in reader.iter_parts(store):
        if meta["sensor"] in keep:
            (out / key).parent.mkdir(parents=True, exist_ok=True)
            shutil.copy2(store / key, out / key)
            batches.add(meta["batch"])
    for b in sorted(batches):
        rec = store / batch_record_key(b)
        if rec.exists():
            (out / rec.relative_to(store)).parent.mkdir(parents=True, exist_ok=True)
            shutil.copy2(rec, out / rec.relative_to(store))
    return out
