"""Fixtures of the training tests: a tiny seeded release in the DESIGN.md store layout."""

from __future__ import annotations

import sys
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).parent))

from release_builder import write_release  # noqa: E402

from spectralearth_data.catalog import sensor_names  # noqa: E402
from spectralearth_model.config import DEFAULT_SENSORS  # noqa: E402


@pytest.fixture(scope="session")
def sensors() -> list[str]:
    """The products the catalog knows, in the model's order."""
    have = set(sensor_names())
    return [s for s in DEFAULT_SENSORS if s in have]


@pytest.fixture(scope="session")
def release(tmp_path_factory, sensors) -> Path:
    """A 6-cell release with every catalog product (the last one missing in cells 2 and 5)."""
    return write_release(tmp_path_factory.mktemp("rel") / "test.zarr", sensors)
