"""Check a release store against its index: every index row against the data it points at.

Checks: root attributes; index parts readable with the contract columns; no duplicate patch ids
or rows; each row inside its sensor array and inside the shard its part owns; patch shape;
sha256 of the patch bytes; no infinite values; mask consistent with the data (a pixel not flagged
nodata has data) and with the stored valid fraction; licence fields present and as the catalog
says; every indexed cell in locations.parquet; at least one patch (an empty release is not one);
and, once published, that ``release.json`` still describes the store (its index parts and
content hash), so a store re-tiled after publishing is not taken for the published release.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

from ..masks import INVALID, MaskFlag
from ..schema import INDEX_COLUMNS
from . import reader
from .layout import LOCATIONS
from .store import patch_sha256


def validate_store(store, check_hashes: bool = True, check_manifest: bool = True) -> list[str]:
    """Problems found in ``store`` (each a line naming the patch or file); empty = valid.

    ``check_manifest=False`` leaves out the comparison with ``release.json``: for ``publish``,
    which is about to write it anew."""
    import geopandas as gpd

    store = Path(store)
    if not (store / "zarr.json").exists():
        return [f"{store}: not a release store (no zarr.json)"]
    problems: list[str] = []
    root = reader.open_group(store)
    for key in ("release_id", "cell_m", "pipeline_version"):
        if key not in root.attrs:
            problems.append(f"{store}: root attribute {key!r} missing")
    seen_pid: set[str] = set()
    seen_row: set[tuple[str, int]] = set()
    cells: set[str] = set()
    hashes: list[str] = []
    try:
        parts = list(reader.iter_parts(store))
    except Exception as e:  # a corrupt part file
        return problems + [f"{store}: unreadable index part ({e})"]
    arrays: dict[str, tuple] = {}
    for path, meta in parts:
        try:
            df = gpd.read_parquet(path)
        except Exception as e:
            problems.append(f"{path.name}: unreadable ({e})")
            continue
        if list(df.columns) != list(INDEX_COLUMNS):
            problems.append(f"{path.name}: columns {list(df.columns)} differ from the index contract")
            continue
        for r in df.itertuples(index=False):
            problems += _check_row(r, root, arrays, meta, seen_pid, seen_row, check_hashes, path.name)
            cells.add(r.cell_id)
            hashes.append(r.sha256)
    if not seen_pid:  # no part, or parts of dropped patches only
        problems.append(f"{store}: empty release: the index has no patches (tile wrote none); "
                        "nothing to train on or publish")
    problems += _check_locations(store, cells)
    problems += _check_orphans(store, parts)
    if check_manifest:
        problems += _check_manifest(store, [p.name for p, _ in parts], hashes)
    return problems


def _check_manifest(store: Path, parts: list[str], hashes: list[str]) -> list[str]:
    """A published store whose index no longer matches its ``release.json`` (tiled again after
    publishing, or a part removed): the manifest is stale, whatever the data's own consistency."""
    import hashlib
    import json

    from .publish import MANIFEST

    path = store / MANIFEST
    if not path.exists():
        return []
    try:
        manifest = json.loads(path.read_text())
        published = manifest["release_id"], sorted(manifest["index_parts"]), manifest["content_sha256"]
    except (OSError, ValueError, KeyError, TypeError) as e:
        return [f"{path}: unreadable manifest ({type(e).__name__}: {e}); run `spectralearth publish` again"]
    release_id, was, content = published
    added, removed = sorted(set(parts) - set(was)), sorted(set(was) - set(parts))
    changed = []
    if added:
        changed.append(f"{len(added)} index part(s) added, e.g. {added[0]}")
    if removed:
        changed.append(f"{len(removed)} removed, e.g. {removed[0]}")
    if not changed and hashlib.sha256("\n".join(sorted(hashes)).encode()).hexdigest() != content:
        changed.append("the patch hashes differ from its content_sha256")
    if not changed:
        return []
    return [f"{path}: stale, the store changed after it was published as {release_id!r} ({'; '.join(changed)}); "
            f"run `spectralearth publish {store} --release-id {release_id}` again"]


def _check_orphans(store: Path, parts) -> list[str]:
    """Shards holding data that no index part commits: left by a run killed between writing a
    shard and committing its part. Harmless to readers of the index (nothing points at them) and
    overwritten by the next ``tile`` run, but reported so a store is never published with them."""
    committed: dict[str, set[int]] = {}
    for _, meta in parts:
        committed.setdefault(meta["sensor"], set()).add(int(meta["shard"]))
    out = []
    for sensor in reader.sensor_groups(store):
        for var in ("data", "mask"):
            chunks = store / sensor / var / "c"
            present = {int(p.name) for p in chunks.iterdir() if p.name.isdigit()} if chunks.is_dir() else set()
            orphans = sorted(present - committed.get(sensor, set()))
            if orphans:
                out.append(f"{sensor}/{var}: shard(s) {orphans[:10]} hold data no index part commits "
                           "(left by a killed run; the next tile run that needs a shard reuses the slot)")
    return out


def _arrays(root, sensor: str, arrays: dict):
    """(data, mask, fill value per band) of ``sensor``, opened once per validation."""
    if sensor not in arrays:
        g = root[sensor]
        arrays[sensor] = (g["data"], g["mask"], reader.cf_coding(g["data"], sensor).fill)
    return arrays[sensor]


def _check_row(r, root, arrays, meta, seen_pid, seen_row, check_hashes, part) -> list[str]:
    out = []
    pid = r.patch_id
    if pid in seen_pid:
        out.append(f"{pid}: duplicate patch id ({part})")
    seen_pid.add(pid)
    if r.sensor not in root:
        return out + [f"{pid}: sensor group {r.sensor!r} missing from the store"]
    data, mask, fill = _arrays(root, r.sensor, arrays)
    k = data.shards[0]
    row = int(r.row)
    if (r.sensor, row) in seen_row:
        out.append(f"{pid}: row {row} of {r.sensor} is indexed twice")
    seen_row.add((r.sensor, row))
    if not 0 <= row < data.shape[0]:
        return out + [f"{pid}: row {row} outside {r.sensor}/data (N={data.shape[0]})"]
    if row // k != int(meta["shard"]):
        out.append(f"{pid}: row {row} is not in shard {meta['shard']} that {part} commits")
    if not r.licence or r.redistributable not in (True, False):
        out.append(f"{pid}: licence fields missing")
    else:
        lic = root.attrs.get("licences", {}).get(r.sensor)
        if lic and (lic["id"] != r.licence or bool(lic["redistributable"]) != bool(r.redistributable)):
            out.append(f"{pid}: licence {r.licence!r} differs from the store's {lic['id']!r}")
    try:
        patch = data[row]
        m = mask[row]
    except Exception as e:  # a torn or overwritten shard fails in the codec (zstd, crc32c, ...)
        return out + [f"{pid}: row {row} of {r.sensor} cannot be decoded (torn shard?): {type(e).__name__}: {_first_line(e)}"]
    if check_hashes and patch_sha256(patch) != r.sha256:
        out.append(f"{pid}: sha256 of row {row} does not match the index (torn or overwritten patch)")
    if patch.dtype.kind == "f" and not np.isfinite(patch).all():
        out.append(f"{pid}: non-finite values (NaN/inf) in row {row}; missing pixels must hold the fill value")
    empty = reader.empty_pixels(patch, fill)  # all False for a product without a fill value
    if (empty & ((m & int(MaskFlag.NODATA)) == 0)).any():
        out.append(f"{pid}: pixels with no data are not flagged nodata in the mask")
    vf = float(((m & int(INVALID)) == 0).mean())
    if abs(vf - float(r.valid_fraction)) > 1e-6:
        out.append(f"{pid}: valid_fraction {r.valid_fraction:.4f} but the mask says {vf:.4f}")
    return out


def _check_locations(store: Path, cells: set[str]) -> list[str]:
    import geopandas as gpd

    path = store / LOCATIONS
    if not cells:
        return []
    if not path.exists():
        return [f"{path}: missing"]
    loc = gpd.read_parquet(path)
    missing = sorted(cells - set(loc["cell_id"]))
    return [f"{path.name}: cells {missing[:5]} are indexed but not in the locations table"] if missing else []


def _first_line(e: Exception) -> str:
    lines = str(e).strip().splitlines()
    return lines[0] if lines else ""
