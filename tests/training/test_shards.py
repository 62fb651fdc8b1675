"""``spectralearth_data.release.shards``: direct patch reads must equal zarr's, bit for bit."""

from __future__ import annotations

import shutil
from pathlib import Path

import numpy as np
import pytest
import torch
import zarr

from spectralearth_data.errors import ReleaseError
from spectralearth_data.release.shards import open_chunk_reader
from spectralearth_model.data import ReleaseDataset


def _arrays(store: Path):
    """(folder relative to the store, name, array) of every patch array: ``<sensor>/data`` (layout 1)
    or ``<sensor>/<batch>/data`` (layout 2)."""
    root = zarr.open_group(str(store), mode="r")
    for sensor, grp in root.groups():
        groups = [(sensor, grp)] if "data" in grp else [(f"{sensor}/{b}", g) for b, g in grp.groups() if "data" in g]
        for folder, g in groups:
            yield folder, "data", g["data"]
            yield folder, "mask", g["mask"]


def _first_array(store: Path, sensor: str, name: str) -> Path:
    return min(p.parent for p in (store / sensor).rglob(f"{name}/zarr.json"))


@pytest.mark.parametrize("which", ["engine", "builder"])
def test_every_row_of_every_array_equals_zarr(which, engine_release, release):
    """Every row, including the reserved rows of a partly filled shard and never-written shards
    (the fill value), for the engine's release and the test builder's."""
    store = engine_release if which == "engine" else release
    seen = 0
    for sensor, name, arr in _arrays(store):
        reader = open_chunk_reader(store / sensor / name)
        assert reader is not None, f"{sensor}/{name}: layout not read directly"
        for row in range(arr.shape[0]):
            got, want = reader.read(row), arr[row]
            assert got.dtype == want.dtype and got.shape == want.shape
            np.testing.assert_array_equal(got, want, err_msg=f"{sensor}/{name}[{row}]")
            assert got.flags.writeable
            seen += 1
    assert seen > 100


def test_a_patch_of_a_shard_not_yet_written_is_the_fill_value(tmp_path):
    arr = zarr.create_array(str(tmp_path / "a"), shape=(8, 2, 4, 4), chunks=(1, 2, 4, 4), shards=(4, 2, 4, 4),
                            dtype="int16", fill_value=-999)
    arr[0:4] = np.arange(4 * 32, dtype="int16").reshape(4, 2, 4, 4)
    arr[1] = -999  # an empty chunk inside a written shard (zarr leaves it out of the shard)
    reader = open_chunk_reader(tmp_path / "a")
    for row in range(8):
        np.testing.assert_array_equal(reader.read(row), arr[row])
    assert (reader.read(6) == -999).all() and (reader.read(1) == -999).all()
    with pytest.raises(IndexError, match="patch 8 outside"):
        reader.read(8)


@pytest.mark.parametrize("kind", ["gzip", "unsharded", "chunk-of-two"])
def test_other_layouts_are_left_to_zarr(tmp_path, kind):
    kw = {"shape": (4, 2, 4, 4), "dtype": "uint16"}
    if kind == "gzip":
        kw.update(chunks=(1, 2, 4, 4), shards=(2, 2, 4, 4), compressors=[zarr.codecs.GzipCodec()])
    elif kind == "unsharded":
        kw.update(chunks=(1, 2, 4, 4))
    else:
        kw.update(chunks=(2, 2, 4, 4), shards=(4, 2, 4, 4))
    zarr.create_array(str(tmp_path / "a"), **kw)
    assert open_chunk_reader(tmp_path / "a") is None
    assert open_chunk_reader(tmp_path / "missing") is None


def test_a_torn_shard_index_is_a_clear_error(engine_release, tmp_path):
    store = tmp_path / "copy.zarr"
    shutil.copytree(engine_release, store)
    data = _first_array(store, "s2", "data")
    shard = next(p for p in (data / "c").rglob("*") if p.is_file())
    raw = bytearray(shard.read_bytes())
    raw[-5] ^= 0xFF  # one bit pattern of the index changed: its crc32c no longer matches
    shard.write_bytes(bytes(raw))
    reader = open_chunk_reader(data)
    with pytest.raises(ReleaseError, match=r"shard index does not match its crc32c"):
        reader.read(0)


def test_dataset_samples_are_the_same_with_and_without_direct_reads(engine_release):
    sensors = ("enmap", "emit", "desis", "s2", "landsat", "lst", "s1")
    fast = ReleaseDataset(engine_release, sensors)
    slow = ReleaseDataset(engine_release, sensors, direct_reads=False)
    assert fast._readers("s2") is not None and slow._readers("s2") is None
    for i in range(len(fast)):
        a, b = fast[(i, 7)], slow[(i, 7)]
        assert set(a) == set(b)
        for s in a:
            assert torch.equal(a[s]["data"], b[s]["data"]) and torch.equal(a[s]["mask"], b[s]["mask"])
