"""Bad scenes in a plan: a clear error naming the scene, the good scenes written, a valid store."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import geopandas as gpd
import numpy as np
import pandas as pd
import pytest

from spectralearth_data.engine import TileConfig, tile
from spectralearth_data.release.validate import validate_store as validate
from spectralearth_data.errors import InputDataError

from .synth import demo_cells, plan_rows, s2_scene, write_tif

CLI = [sys.executable, "-c", "from spectralearth_data.cli import main; main()"]


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
