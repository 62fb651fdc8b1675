"""Session fixtures of the reliability suite and its end-of-session summary table."""

from __future__ import annotations

import time

import pytest

from .harness import CELLS, Demo, fingerprint, run_cli
from .ledger import LEDGER


@pytest.fixture(scope="session")
def demo(tmp_path_factory) -> Demo:
    """Demo scenes -> search -> colocate (library calls), then one clean CLI tile of 2 cells."""
    from spectralearth_data.colocate import colocate, write_plan
    from spectralearth_data.demo import make_demo_scenes
    from spectralearth_data.sources import search, write_scenes

    root = tmp_path_factory.mktemp("reliability")
    scenes_dir = root / "D"
    make_demo_scenes(scenes_dir)
    scenes = search(f"local:{scenes_dir / 'catalog.json'}", "demo")
    scenes_path = write_scenes(scenes, root / "scenes.parquet")
    plan = colocate(scenes, cell_m=960)
    plan_path = root / "plan.parquet"
    write_plan(plan, plan_path)
    small = plan[plan["cell_id"].isin(CELLS)]
    assert set(small["sensor"]) == {"enmap", "emit", "desis", "s2", "landsat", "lst", "s1"}
    small_path, cog_path = root / "small.parquet", root / "cog.parquet"
    write_plan(small, small_path)
    write_plan(small[small["sensor"] != "emit"], cog_path)
    store = root / "clean.zarr"
    t0 = time.perf_counter()
    r = run_cli("tile", small_path, "--store", store, "--scheduler", "synchronous", "--no-progress")
    seconds = time.perf_counter() - t0
    assert r.returncode == 0, r.stderr
    clean = fingerprint(store)
    assert len(clean) >= 10
    return Demo(scenes_dir, scenes_path, plan_path, small_path, cog_path, store, clean, seconds)


def pytest_terminal_summary(terminalreporter, exitstatus, config):
    if not LEDGER.entries:
        return
    terminalreporter.section("reliability: faults injected, survived, data lost")
    for line in LEDGER.table():
        terminalreporter.write_line(line)
