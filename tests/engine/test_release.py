"""A finished release: export honours licences, publish writes the manifest, quicklook draws a
location, and the release opens over HTTP with plain xarray (the object-storage read path)."""

from __future__ import annotations

import hashlib
import json
import shutil
from pathlib import Path

import geopandas as gpd
import numpy as np
import pytest
import xarray as xr
from PIL import Image
from servers.http_range import serve

from spectralearth_data.engine import TileConfig, tile
from spectralearth_data.release.export import export
from spectralearth_data.release.publish import publish
from spectralearth_data.release.quicklook import quicklook
from spectralearth_data.release.store import locations
from spectralearth_data.release.validate import validate_store as validate
from spectralearth_data.errors import ReleaseError

from .synth import demo_cells
from .synth import one_error_line as _one_line
from .synth import run_cli as _cli
from .test_tile import _plan


@pytest.fixture(scope="module")
def store(tmp_path_factory):
    tmp = tmp_path_factory.mktemp("release")
    out = tmp / "r1.zarr"
    tile(_plan(tmp, demo_cells(2)), out, scheduler="synchronous", progress=False, config=TileConfig(patches_per_shard=2))
    return out


def _digest(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def test_export_leaves_out_enmap_and_copies_shards_byte_for_byte(store, tmp_path):
    out = export(store, tmp_path / "open.zarr")
    assert validate(out) == []
    assert (out / "s2").is_dir() and not (out / "enmap").exists()
    idx = gpd.read_parquet(out / "index" / "patches")
    assert set(idx["sensor"]) == {"s2"} and idx["redistributable"].all() and len(idx) == 2
    root = json.loads((out / "zarr.json").read_text())["attributes"]
    assert root["left_out"] == ["enmap"] and set(root["licences"]) == {"s2"}
    for p in (store / "s2").rglob("*"):
        if p.is_file():
            assert _digest(p) == _digest(out / p.relative_to(store))
    assert set(locations(idx, 960)["sensors"]) == {"s2"}
    with pytest.raises(ReleaseError, match="already exists"):
        export(store, out)


def test_publish_writes_a_manifest_with_a_content_id(store, tmp_path):
    copy = tmp_path / "r.zarr"
    shutil.copytree(store, copy)
    manifest = json.loads(publish(copy, "se-mm-test-1").read_text())
    idx = gpd.read_parquet(copy / "index" / "patches")
    assert manifest["release_id"] == "se-mm-test-1" and manifest["patches"] == len(idx) == 4
    assert manifest["content_sha256"] == hashlib.sha256("\n".join(sorted(idx["sha256"])).encode()).hexdigest()
    assert manifest["sensors"]["enmap"]["redistributable"] is False and manifest["sensors"]["s2"]["shape"] == [12, 96, 96]
    with pytest.raises(ReleaseError, match="without slashes"):
        publish(copy, "bad id")


def test_publish_refuses_a_store_that_does_not_validate(store, tmp_path):
    copy = tmp_path / "r.zarr"
    shutil.copytree(store, copy)
    idx = gpd.read_parquet(copy / "index" / "patches")
    r = idx[idx.sensor == "s2"].iloc[0]
    for shard in (copy / "s2" / r.batch / "data" / "c").iterdir():  # committed data lost
        shutil.rmtree(shard)
    with pytest.raises(ReleaseError, match="not published.*sha256"):
        publish(copy, "x")
    assert not (copy / "release.json").exists()


def test_quicklook_draws_every_product_of_a_location(store, tmp_path):
    cell = demo_cells(2)[0].id
    png = quicklook(store, cell, tmp_path / "q.png")
    with Image.open(png) as im:
        w, h = im.size
        px = np.asarray(im.convert("RGB"))
    assert w > 2.5 * h  # s2 RGB, enmap RGB and the HSI mean spectrum side by side
    assert px.std() > 10  # not a blank canvas
    with pytest.raises(ReleaseError, match="no patches for cell"):
        quicklook(store, "32633_00000_00000", tmp_path / "none.png")


def test_release_opens_over_http_with_plain_xarray(store):
    """What a user of a release on object storage does: xarray + fsspec, none of our code."""
    batch = gpd.read_parquet(store / "index" / "patches")["batch"].iloc[0]
    with serve(store.parent) as srv:
        url = f"{srv.url}/{store.name}"
        # a batch opens as a store of its own, with its consolidated metadata: no folder listing
        ds = xr.open_zarr(f"{url}/s2/{batch}")
        local = xr.open_zarr(store, group=f"s2/{batch}", consolidated=False)
        xr.testing.assert_identical(ds.load(), local.load())
        idx = gpd.read_parquet(f"{url}/index/patches/{batch}/part-s2-000000.parquet")
    assert len(idx) == 2


@pytest.mark.parametrize("sensor", ["desis", "emit", "enmap", "landsat", "lst", "s1", "s2"])
def test_every_product_group_opens_with_plain_xarray(tmp_path, sensor):
    """The CF attributes the store writes for each catalog product decode in plain xarray: one
    patch of fill values comes back all NaN, one valid DN decodes with scale_factor/add_offset."""
    import warnings

    from spectralearth_data.catalog import load_sensor
    from spectralearth_data.engine.readers import group_dtype
    from spectralearth_data.release import store as st

    spec = load_sensor(sensor)
    b0 = spec.bands[0]
    root = st.open_root(tmp_path / "s.zarr", 960)
    st.ensure_group(root, spec, spec.bands, st.GroupLayout(sensor, len(spec.bands), 8, 2, group_dtype(spec.bands, sensor), b0.nodata), "b")
    st.reserve(root, sensor, "b", 1)
    dn = np.asarray(b0.valid_range[0] + 1, dtype=b0.dtype)
    root[sensor]["b"]["data"][1, :, :, :] = dn
    st.consolidate_batch(root, sensor, "b")  # as tile() does at the end of a run
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        ds = xr.open_zarr(tmp_path / "s.zarr" / sensor / "b")
        data = ds["data"].values
    assert np.isnan(data[0]).all()
    np.testing.assert_allclose(data[1], float(dn) * b0.scale + b0.offset, rtol=1e-6)
    assert ds["wavelength"].shape == (len(spec.bands),)


# -- empty, renamed and stale releases (issue 20, items 3 and 10) -------------------------------------


def test_an_empty_store_does_not_validate_and_is_not_published(tmp_path):
    from spectralearth_data.release import store as st

    empty = tmp_path / "empty.zarr"
    st.open_root(empty, 960, "empty")  # what `tile` of an empty plan used to leave behind
    r = _cli("validate", empty)
    assert r.returncode == 1 and f"{empty}: empty release: the index has no patches" in r.stdout, r.stdout
    assert "valid" not in r.stdout.replace("empty release", "")
    line = _one_line(_cli("publish", empty, "--release-id", "nothing"))
    assert f"{empty}: empty release: the index has no patches (tile wrote none); not published" in line
    assert not (empty / "release.json").exists()


def test_publish_does_not_rename_a_published_release_unless_asked(store, tmp_path):
    copy = tmp_path / "r.zarr"
    shutil.copytree(store, copy)
    publish(copy, "first")
    before = (copy / "release.json").read_bytes()
    line = _one_line(_cli("publish", copy, "--release-id", "second"))
    assert f"{copy}: already published as 'first'; publishing it as 'second' would rename the release" in line
    assert "--rename" in line and "--release-id first" in line
    assert (copy / "release.json").read_bytes() == before
    from spectralearth_data.release.versions import NothingNew

    with pytest.raises(NothingNew, match="nothing new since v000001"):  # versions: nothing new, no new version
        publish(copy, "first")
    assert (copy / "release.json").read_bytes() == before
    r = _cli("publish", copy, "--release-id", "second", "--rename")
    assert r.returncode == 0, r.stderr
    assert json.loads((copy / "release.json").read_text())["release_id"] == "second"


def test_validate_finds_a_manifest_made_stale_by_tiling_again(store, tmp_path):
    copy = tmp_path / "r.zarr"
    shutil.copytree(store, copy)
    publish(copy, "r1")
    assert validate(copy) == []
    # one more cell tiled into the published store: its data is consistent, release.json is not
    more = tile(_plan(tmp_path, demo_cells(3)), copy, scheduler="synchronous", progress=False,
                config=TileConfig(patches_per_shard=2))
    assert more.patches_written == 2 and more.patches_skipped == 4
    problems = validate(copy)
    assert len(problems) == 1 and problems[0].startswith(f"{copy / 'release.json'}: stale, the store changed "
                                                         "after it was published as 'r1' (2 index part(s) added")
    assert f"spectralearth publish {copy} --release-id r1" in problems[0]
    r = _cli("validate", copy)
    assert r.returncode == 1 and "stale" in r.stdout and "valid\n" not in r.stdout
    # changed bytes under the same parts are stale too
    manifest = json.loads((copy / "release.json").read_text())
    publish(copy, "r1")
    assert validate(copy) == []
    doctored = json.loads((copy / "release.json").read_text())
    doctored["content_sha256"] = manifest["content_sha256"]  # the hash of the 4-patch release
    (copy / "release.json").write_text(json.dumps(doctored))
    assert "the patch hashes differ from its content_sha256" in validate(copy)[0]
