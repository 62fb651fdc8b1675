"""``spectralearth_data.open_release`` (issue 18, item 5): one version of a release as an index and
per-product xarray datasets with the patches it commits and no padded rows."""

from __future__ import annotations

import numpy as np
import pytest
import xarray as xr
from release.publish_helpers import published_demo

import spectralearth_data as se
from spectralearth_data.errors import ReleaseError
from spectralearth_data.release import reader


@pytest.fixture(scope="module")
def store(tmp_path_factory):
    return published_demo(tmp_path_factory.getbasetemp())


def test_open_release_reads_one_version_with_its_index(store):
    r = se.open_release(store)
    assert r.version == "v000001" and r.versions() == ["v000001"]
    assert se.open_release(str(store), version=1).version == "v000001"
    committed = reader.read_index(store)
    assert sorted(r.index["patch_id"]) == sorted(committed["patch_id"])
    assert list(r.index["cell_id"]) == sorted(r.index["cell_id"])  # compacted: sorted by cell
    assert r.index.crs.to_epsg() == 4326 and {"batch", "sha256", "geometry"} <= set(r.index.columns)
    bbox = tuple(r.index.geometry.iloc[0].centroid.buffer(1e-4).bounds)
    assert set(r.read_index(bbox=bbox)["cell_id"]) == {r.index["cell_id"].iloc[0]}


def test_dataset_has_the_committed_patches_only_with_their_coordinates(store):
    r = se.open_release(store)
    ds = r.dataset("s2")
    rows = r.index[r.index["sensor"] == "s2"]
    batch = rows["batch"].iloc[0]
    raw = xr.open_zarr(store / "s2" / batch, consolidated=False, zarr_format=3)
    assert raw.sizes["patch"] > ds.sizes["patch"] == len(rows) == 2  # the array is padded, the dataset is not
    assert set(ds["patch_id"].values) == set(rows["patch_id"])
    assert set(ds["cell_id"].values) == set(rows["cell_id"]) and set(ds["epsg"].values) == {32633}
    assert ds["time"].dtype.kind == "M" and ds["wavelength"].dims == ("band",) and "fwhm" in ds.coords
    assert float(ds["wavelength"][3]) == pytest.approx(664.6, abs=2) and ds.attrs["version"] == "v000001"
    assert "SYNTHESIZED" in ds.attrs["note"]
    for i, row in enumerate(ds["row"].values):
        np.testing.assert_array_equal(ds["data"][i].values, raw["data"][int(row)].values)


def test_a_missing_version_or_product_or_release_is_one_clear_line(store, tmp_path):
    with pytest.raises(ReleaseError, match=r"no version v000007 \(published: v000001\)"):
        se.open_release(store, version="v7")
    with pytest.raises(ReleaseError, match="no 'desis' patches .*products: emit, enmap"):
        se.open_release(store).dataset("desis")
    with pytest.raises(ReleaseError, match="a version id looks like|give a version id"):
        se.open_release(store, version="latest")
    with pytest.raises(ReleaseError, match="no such folder"):
        se.open_release(tmp_path / "nowhere.zarr")


def test_a_release_never_published_opens_its_committed_commit_log(store, tmp_path):
    import shutil

    copy = tmp_path / "unpublished.zarr"
    shutil.copytree(store, copy, ignore=shutil.ignore_patterns("versions", "stac", "release.json", "README.md",
                                                               "croissant.json"))
    r = se.open_release(copy)
    assert r.version is None and r.versions() == []
    published = se.open_release(store)
    assert sorted(r.index["patch_id"]) == sorted(published.index["patch_id"])
    a, b = r.dataset("emit"), published.dataset("emit")
    assert a.attrs["version"] == "unpublished" and a.sizes == b.sizes
    assert list(a["patch_id"].values) == list(b["patch_id"].values)
    np.testing.assert_array_equal(a["data"].values, b["data"].values)
