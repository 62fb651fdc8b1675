"""Fixtures of the training tests: a tiny seeded release in the DESIGN.md store layout."""

from __future__ import annotations

import sys
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).parent))

from release_builder import write_release

from spectralearth_data.catalog import sensor_names
from spectralearth_model.config import DEFAULT_SENSORS


@pytest.fixture(scope="session")
def sensors() -> list[str]:
    """The products the catalog knows, in the model's order."""
    have = set(sensor_names())
    return [s for s in DEFAULT_SENSORS if s in have]


@pytest.fixture(scope="session")
def release(tmp_path_factory, sensors) -> Path:
    """A 6-cell release with every catalog product (the last one missing in cells 2 and 5)."""
    return write_release(tmp_path_factory.mktemp("rel") / "test.zarr", sensors)


@pytest.fixture(autouse=True)
def _one_torch_thread(one_torch_thread):
    """One torch thread in-process (tests/conftest.py); subprocesses get ``OMP_NUM_THREADS=1``
    from :data:`test_train.ONE_THREAD_ENV` so their floats match."""


@pytest.fixture(scope="session")
def engine_release(tmp_path_factory) -> Path:
    """A release written by the data engine from the SYNTHESIZED demo scenes (20 cells of 960 m,
    all seven products): demo scenes -> local search -> co-location -> ``engine.tile``."""
    from spectralearth_data.colocate import colocate
    from spectralearth_data.demo import make_demo_scenes
    from spectralearth_data.engine import TileConfig, tile
    from spectralearth_data.release.validate import validate_store as validate
    from spectralearth_data.sources import search

    root = tmp_path_factory.mktemp("engine-release")
    make_demo_scenes(root / "scenes")
    plan = colocate(search(f"local:{root / 'scenes' / 'catalog.json'}", "demo"), cell_m=960)
    store = root / "demo-960m.zarr"
    summary = tile(plan, store, scheduler="synchronous", progress=False, config=TileConfig(release_id="engine-test"))
    assert summary.patches_written > 100 and not summary.failed
    assert validate(store) == []
    return store
