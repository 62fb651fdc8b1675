"""Acceptance of issue 18 items 3-5 on a local S3-compatible server (moto): the demo's first period
tiled straight into ``s3://`` and published as v000001, its second period added and published as
v000002 with zero rewritten objects (every object of v1 keeps its bytes and entity tag), v1 still
reads byte for byte through ``open_release(url, version="v000001")``, and plain xarray, geopandas
and DuckDB read the release without our code. Nothing here reaches real AWS."""

from __future__ import annotations

import json

import numpy as np
import pytest
from release.publish_helpers import (
    demo_plan,
    moto_s3,
    new_bucket,
    period,
    restore_env,
    rewritten,
    s3_env,
    s3fs_options,
    set_env,
    tile_into,
)
from release.publish_helpers import listing as _listing

import spectralearth_data as se
from spectralearth_data.release import versions as vs
from spectralearth_data.release.publish import LATEST_POINTERS, publish
from spectralearth_data.release.storage import open_location

pytestmark = pytest.mark.slow  # ~40 s: two tile runs and two publishes through the S3 server


@pytest.fixture(scope="module")
def endpoint():
    with moto_s3() as url:
        old = set_env(s3_env(url))
        try:
            yield url
        finally:
            restore_env(old)


def _etags(url: str) -> dict[str, str | None]:
    return {o.key: o.etag for o in open_location(url).list("")}


def _bytes_of(ds) -> dict[str, bytes]:
    return {pid: ds["data"].sel(patch=i).values.tobytes() for i, pid in enumerate(ds["patch_id"].values)}


@pytest.fixture(scope="module")
def s3_release(endpoint, tmp_path_factory):
    plan = demo_plan(tmp_path_factory.getbasetemp() / "demo-scenes")
    url = f"s3://{new_bucket(endpoint)}/releases/demo.zarr"
    tile_into(period(plan, 1), url)
    publish(url, "demo-s3")
    v1 = se.open_release(url)
    state = {"listing": _listing(url), "etags": _etags(url), "index": v1.index,
             "s2": _bytes_of(v1.dataset("s2").load()), "emit": _bytes_of(v1.dataset("emit").load())}
    tile_into(period(plan, 2), url)
    publish(url)
    return url, state


def test_v2_rewrites_no_object_and_v1_reads_byte_identically(s3_release):
    url, before = s3_release
    after, etags = _listing(url), _etags(url)
    assert rewritten(before["listing"], after, LATEST_POINTERS) == []
    assert [k for k, e in before["etags"].items() if k not in LATEST_POINTERS and etags[k] != e] == []
    new = sorted(set(after) - set(before["listing"]))
    assert "versions/v000002.json" in new and any(k.startswith("index/patches/") for k in new)
    r1 = se.open_release(url, version="v000001")
    assert r1.version == "v000001" and r1.versions() == ["v000001", "v000002"]
    assert r1.index.to_wkb().equals(before["index"].to_wkb())
    assert _bytes_of(r1.dataset("s2").load()) == before["s2"]
    assert _bytes_of(r1.dataset("emit").load()) == before["emit"]
    r2 = se.open_release(url)
    assert r2.version == "v000002" and len(r2.index) > len(r1.index)
    c = r2.index.geometry.iloc[0].centroid
    near = r2.read_index(bbox=(c.x - 1e-3, c.y - 1e-3, c.x + 1e-3, c.y + 1e-3))  # ranged reads
    assert set(near["cell_id"]) == {r2.index["cell_id"].iloc[0]}
    emit2 = r2.dataset("emit")
    assert emit2.sizes["patch"] == int((r2.index["sensor"] == "emit").sum()) > len(before["emit"])
    assert set(np.unique(emit2["batch"].values)) == set(r2.index.loc[r2.index["sensor"] == "emit", "batch"])
    with pytest.raises(vs.NothingNew, match="nothing new since v000002"):
        publish(url)


def test_plain_xarray_geopandas_and_duckdb_read_the_release(s3_release, endpoint):
    import duckdb
    import geopandas as gpd
    import s3fs
    import xarray as xr

    url, _ = s3_release
    opts = s3fs_options(endpoint)
    record = json.loads(open_location(url).get("versions/v000002.json"))
    r2 = se.open_release(url)
    s2 = r2.index[r2.index["sensor"] == "s2"].iloc[0]
    ds = xr.open_zarr(f"{url}/s2/{s2['batch']}", storage_options=opts, consolidated=False, zarr_format=3)
    ours = r2.dataset("s2")
    i = list(ours["patch_id"].values).index(s2["patch_id"])
    np.testing.assert_array_equal(ds["data"][int(s2["row"])].values, ours["data"][i].values)
    assert list(ds["wavelength"].values) == list(ours["wavelength"].values)
    keys = [e["key"] for e in record["index"]]
    c = s2.geometry.centroid
    inside = (c.x - 1e-3, c.y - 1e-3, c.x + 1e-3, c.y + 1e-3)  # within the cell (neighbours share its edges)
    gdf = gpd.read_parquet(f"{url}/{keys[0]}", storage_options=opts, bbox=inside)
    assert s2["patch_id"] in set(gdf["patch_id"]) and set(gdf["cell_id"]) == {s2["cell_id"]}
    parts = gpd.read_parquet(f"{url}/{record['partitions']}", storage_options=opts)
    assert sorted(parts["key"]) == sorted(keys) and int(parts["n_patches"].sum()) == record["patches"]
    con = duckdb.connect()
    con.register_filesystem(s3fs.S3FileSystem(**opts))
    files = ", ".join(f"'{url}/{k}'" for k in keys)
    n, = con.execute(f"SELECT count(*) FROM read_parquet([{files}])").fetchone()
    assert n == record["patches"] == len(r2.index)
    xmin, ymin, xmax, ymax = inside
    rows = con.execute(f"SELECT DISTINCT cell_id FROM read_parquet([{files}]) WHERE bbox.xmin <= {xmax} AND "
                   f"bbox.xmax >= {xmin} AND bbox.ymin <= {ymax} AND bbox.ymax >= {ymin}").fetchall()
    assert {c for c, in rows} == set(gdf["cell_id"])


def test_stac_croissant_and_card_are_written_beside_it(s3_release):
    url, _ = s3_release
    loc = open_location(url)
    col = json.loads(loc.get("stac/collection.json"))
    assert col["spectralearth:version"] == "v000002" and col["description"].startswith("SYNTHESIZED")
    assert json.loads(loc.get("croissant.json"))["version"] == "2.0.0"
    card = loc.get("README.md").decode()
    assert card.startswith("> **SYNTHESIZED") and url in card
