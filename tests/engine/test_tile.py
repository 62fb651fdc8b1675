"""tile(): plan -> sharded Zarr v3 + GeoParquet index, readable without our code; resume; append."""

from __future__ import annotations

import hashlib
import json
from pathlib import Path

import geopandas as gpd
import numpy as np
import pandas as pd
import pytest
import xarray as xr

from spectralearth_data.engine import TileConfig, tile
from spectralearth_data.grid import parse_cell_id
from spectralearth_data.release.store import locations
from spectralearth_data.release.validate import validate_store as validate
from spectralearth_data.errors import InputDataError
from spectralearth_data.schema import INDEX_COLUMNS, LOCATION_COLUMNS

from .synth import demo_cells, enmap_scene, plan_rows, s2_scene


def _plan(tmp_path: Path, cells, tag="", shift_m=0.0):
    s2_assets, _, _ = s2_scene(tmp_path / "scenes", f"S2A_{tag}1", cells, tex=3000.0)
    en_assets, _, _ = enmap_scene(tmp_path / "scenes", f"ENMAP_{tag}1", cells, tex=3000.0, pattern_shift=(shift_m, 0.0))
    s2 = plan_rows("s2", f"S2A_{tag}1", cells, s2_assets, anchor=f"ENMAP_{tag}1", when="2024-06-02T10:00:00Z")
    en = plan_rows("enmap", f"ENMAP_{tag}1", cells, en_assets)
    return pd.concat([en, s2], ignore_index=True)


def _shard_bytes(store: Path) -> dict[str, str]:
    return {str(p.relative_to(store)): hashlib.sha256(p.read_bytes()).hexdigest()
            for p in store.rglob("c/*") if p.is_file()}


@pytest.fixture(scope="module")
def release(tmp_path_factory):
    tmp = tmp_path_factory.mktemp("rel")
    cells = demo_cells(2, 2)
    plan = _plan(tmp, cells)
    plan_path = tmp / "plan.parquet"
    plan.to_parquet(plan_path)
    store = tmp / "out.zarr"
    summary = tile(plan_path, store, scheduler="synchronous", progress=False, config=TileConfig(patches_per_shard=3))
    return tmp, plan, store, summary


def test_tile_writes_every_patch_and_validates(release):
    _, _, store, summary = release
    assert summary.patches_written == 8 and summary.patches_dropped == 0
    assert validate(store) == []


def test_release_readable_with_plain_xarray_and_geopandas(release):
    _, _, store, summary = release
    idx = gpd.read_parquet(store / "index" / "patches")
    assert list(idx.columns) == list(INDEX_COLUMNS) and len(idx) == 8
    assert set(idx["licence"]) == {"enmap-data-licence", "copernicus-open"}
    assert not idx.loc[idx.sensor == "enmap", "redistributable"].any()
    # layout 2: no locations table in the store (publish derives it per version); the same table
    # is derived from the index
    assert not (store / "index" / "locations.parquet").exists()
    loc = locations(idx, 960)
    assert list(loc.columns) == list(LOCATION_COLUMNS) and len(loc) == 4
    assert set(loc["sensors"]) == {"enmap+s2"}
    # georeferenced rows: the cell's CRS and the patch grid's affine transform
    s2 = idx[idx.sensor == "s2"].iloc[0]
    cell = parse_cell_id(s2.cell_id, 960)
    assert int(s2.epsg) == cell.epsg and set(idx["batch"]) == {summary.batch}
    a, b, c, d, e, f = json.loads(s2["transform"])
    assert (a, b, d, e) == (10.0, 0.0, 0.0, -10.0) and (c, f) == (cell.bounds[0], cell.bounds[3])
    # a plain xarray user opens a batch's group: <sensor>/<batch>
    ds = xr.open_zarr(store, group=f"s2/{summary.batch}", consolidated=False)
    assert ds["data"].dims == ("patch", "band", "y", "x") and ds["data"].shape[1:] == (12, 96, 96)
    assert ds["data"].encoding["shards"] == (3, 12, 96, 96) and ds["data"].encoding["chunks"] == (1, 12, 96, 96)
    assert ds["wavelength"].values[3] == pytest.approx(664.6, abs=0.01)
    r = idx[idx.sensor == "s2"].iloc[0]
    # CF decoding gives reflectance: (DN - 1000) / 10000
    raw = xr.open_zarr(store, group=f"s2/{r.batch}", consolidated=False, mask_and_scale=False)["data"][int(r.row)].values
    dec = ds["data"][int(r.row)].values
    np.testing.assert_allclose(dec, raw * 1e-4 - 0.1, atol=1e-6)
    assert hashlib.sha256(raw.tobytes()).hexdigest() == r.sha256
    en = xr.open_zarr(store, group=f"enmap/{summary.batch}", consolidated=False)
    assert en["data"].shape[1:] == (224, 32, 32) and en["wavelength"].shape == (224,)


def test_hsi_rows_carry_a_coreg_shift(release):
    _, _, store, _ = release
    idx = gpd.read_parquet(store / "index" / "patches")
    shifts = idx.loc[idx.sensor == "enmap", "coreg_shift_px"]
    # S2 and EnMAP share one synthetic ramp, registered exactly: the shift is well below a pixel
    assert shifts.notna().all() and (shifts < 0.5).all()
    assert idx.loc[idx.sensor == "s2", "coreg_shift_px"].isna().all()


def test_coreg_detects_a_one_pixel_shift(tmp_path):
    cells = demo_cells(1)
    plan = _plan(tmp_path, cells, shift_m=30.0)
    store = tmp_path / "out.zarr"
    tile(plan, store, scheduler="synchronous", progress=False)
    idx = gpd.read_parquet(store / "index" / "patches")
    shift = idx.loc[idx.sensor == "enmap", "coreg_shift_px"].iloc[0]
    assert shift == pytest.approx(1.0, abs=0.3)


def test_rerun_skips_everything_and_append_never_rewrites_shards(release, tmp_path):
    _tmp, plan, store, _ = release
    before = _shard_bytes(store)
    again = tile(plan, store, scheduler="synchronous", progress=False, config=TileConfig(patches_per_shard=3))
    assert again.patches_written == 0 and again.patches_skipped == 8
    more_cells = [c.__class__(c.epsg, c.col + 2, c.row, c.cell_m) for c in demo_cells(2, 2)]
    extra = _plan(tmp_path, more_cells, tag="x")
    added = tile(extra, store, scheduler="synchronous", progress=False, config=TileConfig(patches_per_shard=3))
    assert added.patches_written == 8
    after = _shard_bytes(store)
    assert all(after[k] == v for k, v in before.items())
    assert validate(store) == []
    assert len(gpd.read_parquet(store / "index" / "patches")) == 16


def test_all_nodata_scene_fails_clearly_and_store_still_validates(tmp_path):
    cells = demo_cells(1)
    plan = _plan(tmp_path, cells)
    # an S2 scene whose pixels are all fill
    bad_assets, _, _ = s2_scene(tmp_path / "scenes", "S2_EMPTY", cells, nodata_box=(0, 10_000, 0, 10_000))
    bad = plan_rows("s2", "S2_EMPTY", cells, bad_assets, anchor="ENMAP_1")
    store = tmp_path / "out.zarr"
    with pytest.raises(InputDataError, match="S2_EMPTY.*nodata"):
        tile(pd.concat([plan, bad], ignore_index=True), store, scheduler="synchronous", progress=False)
    assert validate(store) == []
    assert len(gpd.read_parquet(store / "index" / "patches")) == 2


def test_plan_missing_columns_is_a_clear_error(tmp_path):
    cells = demo_cells(1)
    plan = _plan(tmp_path, cells).drop(columns=["assets"])
    with pytest.raises(InputDataError, match="missing columns.*assets"):
        tile(plan, tmp_path / "o.zarr", scheduler="synchronous", progress=False)


def test_tile_on_an_existing_distributed_scheduler(tmp_path):
    """``scheduler=ADDRESS`` (``--scheduler tcp://...``) submits the shard tasks to that cluster;
    the store equals the one an inline run writes."""
    from distributed import LocalCluster

    cells = demo_cells(2)
    plan = _plan(tmp_path, cells)
    inline = tmp_path / "inline.zarr"
    tile(plan, inline, scheduler="synchronous", progress=False, config=TileConfig(coreg=False))
    with LocalCluster(n_workers=1, threads_per_worker=2, processes=False, dashboard_address=":0") as cluster:
        remote = tmp_path / "remote.zarr"
        s = tile(plan, remote, scheduler=cluster.scheduler_address, progress=False, config=TileConfig(coreg=False))
        assert s.patches_written == 4 and s.workers == 1
    assert validate(remote) == []
    key = ["patch_id", "row", "sha256"]
    a = gpd.read_parquet(inline / "index" / "patches")[key].sort_values("patch_id", ignore_index=True)
    b = gpd.read_parquet(remote / "index" / "patches")[key].sort_values("patch_id", ignore_index=True)
    pd.testing.assert_frame_equal(a[["patch_id", "sha256"]], b[["patch_id", "sha256"]])


def test_small_scenes_share_shards_so_the_array_stays_dense(tmp_path):
    """Three S2 scenes of 2, 2 and 1 cells in shards of 4: two shards, rows 0..4 in use; a scene
    that fails inside a shared shard costs only its own patches, and a rerun adds them later."""
    import shutil

    import zarr

    cells = demo_cells(2)
    a, _, _ = s2_scene(tmp_path / "scenes", "S2_A", cells)
    b, _, _ = s2_scene(tmp_path / "scenes", "S2_B", cells)
    c, _, _ = s2_scene(tmp_path / "scenes", "S2_C", cells[:1])
    saved = tmp_path / "B04_copy.tif"
    shutil.copy(b["B04"], saved)
    Path(b["B04"]).write_bytes(b"II*\x00" + bytes(200))  # S2_B unreadable in this run
    plan = pd.concat([plan_rows("s2", "S2_A", cells, a), plan_rows("s2", "S2_B", cells, b),
                      plan_rows("s2", "S2_C", cells[:1], c)], ignore_index=True)
    store = tmp_path / "o.zarr"
    cfg = TileConfig(patches_per_shard=4, coreg=False)
    with pytest.raises(InputDataError, match=r"1 scene\(s\) failed.*S2_B"):
        tile(plan, store, scheduler="synchronous", progress=False, config=cfg)
    idx = gpd.read_parquet(store / "index" / "patches")
    assert sorted(idx["scene_id"]) == ["S2_A", "S2_A", "S2_C"] and sorted(idx["row"]) == [0, 1, 4]
    assert validate(store) == []
    shutil.copy(saved, b["B04"])  # the download is repaired
    again = tile(plan, store, scheduler="synchronous", progress=False, config=cfg)
    assert again.patches_written == 2 and again.patches_skipped == 3
    idx = gpd.read_parquet(store / "index" / "patches")
    assert len(idx) == 5 and validate(store) == []
    assert set(idx["batch"]) == {again.batch}  # same plan: the same batch resumes
    assert zarr.open_group(str(store), mode="r", use_consolidated=False)["s2"][again.batch]["data"].shape[0] == 12


def test_partitions_tile_their_own_cells_into_their_own_batch_and_config_changes_are_refused(tmp_path):
    """``partition``/``partition_cells``: each writer tiles only its cells into
    ``<partition>-<plan digest>``; a resume with another tile config names the changed keys."""
    from spectralearth_data.errors import ReleaseError

    cells = demo_cells(2, 2)
    plan = _plan(tmp_path, cells)
    store = tmp_path / "p.zarr"
    ids = sorted(plan["cell_id"].unique())
    cfg = TileConfig(patches_per_shard=3, coreg=False)
    one = tile(plan, store, scheduler="synchronous", progress=False, config=cfg, partition="p0", partition_cells=set(ids[:2]))
    two = tile(plan, store, scheduler="synchronous", progress=False, config=cfg, partition="p1", partition_cells=set(ids[2:]))
    assert one.batch.startswith("p0-") and two.batch.startswith("p1-") and one.batch != two.batch
    assert one.patches_written == two.patches_written == 4
    idx = gpd.read_parquet(store / "index" / "patches")
    assert {b: set(g["cell_id"]) for b, g in idx.groupby("batch")} == {one.batch: set(ids[:2]), two.batch: set(ids[2:])}
    assert validate(store) == []
    with pytest.raises(ReleaseError, match=r"another config \(min_valid_fraction: 0.05 -> 0.5\)"):
        tile(plan, store, scheduler="synchronous", progress=False, partition="p0", partition_cells=set(ids[:2]),
             config=TileConfig(patches_per_shard=3, coreg=False, min_valid_fraction=0.5))
    # every object a writer created is under its batch (arrays, parts, lease, record) or shared
    # create-only metadata (the root and sensor groups)
    files = {str(p.relative_to(store)) for p in store.rglob("*") if p.is_file()}
    shared = {"zarr.json", "s2/zarr.json", "enmap/zarr.json"}
    for f in files - shared:
        assert one.batch in f or two.batch in f, f


def test_the_tiling_cluster_starts_workers_with_its_malloc_settings(monkeypatch):
    """Dask's nannies set MALLOC_TRIM_THRESHOLD_, which turns off glibc's adaptive mmap threshold
    (measured: 3x the kernel time of a tiling worker). The engine's own LocalCluster starts its
    worker processes without it and with two malloc arenas, and leaves Dask's global config as
    it was."""
    import os

    import dask
    from distributed import Client

    from spectralearth_data.engine.cluster import WORKER_ENV, local_cluster

    for k in WORKER_ENV:
        monkeypatch.delenv(k, raising=False)  # an OS value would override the config
    before = dict(dask.config.get("distributed.nanny.pre-spawn-environ"))
    assert "MALLOC_TRIM_THRESHOLD_" in before  # Dask's default, the thing this guards against
    with local_cluster(1) as cluster, Client(cluster) as client:
        env = next(iter(client.run(lambda: dict(os.environ)).values()))
        assert cluster.workers and "MALLOC_TRIM_THRESHOLD_" not in env
        assert env.get("MALLOC_ARENA_MAX") == "2"
        assert env.get("OMP_NUM_THREADS") == "1"  # the rest of Dask's worker environment stays
    assert dict(dask.config.get("distributed.nanny.pre-spawn-environ")) == before
