"""``spectralearth_data.release``: the fast shard reader serves every array the writer creates,
and the one reader's index and fill rules."""

from __future__ import annotations


import numpy as np
import pandas as pd
import pytest
import zarr

from spectralearth_data.catalog import load_sensor, sensor_names
from spectralearth_data.engine.readers import group_dtype, stored_bands
from spectralearth_data.errors import ReleaseError
from spectralearth_data.release import (
    cf_coding,
    decode_stored,
    empty_pixels,
    iter_parts,
    open_chunk_reader,
    read_index_columns,
    read_patch_index,
    shards,
)
from spectralearth_data.release import layout
from spectralearth_data.release import store as st

K = 2  # patches per shard


def _writer_group(store, sensor: str, rows: int = 3):
    """``sensor``'s group created by the writer (:func:`store.ensure_group`) with ``rows`` patches
    of seeded data written (``K`` per shard, the last shard partly: the rest stays fill)."""
    spec = load_sensor(sensor)
    bands = stored_bands(spec)
    P = spec.patch_px_for(960)
    dtype = group_dtype(bands, sensor)
    fill = bands[0].nodata if bands[0].nodata is not None else 0
    root = st.open_root(store, 960)
    st.ensure_group(root, spec, bands, st.GroupLayout(sensor, len(bands), P, K, dtype, fill), "b")
    n_shards = -(-rows // K)
    st.reserve(root, sensor, "b", n_shards)
    rng = np.random.default_rng(0)
    lo, hi = bands[0].valid_range
    for shard in range(n_shards):
        data = rng.uniform(lo, hi, size=(K, len(bands), P, P)).astype(dtype)
        mask = rng.integers(0, 4, size=(K, P, P), dtype=np.uint8)
        if shard == n_shards - 1 and rows % K:
            data[rows % K :], mask[rows % K :] = fill, 1
        st.write_shard(store, sensor, "b", shard, data, mask)
    return root[sensor]["b"]


@pytest.mark.parametrize("sensor", sensor_names())
def test_the_fast_reader_serves_every_array_the_writer_creates(tmp_path, sensor):
    """If the writer's codecs or chunking change to something :mod:`shards` does not read, this
    fails (rather than the loader silently falling back to zarr's ~7x slower path)."""
    grp = _writer_group(tmp_path / "s.zarr", sensor)
    for var in ("data", "mask"):
        reader = open_chunk_reader(tmp_path / "s.zarr" / sensor / "b" / var)
        assert reader is not None, f"{sensor}/{var}: the writer's layout is not one the fast reader reads"
        for i in range(grp[var].shape[0]):
            np.testing.assert_array_equal(reader.read(i), grp[var][i])


def test_the_fast_reader_reads_the_writers_definitions():
    assert shards.reads_writer_layout()
    assert shards.reads_writer_layout((16, 16), "uint8", 64)


def test_a_writer_codec_the_fast_reader_cannot_decode_fails_the_layout_check(tmp_path, monkeypatch):
    """What the two tests above guard against: with another compressor in the writer's
    definitions the fast reader refuses the arrays (the loader would read through zarr)."""
    monkeypatch.setattr(layout, "COMPRESSORS", ({"name": "gzip", "configuration": {"level": 1}},))
    assert not shards.reads_writer_layout()
    _writer_group(tmp_path / "s.zarr", "s2", rows=2)
    assert open_chunk_reader(tmp_path / "s.zarr" / "s2" / "b" / "data") is None


def test_index_reads_check_part_metadata_only_where_the_writer_is_assumed(tmp_path):
    """A part without the writer's metadata fails :func:`iter_parts` (resume, validate, publish)
    but is read by the plain Parquet reads (the loader, the flow's counts)."""
    store = tmp_path / "s.zarr"
    (store / st.PARTS_DIR).mkdir(parents=True)
    with pytest.raises(ReleaseError, match="no index/patches/part"):
        read_patch_index(store)
    assert read_index_columns(store, ["sensor"]).empty
    pd.DataFrame({"patch_id": ["b", "a"], "cell_id": ["c", "c"], "sensor": ["s2", "s2"],
                  "datetime": pd.to_datetime(["2024-01-01", "2024-01-02"]), "row": [1, 0],
                  "scene_id": ["x", "y"], "anchor_scene_id": ["x", "y"]}).to_parquet(
        store / st.PARTS_DIR / st.part_name("s2", 0))
    (store / st.PARTS_DIR / ".part-s2-000001.parquet.tmp").write_bytes(b"torn")  # never listed
    with pytest.raises(ReleaseError, match="without SpectralEarth metadata"):
        list(iter_parts(store))
    assert read_index_columns(store, ["sensor"])["sensor"].tolist() == ["s2", "s2"]
    idx = read_patch_index(store)
    assert idx["row"].tolist() == [0, 1] and str(idx["datetime"].dt.tz) == "UTC"


def test_one_fill_rule_for_every_reader(tmp_path):
    """``_FillValue``, else ``missing_value`` (float products), else the catalog's nodata."""
    g = zarr.open_group(str(tmp_path / "a.zarr"), mode="w", zarr_format=3)
    kw = {"shape": (1, 2, 2, 2), "dtype": "float32"}
    cases = {"_FillValue": {"_FillValue": -5.0}, "missing_value": {"missing_value": -7.0}, "none": {}}
    got = {k: cf_coding(g.create_array(k, attributes={"scale_factor": 2.0, **a}, **kw), "s1").fill
           for k, a in cases.items()}
    assert got["_FillValue"].tolist() == [-5.0, -5.0] and got["missing_value"].tolist() == [-7.0, -7.0]
    assert got["none"].tolist() == [load_sensor("s1").bands[0].nodata] * 2
    assert np.isnan(cf_coding(g["none"], "not-a-product").fill).all()
    coding = cf_coding(g["_FillValue"], "s1")
    raw = np.array([[[-5, 1], [3, -5]], [[-5, 2], [-5, 4]]], dtype=np.float32)
    np.testing.assert_array_equal(empty_pixels(raw, coding.fill), [[True, False], [False, False]])
    np.testing.assert_array_equal(decode_stored(raw, coding), np.where(raw == -5, np.nan, raw * 2))
