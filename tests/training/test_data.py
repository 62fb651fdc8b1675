"""The release loader: decoding, masks, locations, aligned augmentation, sampling, collation."""

from __future__ import annotations

import gc
import itertools
import json

import numpy as np
import pytest
import torch
import zarr

from spectralearth_data.catalog import load_sensor
from spectralearth_data.errors import ReleaseError
from release_builder import BATCH
from spectralearth_data.masks import MaskFlag
from spectralearth_model.data import (
    AlignedAugment,
    Collate,
    ReleaseDataset,
    ShardSampler,
    load_or_compute_stats,
    make_loader,
    stats_path,
)


@pytest.fixture(scope="module")
def ds(release, sensors) -> ReleaseDataset:
    return ReleaseDataset(release, sensors)


def test_every_location_and_product(ds, sensors):
    assert len(ds) == 6
    assert list(ds.locations.columns) == ["cell_id", "anchor_datetime", *sensors]
    for i in range(len(ds)):
        sample = ds[i]
        expect = sensors if i % 3 != 2 else sensors[:-1]  # the builder drops the last product there
        assert list(sample) == expect


@pytest.mark.parametrize("sensor", ["enmap", "emit", "desis", "s2", "landsat", "lst", "s1"])
def test_sample_shapes_units_and_catalog_bands(ds, release, sensor):
    if sensor not in ds.sensors:
        pytest.fail(f"catalog lacks {sensor}")
    spec = load_sensor(sensor)
    px = spec.patch_px_for(960)
    s = ds[1][sensor]
    usable = spec.usable_bands
    assert s["data"].shape == (len(usable), px, px) and s["data"].dtype == torch.float32
    assert s["mask"].shape == (px, px) and s["mask"].dtype == torch.uint8
    assert s["gsd"] == spec.gsd_m
    if usable[0].wavelength_nm is not None:
        np.testing.assert_allclose(s["wavelength"].numpy(), [b.wavelength_nm for b in usable], rtol=1e-6)
        np.testing.assert_allclose(s["fwhm"].numpy(), [b.fwhm_nm for b in usable], rtol=1e-6)
    # physical units: the stored integers of row 2 through the catalog's scale and offset
    raw = zarr.open_group(str(release), mode="r")[sensor][BATCH]["data"][2]
    keep = [i for i, b in enumerate(spec.bands) if b.usable]
    expect = raw[keep].astype(np.float64) * usable[0].scale + usable[0].offset
    np.testing.assert_allclose(s["data"].numpy(), expect, rtol=1e-5, atol=1e-5 * abs(usable[0].offset) + 1e-6)
    lo, hi = (usable[0].valid_range[i] * usable[0].scale + usable[0].offset for i in (0, 1))
    assert lo - 1e-4 <= float(s["data"].min()) and float(s["data"].max()) <= hi + 1e-4


def test_nodata_becomes_zero_with_mask_bit(ds, sensors):
    sample = ds[0]  # row 0 of every product: a nodata block top-left, cloud in the last two rows
    for sensor in sensors:
        s = sample[sensor]
        n = s["mask"].shape[0] // 2
        assert torch.all(s["mask"][:n, :n] & MaskFlag.NODATA)
        assert torch.all(s["data"][:, :n, :n] == 0)
        assert torch.all(s["mask"][-2:, n:] == MaskFlag.CLOUD)  # masks pass through
        assert not torch.any(s["mask"][n:-2] & MaskFlag.NODATA)


def test_locations_pick_the_acquisition_nearest_the_anchor(ds, release, sensors):
    import pandas as pd

    idx = pd.read_parquet(next((release / "index" / "patches").glob("*/part-*.parquet")))
    loc = ds.locations.iloc[3]
    for sensor in sensors:
        cand = idx[(idx.cell_id == loc.cell_id) & (idx.sensor == sensor)]
        dt = (pd.to_datetime(cand.datetime, utc=True) - loc.anchor_datetime).abs()
        assert loc[sensor] == cand.loc[dt.idxmin(), "row"]


def test_aligned_augment_keeps_products_coregistered():
    """A crop/flip/rotation cuts the same ground out of a 10 m, 30 m and 60 m grid."""
    aug = AlignedAugment(crop_m=480, flip=True, rot90=True)
    grids = {g: np.arange(960 // g)[None, :] * g + g / 2 + 0 * np.arange(960 // g)[:, None] for g in (10, 30, 60)}
    rows = {g: np.arange(960 // g)[:, None] * g + g / 2 + 0 * np.arange(960 // g)[None, :] for g in (10, 30, 60)}
    for seed in range(20):
        p = aug.draw(np.random.default_rng(seed), 960.0, 60.0)
        outs = {g: (AlignedAugment.apply(grids[g], g, p), AlignedAugment.apply(rows[g], g, p)) for g in grids}
        for g in (30, 60):  # block means of the 10 m grid equal the coarse grid's centres
            k = g // 10
            for a, b in zip(outs[10], outs[g]):
                coarse = a.reshape(a.shape[0] // k, k, a.shape[1] // k, k).mean(axis=(1, 3))
                np.testing.assert_allclose(coarse, b)
        assert outs[10][0].shape == (48, 48) and outs[60][0].shape == (8, 8)


def test_dataset_crop_is_applied_to_every_product(release, sensors):
    ds = ReleaseDataset(release, sensors, augment=AlignedAugment(crop_m=480))
    sample = ds[(1, 123)]
    for sensor in sensors:
        assert sample[sensor]["data"].shape[-1] == 480 // int(sample[sensor]["gsd"])
    again = ds[(1, 123)]
    assert all(torch.equal(sample[s]["data"], again[s]["data"]) for s in sensors)
    with pytest.raises(ReleaseError, match="crop of 500"):
        ReleaseDataset(release, sensors, augment=AlignedAugment(crop_m=500))


def test_sampler_epochs_ranks_and_resume(ds):
    one = ShardSampler(ds, seed=3)
    stream = list(itertools.islice(iter(one), 24))
    for e in range(4):  # every epoch visits every location once
        assert sorted(i for i, _ in stream[6 * e : 6 * e + 6]) == list(range(6))
    assert stream[:6] != stream[6:12]  # a new order each epoch
    assert stream == list(itertools.islice(iter(ShardSampler(ds, seed=3)), 24))  # deterministic
    assert [i for i, _ in stream] != [i for i, _ in itertools.islice(iter(ShardSampler(ds, seed=4)), 24)]
    # two ranks split the same global stream; a restart at position p continues it
    r0 = list(itertools.islice(iter(ShardSampler(ds, seed=3, rank=0, world_size=2)), 12))
    r1 = list(itertools.islice(iter(ShardSampler(ds, seed=3, rank=1, world_size=2)), 12))
    assert r0 == stream[0::2] and r1 == stream[1::2]
    assert list(itertools.islice(iter(ShardSampler(ds, seed=3, start=10)), 14)) == stream[10:]


def test_sampler_reads_shard_by_shard(ds):
    """Within an epoch, locations of one shard come consecutively (read locality)."""
    sampler = ShardSampler(ds, seed=0)
    order = sampler.epoch_order(0)
    shards = sampler.shard_of[order]
    changes = int(np.count_nonzero(np.diff(shards)))
    assert changes == len(np.unique(shards)) - 1


def test_collate_present_mask_and_absent_products(ds, sensors):
    batch = Collate.for_dataset(ds)([ds[i] for i in (0, 1, 2)])
    assert batch["present"].tolist() == [[True] * len(sensors)] * 2 + [[True] * (len(sensors) - 1) + [False]]
    last = batch["sensors"][sensors[-1]]
    assert torch.all(last["data"][2] == 0) and torch.all(last["mask"][2] == MaskFlag.NODATA)
    for s in sensors:
        d = batch["sensors"][s]
        assert d["data"].shape[0] == 3 and d["mask"].shape[0] == 3
        assert d["wavelength"].shape == d["fwhm"].shape == (d["data"].shape[1],)
        assert torch.equal(d["data"][0], ds[0][s]["data"]) and torch.equal(d["mask"][1], ds[1][s]["mask"])
        assert torch.equal(d["wavelength"], ds[0][s]["wavelength"]) and torch.equal(d["fwhm"], ds[0][s]["fwhm"])
    # two buffers for the whole batch (what a loader worker hands over), not one per tensor
    storages = {t.untyped_storage().data_ptr() for d in batch["sensors"].values()
                for t in (d["data"], d["mask"], d["wavelength"], d["fwhm"])}
    assert len(storages) == 2


def test_loader_workers_give_identical_batches(ds):
    """0 and 2 worker processes (each opening the store lazily) yield the same batches."""
    ds_aug = ReleaseDataset(ds.release.path, ds.sensors, augment=AlignedAugment())
    got = []
    for workers in (0, 2):
        it = iter(make_loader(ds_aug, 4, workers=workers, seed=7))
        got.append([next(it) for _ in range(3)])
        del it  # shut the workers down now, not at some later garbage collection
        gc.collect()
    for a, b in zip(*got):
        assert torch.equal(a["present"], b["present"])
        for s in ds.sensors:
            assert torch.equal(a["sensors"][s]["data"], b["sensors"][s]["data"])


def test_stats_computed_once_and_stored_beside_release(ds, sensors):
    path = stats_path(ds.release.path)
    path.unlink(missing_ok=True)
    stats = load_or_compute_stats(ds)
    assert path.exists() and path.parent == ds.release.path.parent
    doc = json.loads(path.read_text())
    assert doc["release_id"] == "test-release" and set(doc["sensors"]) == set(sensors)
    data, _ = ds.read_patch(sensors[0], 3)
    lay = ds.release.products[sensors[0]]
    assert len(stats["sensors"][sensors[0]]["mean"]) == lay.channels
    # the mean over the sampled patches lies inside the range of the decoded data
    mean = np.asarray(stats["sensors"][sensors[0]]["mean"])
    assert np.all(mean > data.min()) and np.all(mean < data.max())
    mtime = path.stat().st_mtime_ns
    assert load_or_compute_stats(ds) == stats and path.stat().st_mtime_ns == mtime  # not recomputed


def test_missing_release_and_missing_product(tmp_path, release):
    with pytest.raises(ReleaseError, match=r"release .*nowhere.zarr does not exist"):
        ReleaseDataset(tmp_path / "nowhere.zarr", ["enmap"])
    with pytest.raises(ReleaseError, match=r"lacks product\(s\) hyperion"):
        ReleaseDataset(release, ["enmap", "hyperion"])
    (tmp_path / "empty.zarr").mkdir()
    with pytest.raises(ReleaseError, match="empty.zarr"):
        ReleaseDataset(tmp_path / "empty.zarr", ["enmap"])


def _layout(bands, scale, offset, fill):
    from spectralearth_data.release import ProductLayout

    n = len(bands)
    return ProductLayout("enmap", tuple(bands), np.asarray(scale, np.float32), np.asarray(offset, np.float32),
                         np.asarray(fill, np.float64), np.zeros(n, np.float32), np.zeros(n, np.float32),
                         30.0, 4, 4, 1)


@pytest.mark.parametrize("dtype", ["int16", "uint16", "float32"])
def test_decode_matches_the_cf_formula(dtype):
    """Band selection, per-band scale/offset, fill in any selected band -> nodata, NaN -> nodata."""
    from spectralearth_data.release import decode

    rng = np.random.default_rng(0)
    raw = rng.integers(1, 1000, size=(5, 4, 4)).astype(dtype)
    raw[1, 0, 0] = 9999  # fill in a selected band
    raw[2, 1, 1] = 9999  # fill in a band that is not selected: not nodata
    if dtype == "float32":
        raw[3, 2, 2] = np.nan
    lay = _layout([0, 1, 3], [0.5, 0.25, 2.0], [0.0, 1.0, -3.0], [9999, 9999, np.nan])
    out, nodata = decode(raw, lay)
    expect = raw[[0, 1, 3]].astype(np.float32) * lay.scale[:, None, None] + lay.offset[:, None, None]
    bad = np.zeros((4, 4), bool)
    bad[0, 0] = True
    if dtype == "float32":
        bad[2, 2] = True
    expect[:, bad] = 0.0
    np.testing.assert_array_equal(nodata, bad)
    np.testing.assert_array_equal(out, expect)
    assert out.dtype == np.float32
    # the usable bands alone give the same result; a fill the dtype cannot hold is ignored
    np.testing.assert_array_equal(decode(raw[[0, 1, 3]], lay)[0], out)
    if dtype != "float32":
        odd = _layout([0, 1, 3], [1, 1, 1], [0, 0, 0], [-1e9, 1e9, 0.5])
        assert not decode(raw, odd)[1].any()


def test_batched_reads_equal_sample_by_sample_reads(ds):
    """``__getitems__`` (what the DataLoader calls per batch: one read of all its patches) returns
    exactly the samples ``ds[key]`` returns one by one, augmentation included."""
    ds_aug = ReleaseDataset(ds.release.path, ds.sensors, augment=AlignedAugment())
    keys = [(i % len(ds_aug), 1000 + i) for i in range(6)]
    batch = ds_aug.__getitems__(keys)
    assert len(batch) == len(keys)
    for key, got in zip(keys, batch):
        want = ds_aug[key]
        assert set(got) == set(want)
        for s in want:
            assert torch.equal(got[s]["data"], want[s]["data"]) and torch.equal(got[s]["mask"], want[s]["mask"])
    assert any(not torch.equal(batch[0][s]["data"], batch[1][s]["data"]) for s in batch[0] if s in batch[1])
