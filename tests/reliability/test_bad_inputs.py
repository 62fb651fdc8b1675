"""Bad inputs: each one stops with one clear ``error:`` line (exit 2, no traceback unless
``--debug``) naming the input, and nothing already in the release is lost."""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from spectralearth_data.cli import main
from spectralearth_data.release.validate import validate_store as validate

from . import scenes as sc
from .harness import copy_store, fingerprint, lost, one_line_error, run_cli
from .ledger import LEDGER


def run_main(args: list[str], capfd, monkeypatch) -> subprocess.CompletedProcess:
    """The real ``main()`` entry point, in this process (fast), output captured at fd level."""
    monkeypatch.delenv("SPECTRALEARTH_DEBUG", raising=False)
    monkeypatch.setattr(sys, "argv", ["spectralearth", *map(str, args)])
    code = 0
    try:
        main()
    except SystemExit as e:
        code = e.code if isinstance(e.code, int) else 1
    out, err = capfd.readouterr()
    return subprocess.CompletedProcess(args, code, out, err)


@pytest.fixture()
def store(demo, tmp_path):
    """A copy of the clean release: bad input must leave it as it was."""
    return copy_store(demo.clean_store, tmp_path / "release.zarr")


def _tile(plan, store):
    return ["tile", plan, "--store", store, "--scheduler", "synchronous", "--no-progress"]


def _check_intact(store, demo, name):
    after = fingerprint(store)
    n = lost(demo.clean, after)
    assert n == 0 and set(after) == set(demo.clean), f"{name}: committed patches changed"
    assert validate(store) == [], name
    LEDGER.record("bad input", name, injected=1, survived=True, lost=n)


# -- broken scenes, tiled into an existing release --------------------------------------------------

SCENE_CASES = {
    # name: (sensor, asset key, damage, expected message)
    "corrupt-cog": ("s2", "B04", lambda p: Path(p).write_bytes(np.random.default_rng(0).bytes(4096)), r"B04\.tif: cannot read raster"),
    "zero-byte-file": ("s2", "B04", lambda p: Path(p).write_bytes(b""), r"B04\.tif: cannot read raster"),
    "missing-crs": ("s2", "B04", lambda p: sc.rewrite(p, sc.no_crs), r"B04\.tif: raster has no CRS"),
    "wrong-crs": ("s2", "B04", lambda p: sc.rewrite(p, sc.wrong_crs), r"B04\.tif: raster CRS is .*32632.* says EPSG:32633"),
    "band-count": ("enmap", "spectral_image", lambda p: sc.rewrite(p, sc.fewer_bands), r"spectral_image\.tif: has 10 bands"),
}


@pytest.mark.parametrize("case", list(SCENE_CASES))
def test_broken_scene(case, demo, store, tmp_path, capfd, monkeypatch):
    sensor, key, damage, message = SCENE_CASES[case]
    plan, rows, assets = sc.broken_plan(demo.small_plan, sensor, tmp_path, case)
    damage(assets[key])
    r = run_main(_tile(sc.write(rows, plan), store), capfd, monkeypatch)
    line = one_line_error(r)
    assert re.search(r"scene(?: task)?\(s\) failed; the rest were written", line), line
    assert re.search(message, line), line
    _check_intact(store, demo, case)


def test_all_nodata_scene(demo, store, tmp_path, capfd, monkeypatch):
    plan, rows, assets = sc.broken_plan(demo.small_plan, "s2", tmp_path, "nodata")
    for key, path in assets.items():
        if key != "SCL":
            sc.rewrite(path, sc.all_nodata)
    line = one_line_error(run_main(_tile(sc.write(rows, plan), store), capfd, monkeypatch))
    assert "every pixel is nodata" in line and "nodata" in rows.iloc[0]["scene_id"]
    _check_intact(store, demo, "all-nodata")


def test_item_missing_an_asset(demo, store, tmp_path, capfd, monkeypatch):
    plan, rows, assets = sc.broken_plan(demo.small_plan, "s2", tmp_path, "noasset")
    del assets["B04"]
    line = one_line_error(run_main(_tile(sc.write(rows, plan, assets), store), capfd, monkeypatch))
    assert "no asset B04" in line
    _check_intact(store, demo, "missing-asset")


def test_nan_and_inf_in_float_data(demo, store, tmp_path, capfd, monkeypatch):
    """Sentinel-1 gamma0 is float32: NaN/Inf pixels must end up flagged, never stored as Inf."""
    plan, rows, assets = sc.broken_plan(demo.small_plan, "s1", tmp_path, "naninf")
    for path in assets.values():
        sc.rewrite(path, sc.with_nan_inf)
    r = run_main(_tile(sc.write(rows, plan), store), capfd, monkeypatch)
    if r.returncode != 0:
        assert "s1" in one_line_error(r)
    problems = validate(store)
    assert problems == [], problems[:3]
    import zarr

    data = np.concatenate([zarr.open_array(str(d), mode="r")[:] for d in store.glob("s1/*/data")])
    assert not np.isinf(data).any()
    new = set(fingerprint(store)) - set(demo.clean)
    assert r.returncode != 0 or new  # either refused clearly or written (flagged)
    if new:  # the NaN/Inf pixels are flagged, not counted as valid
        import geopandas as gpd

        from spectralearth_data.masks import INVALID

        idx = gpd.read_parquet(store / "index" / "patches")
        r = idx.loc[idx["patch_id"].isin(new)].iloc[0]
        mask = zarr.open_array(str(store), path=f"s1/{r['batch']}/mask", mode="r")[int(r["row"])]
        assert ((mask & int(INVALID)) != 0).mean() > 0.05
    after = fingerprint(store)
    n = lost(demo.clean, after)
    assert n == 0
    LEDGER.record("bad input", "nan-inf", injected=1, survived=True, lost=n)


def test_plan_that_is_not_parquet(demo, store, tmp_path, capfd, monkeypatch):
    bad = tmp_path / "plan.parquet"
    bad.write_text("cell_id,sensor\n")
    line = one_line_error(run_main(_tile(bad, store), capfd, monkeypatch))
    assert str(bad) in line and "not a GeoParquet plan" in line
    _check_intact(store, demo, "corrupt-plan")


def test_a_cell_that_is_not_in_the_plan(demo, store, capfd, monkeypatch):
    """Issue 20.4: ``--cell`` of no cell of the plan said ``store has cell_m=960 but the plan has
    cell_m=3840``; the cell is simply not in the plan."""
    r = run_main([*_tile(demo.plan, store), "--cell", "32633_99999_99999"], capfd, monkeypatch)
    line = one_line_error(r)
    assert f"cell 32633_99999_99999: not in the plan {demo.plan}" in line and "cells of 960 m" in line, line
    assert "cell_m=3840" not in line
    _check_intact(store, demo, "cell-not-in-plan")


def test_read_only_release_path(demo, store, tmp_path):
    """A release folder the user cannot write: a clean ReleaseError before anything is touched.
    Run as root, the CLI gets no CAP_DAC_OVERRIDE, so the folder's mode applies as it would to a
    normal user."""
    prefix = []
    if os.geteuid() == 0:
        prefix = ["setpriv", "--inh-caps=-dac_override,-dac_read_search,-fowner",
                  "--bounding-set=-dac_override,-dac_read_search,-fowner", "--"]
    new = tmp_path / "ro"
    new.mkdir()
    for p in [store, *store.rglob("*")]:
        if p.is_dir():
            p.chmod(0o555)
    new.chmod(0o555)
    try:
        r = run_cli(*_tile(demo.small_plan, new / "r.zarr"), prefix=prefix)
        assert str(new / "r.zarr") in one_line_error(r) and "cannot create the release folder" in r.stderr
        r = run_cli(*_tile(demo.cog_plan, store), prefix=prefix)
        line = one_line_error(r)
        assert str(store) in line and "not writable" in line
    finally:
        for p in [new, store, *store.rglob("*")]:
            if p.is_dir():
                p.chmod(0o755)
    _check_intact(store, demo, "read-only")


# -- bad search requests ----------------------------------------------------------------------------

def _region(tmp_path: Path, name: str, coords) -> Path:
    path = tmp_path / f"{name}.geojson"
    path.write_text(json.dumps({"type": "Feature", "properties": {"name": name},
                                "geometry": {"type": "Polygon", "coordinates": [coords]}}))
    return path


SEARCH_CASES = {
    "malformed-geojson": (lambda t: [(t / "bad.geojson").write_text('{"type": "Feature", "geometry": '),
                                     "--region", t / "bad.geojson"][1:],
                          r"bad\.geojson: not valid JSON"),
    "reversed-dates": (lambda t: ["--region", "demo", "--start", "2024-07-01", "--end", "2024-06-01"], r"start 2024-07-01 is after end 2024-06-01"),
    "unknown-product": (lambda t: ["--region", "demo", "--sensors", "enmapp"], r"unknown product\(s\) \['enmapp'\]; known products: desis"),
    "unknown-region": (lambda t: ["--region", "atlantis"], r"unknown region 'atlantis'; known regions: .*demo"),
}


@pytest.mark.parametrize("case", list(SEARCH_CASES))
def test_bad_search(case, demo, tmp_path, capfd, monkeypatch):
    make, message = SEARCH_CASES[case]
    out = tmp_path / "scenes.parquet"
    args = ["search", "--source", f"local:{demo.scenes_dir / 'catalog.json'}", *make(tmp_path), "-o", out]
    line = one_line_error(run_main(args, capfd, monkeypatch))
    assert re.search(message, line), line
    assert not out.exists()
    LEDGER.record("bad input", case, injected=1, survived=True)


def _item(scene_id: str, ring) -> dict:
    return {"type": "Feature", "stac_version": "1.0.0", "id": scene_id, "collection": "sentinel-2-l2a",
            "geometry": {"type": "Polygon", "coordinates": [ring]}, "bbox": None, "links": [],
            "properties": {"datetime": "2024-06-10T10:15:59Z", "eo:cloud_cover": 1.0, "spectralearth:sensor": "s2"},
            "assets": {"B04": {"href": f"{scene_id}/B04.tif"}}}


EDGE_ITEMS = [
    _item("FIJI_ACROSS", [[179.8, -17.2], [-179.8, -17.2], [-179.8, -16.8], [179.8, -16.8], [179.8, -17.2]]),
    _item("DECOY_LON0", [[0.0, -16.7], [0.4, -16.7], [0.4, -16.3], [0.0, -16.3], [0.0, -16.7]]),
    _item("POLAR_86N", [[10.0, 86.0], [20.0, 86.0], [20.0, 87.0], [10.0, 87.0], [10.0, 86.0]]),
    _item("DECOY_50N", [[10.0, 50.0], [11.0, 50.0], [11.0, 51.0], [10.0, 51.0], [10.0, 50.0]]),
]


@pytest.mark.parametrize("case,want", [("antimeridian", "FIJI_ACROSS"), ("polar", "POLAR_86N")])
def test_edge_regions_find_exactly_their_scenes(case, want, tmp_path, capfd, monkeypatch):
    """A region across the antimeridian or over a pole is legal input: the search finds the scene
    there and not the decoys a naive lon/lat polygon would catch (a band around the globe)."""
    coords = {
        "antimeridian": [[179.5, -17.5], [-179.5, -17.5], [-179.5, -16.0], [179.5, -16.0], [179.5, -17.5]],
        "polar": [[-180, 85], [180, 85], [180, 90], [-180, 90], [-180, 85]],
    }[case]
    catalog = tmp_path / "items.json"
    catalog.write_text(json.dumps({"type": "FeatureCollection", "features": EDGE_ITEMS}))
    out = tmp_path / "scenes.parquet"
    args = ["search", "--source", f"local:{catalog}", "--region", _region(tmp_path, case, coords), "-o", out]
    r = run_main(args, capfd, monkeypatch)
    assert r.returncode == 0, r.stderr
    import geopandas as gpd

    assert list(gpd.read_parquet(out)["scene_id"]) == [want]
    LEDGER.record("bad input", case, injected=1, survived=True)


def test_debug_shows_the_traceback(demo, tmp_path):
    r = run_cli("--debug", "search", "--source", f"local:{demo.scenes_dir / 'catalog.json'}", "--region", "atlantis",
                "-o", tmp_path / "s.parquet")
    assert r.returncode != 0 and "Traceback" in r.stderr and "unknown region 'atlantis'" in r.stderr
