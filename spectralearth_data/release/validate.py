"""Check a release store against its index: every index row against the data it points at.

Checks: root attributes; index parts (the commit log, every batch) readable with the contract
columns; no duplicate patch ids (release-wide) or rows (per batch); each row inside its batch's
array and inside the shard its part owns; patch shape; sha256 of the patch bytes; no infinite
values; mask consistent with the data (a pixel not flagged nodata has data) and with the stored
valid fraction; licence fields present and as the sensor group says; shards no part commits
(left by a killed writer); at least one patch (an empty release is not one); and, once published
with a layout-1 ``release.json``, that it still describes the store. Works on a local folder or
an object-store URL (:mod:`.storage`).
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

from ..masks import INVALID, MaskFlag
from ..schema import INDEX_COLUMNS
from . import reader
from .layout import PARTS_DIR
from .store import patch_sha256


def validate_store(store, check_hashes: bool = True, check_manifest: bool = True,
                   parts: list[str] | None = None) -> list[str]:
    """Problems found in ``store`` (each a line naming the patch or object); empty = valid.

    ``parts``: check only these commit-log keys (a version's), not every committed part.
    ``check_manifest=False`` leaves out the comparison with ``release.json``: for ``publish``,
    which is about to write it anew."""
    from geopandas.io.arrow import _arrow_to_geopandas

    from .storage import open_location

    try:
        loc = open_location(store, create=False)
    except Exception as e:  # noqa: BLE001 - a missing folder, an unusable URL
        return [f"{store}: not a release store ({e})"]
    if not loc.exists("zarr.json"):
        return [f"{loc.url}: not a release store (no zarr.json)"]
    problems: list[str] = []
    root = reader.open_group(loc)
    for key in ("release_id", "cell_m", "pipeline_version"):
        if key not in root.attrs:
            problems.append(f"{loc.url}: root attribute {key!r} missing")
    seen_pid: set[str] = set()
    seen_row: set[tuple[str, str, int]] = set()
    hashes: list[str] = []
    try:
        found = list(reader.iter_parts(loc, parts))
    except Exception as e:  # a corrupt part file
        return problems + [f"{loc.url}: unreadable index part ({e})"]
    arrays: dict[tuple[str, str], tuple] = {}
    for key, meta in found:
        name = key.rsplit("/", 1)[-1]
        try:
            df = _arrow_to_geopandas(reader.read_part(loc, key))
        except Exception as e:
            problems.append(f"{key}: unreadable ({e})")
            continue
        if list(df.columns) != list(INDEX_COLUMNS):
            problems.append(f"{key}: columns {list(df.columns)} differ from the index contract")
            continue
        if set(df["batch"]) - {meta["batch"]}:
            problems.append(f"{key}: rows name batch(es) {sorted(set(df['batch']) - {meta['batch']})} "
                            f"but the part commits batch {meta['batch']!r}")
            continue
        for r in df.itertuples(index=False):
            problems += _check_row(r, root, arrays, meta, seen_pid, seen_row, check_hashes, name)
            hashes.append(r.sha256)
    if not seen_pid:  # no part, or parts of dropped patches only
        problems.append(f"{loc.url}: empty release: the index has no patches (tile wrote none); "
                        "nothing to train on or publish")
    problems += _check_orphans(loc, found)
    if check_manifest and loc.local is not None:
        problems += _check_manifest(loc.local, [k for k, _ in found], hashes)
    return problems


def _check_manifest(store: Path, parts: list[str], hashes: list[str]) -> list[str]:
    """A published store whose index no longer matches its ``release.json`` (tiled again after
    publishing, or a part removed): the manifest is stale, whatever the data's own consistency."""
    import hashlib
    import json

    from .layout import MANIFEST

    path = store / MANIFEST
    if not path.exists():
        return []
    try:
        manifest = json.loads(path.read_text())
        published = manifest["release_id"], sorted(manifest["index_parts"]), manifest["content_sha256"]
    except (OSError, ValueError, KeyError, TypeError) as e:
        return [f"{path}: unreadable manifest ({type(e).__name__}: {e}); run `spectralearth publish` again"]
    release_id, was, content = published
    # the manifest lists the parts relative to index/patches (layout 2) or by file name (layout 1)
    rel = sorted(k[len(PARTS_DIR) + 1:] for k in parts)
    parts = rel if any("/" in w for w in was) or not was else sorted(k.rsplit("/", 1)[-1] for k in parts)
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


def _check_orphans(loc, parts) -> list[str]:
    """Shards holding data that no index part commits: left by a run killed between writing a
    shard and committing its part. Harmless to readers of the index (nothing points at them) and
    overwritten by the next ``tile`` run of that batch, but reported so a store is never published
    with them."""
    committed: dict[tuple[str, str], set[int]] = {}
    for _, meta in parts:
        committed.setdefault((meta["sensor"], meta["batch"]), set()).add(int(meta["shard"]))
    out = []
    for sensor in reader.sensor_groups(loc):
        for batch in reader.batches(loc, sensor):
            for var in ("data", "mask"):
                prefix = reader.array_key(sensor, batch, var) + "/c/"
                present = {int(o.key[len(prefix):].split("/", 1)[0]) for o in loc.list(prefix)
                           if o.key[len(prefix):].split("/", 1)[0].isdigit()}
                orphans = sorted(present - committed.get((sensor, batch), set()))
                if orphans:
                    out.append(f"{reader.array_key(sensor, batch, var)}: shard(s) {orphans[:10]} hold data no index "
                               "part commits (left by a killed run; the next tile run of that batch reuses the slot)")
    return out


def _arrays(root, sensor: str, batch: str, arrays: dict):
    """(data, mask, fill value per band, licence of the sensor group) of one batch, opened once."""
    if (sensor, batch) not in arrays:
        sg = root[sensor]
        g = sg[batch] if batch else sg
        lic = sg.attrs.get("licence") or root.attrs.get("licences", {}).get(sensor)
        arrays[(sensor, batch)] = (g["data"], g["mask"], reader.cf_coding(g["data"], sensor).fill, lic)
    return arrays[(sensor, batch)]


def _check_row(r, root, arrays, meta, seen_pid, seen_row, check_hashes, part) -> list[str]:
    out = []
    pid = r.patch_id
    if pid in seen_pid:
        out.append(f"{pid}: duplicate patch id ({part})")
    seen_pid.add(pid)
    batch = str(r.batch)
    if r.sensor not in root:
        return out + [f"{pid}: sensor group {r.sensor!r} missing from the store"]
    try:
        data, mask, fill, lic = _arrays(root, r.sensor, batch, arrays)
    except KeyError:
        return out + [f"{pid}: batch {batch!r} of {r.sensor} missing from the store"]
    k = data.shards[0]
    row = int(r.row)
    if (r.sensor, batch, row) in seen_row:
        out.append(f"{pid}: row {row} of {r.sensor}/{batch} is indexed twice")
    seen_row.add((r.sensor, batch, row))
    if not 0 <= row < data.shape[0]:
        return out + [f"{pid}: row {row} outside {r.sensor}/data (N={data.shape[0]})"]
    if row // k != int(meta["shard"]):
        out.append(f"{pid}: row {row} is not in shard {meta['shard']} that {part} commits")
    if not r.licence or r.redistributable not in (True, False):
        out.append(f"{pid}: licence fields missing")
    else:
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


def _first_line(e: Exception) -> str:
    lines = str(e).strip().splitlines()
    return lines[0] if lines else ""
