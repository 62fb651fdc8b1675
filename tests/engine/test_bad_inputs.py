"""Bad scenes in a plan: a clear error naming the scene, the good scenes written, a valid store."""

from __future__ import annotations

import subprocess
from pathlib import Path

import geopandas as gpd
import numpy as np
import pandas as pd
import pytest

from spectralearth_data.engine import TileConfig, tile
from spectralearth_data.release.validate import validate_store as validate
from spectralearth_data.errors import InputDataError

from .synth import CLI, cover_transform, demo_cells, plan_rows, s2_scene, write_tif
from .synth import one_error_line as _one_line
from .synth import run_cli as _cli


def _break(case: str, assets: dict, tmp_path) -> int:
    """Damage the B04 asset of a scene as ``case`` says; returns the EPSG its item should claim."""
    target = assets["B04"]
    if case == "corrupt-cog":
        Path(target).write_bytes(b"II*\x00" + bytes(range(256)) * 40)
    elif case == "truncated":
        data = Path(target).read_bytes()
        Path(target).write_bytes(data[: len(data) // 2])
    elif case == "missing-crs":
        write_tif(tmp_path / "nocrs.tif", np.full((1, 40, 40), 2000, np.uint16), __import__("affine").Affine(10, 0, 0, 0, -10, 0), None)
        assets["B04"] = str(tmp_path / "nocrs.tif")
    elif case == "wrong-crs":
        return 32632  # the item says zone 32, the raster is in zone 33
    return 32633


@pytest.mark.parametrize("case", ["corrupt-cog", "truncated", "missing-crs", "wrong-crs"])
def test_bad_scene_fails_clearly_and_store_validates(tmp_path, case):
    cells = demo_cells(2)
    good, _, _ = s2_scene(tmp_path / "scenes", "S2_OK", cells)
    bad, _, _ = s2_scene(tmp_path / "scenes", "S2_BROKEN", cells)
    epsg = _break(case, bad, tmp_path)
    plan = pd.concat([plan_rows("s2", "S2_OK", cells, good), plan_rows("s2", "S2_BROKEN", cells, bad, epsg=epsg)], ignore_index=True)
    store = tmp_path / "o.zarr"
    with pytest.raises(InputDataError, match=r"1 scene\(s\) failed.*S2_BROKEN") as e:
        tile(plan, store, scheduler="synchronous", progress=False, config=TileConfig(patches_per_shard=2))
    assert "\n" not in str(e.value)
    assert validate(store) == []
    idx = gpd.read_parquet(store / "index" / "patches")
    assert set(idx["scene_id"]) == {"S2_OK"} and len(idx) == 2


def test_cli_bad_scene_is_one_error_line_exit_2_and_rerun_keeps_the_good(tmp_path):
    cells = demo_cells(2)
    good, _, _ = s2_scene(tmp_path / "scenes", "S2_OK", cells)
    bad, _, _ = s2_scene(tmp_path / "scenes", "S2_BROKEN", cells)
    _break("corrupt-cog", bad, tmp_path)
    plan = tmp_path / "p.parquet"
    pd.concat([plan_rows("s2", "S2_OK", cells, good), plan_rows("s2", "S2_BROKEN", cells, bad)], ignore_index=True).to_parquet(plan)
    store = tmp_path / "o.zarr"
    args = [*CLI, "tile", str(plan), "--store", str(store), "--scheduler", "synchronous", "--no-progress"]
    r = subprocess.run(args, capture_output=True, text=True, check=False)
    assert r.returncode == 2
    assert r.stderr.strip().startswith("error:") and "S2_BROKEN" in r.stderr and "Traceback" not in r.stderr
    assert len(r.stderr.strip().splitlines()) == 1
    assert validate(store) == []
    # a rerun retries only the failed scene (it failed again: nothing was committed for it)
    with pytest.raises(InputDataError, match="S2_BROKEN"):
        tile(plan, store, scheduler="synchronous", progress=False)
    assert len(gpd.read_parquet(store / "index" / "patches")) == 2


# -- plans that give an empty release (issue 20, items 3 and 4) -----------------------------------------


def test_empty_plan_is_an_error_and_creates_no_store(tmp_path):
    from spectralearth_data.colocate import empty_plan

    plan = tmp_path / "empty.parquet"
    empty_plan().to_parquet(plan)
    store = tmp_path / "o.zarr"
    line = _one_line(_cli("tile", plan, "--store", store, "--scheduler", "synchronous", "--no-progress"))
    assert f"plan {plan}: no rows, nothing to tile" in line and "--cell-m" in line, line
    assert not store.exists()


def test_a_cell_not_in_the_plan_is_named_as_such(tmp_path):
    cells = demo_cells(2)
    assets, _, _ = s2_scene(tmp_path / "scenes", "S2_OK", cells)
    plan = tmp_path / "p.parquet"
    plan_rows("s2", "S2_OK", cells, assets).to_parquet(plan)
    store = tmp_path / "o.zarr"
    tile(plan, store, scheduler="synchronous", progress=False)  # a 960 m store
    before = sorted(p.name for p in (store / "index" / "patches").iterdir())
    line = _one_line(_cli("tile", plan, "--store", store, "--cell", "32633_99999_99999", "--scheduler", "synchronous"))
    assert f"cell 32633_99999_99999: not in the plan {plan} (2 cells of 960 m, e.g. {min(c.id for c in cells)})" in line
    assert "cell_m" not in line  # not the old, misleading size mismatch
    assert sorted(p.name for p in (store / "index" / "patches").iterdir()) == before and validate(store) == []


def test_every_patch_dropped_is_an_error_naming_the_thresholds(tmp_path):
    cells = demo_cells(2)
    _, shape = cover_transform(cells, 10.0)  # the scene's grid (s2_scene writes every band at 10 m)
    cloudy, _, _ = s2_scene(tmp_path / "scenes", "S2_CLOUDY", cells, scl=np.full((1, *shape), 9, np.uint8))
    plan = tmp_path / "p.parquet"
    plan_rows("s2", "S2_CLOUDY", cells, cloudy).to_parquet(plan)
    store = tmp_path / "o.zarr"
    args = ["tile", plan, "--store", store, "--scheduler", "synchronous", "--no-progress", "--max-cloud", "0.5"]
    line = _one_line(_cli(*args))
    assert f"{store}: no patches written, all 2 dropped by the QA thresholds" in line, line
    assert "--min-valid" in line and "--max-cloud" in line
    # a rerun does not retry dropped patches: it says why the store is still empty
    line = _one_line(_cli(*args))
    assert "holds no patches: an earlier run dropped all 2" in line and "new --store" in line, line
    assert validate(store) == [f"{store}: empty release: the index has no patches (tile wrote none); "
                               "nothing to train on or publish"]
