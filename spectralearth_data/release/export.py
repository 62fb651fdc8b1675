"""Export the redistributable part of a release (the ``licence``/``redistributable`` columns).

Sensor groups are copied byte for byte (shards are not re-encoded), together with their index
parts; products whose licence forbids redistribution (EnMAP, DESIS) are left out. The locations
table is rebuilt for what was exported.
"""

from __future__ import annotations

import shutil
from pathlib import Path

from ..errors import ReleaseError
from . import reader
from . import store as st


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
    shutil.copy2(store / "zarr.json", out / "zarr.json")
    for sensor in keep:
        shutil.copytree(store / sensor, out / sensor)
    (out / st.PARTS_DIR).mkdir(parents=True)
    for p, meta in reader.iter_parts(store):
        if meta["sensor"] in keep:
            shutil.copy2(p, out / st.PARTS_DIR / p.name)
    dst = reader.open_group(out, mode="a")
    lic = {k: v for k, v in src.attrs.get("licences", {}).items() if k in keep}
    dst.attrs.update({"sensors": keep, "licences": lic, "exported_from": src.attrs.get("release_id"), "left_out": drop})
    st.write_locations(out, int(src.attrs["cell_m"]))
    st.consolidate(out)
    return out
