"""One demo build per test session (through the real CLI), shared by the demo tests."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from typer.testing import CliRunner

from spectralearth_data.cli import app

FIXTURES = Path(__file__).resolve().parents[1] / "data" / "fixtures"


@pytest.fixture(scope="session")
def demo_run(tmp_path_factory) -> tuple[Path, str]:
    """``(out_dir, cli output)`` of ``spectralearth demo-scenes --out DIR --seed 0``."""
    out = tmp_path_factory.mktemp("demo") / "scenes"
    result = CliRunner().invoke(app, ["demo-scenes", "--out", str(out), "--seed", "0"])
    assert result.exit_code == 0, result.output
    return out, result.output


@pytest.fixture(scope="session")
def demo_dir(demo_run) -> Path:
    return demo_run[0]


@pytest.fixture(scope="session")
def demo_items(demo_dir) -> dict[str, list[dict]]:
    """Item JSON per collection id, read as plain JSON (what a STAC client would see)."""
    items: dict[str, list[dict]] = {}
    for path in sorted(demo_dir.glob("*/*/*.json")):
        doc = json.loads(path.read_text())
        doc["_path"] = str(path)
        items.setdefault(doc["collection"], []).append(doc)
    return items


def _real_asset_keys(name: str) -> set[str]:
    files = {
        "s2": "stac/planetary_computer/items/sentinel-2-l2a_4items.geojson",
        "landsat": "stac/planetary_computer/items/landsat-c2-l2_4items.geojson",
        "s1": "stac/planetary_computer/items/sentinel-1-rtc_4items.geojson",
        "emit": "emit/emit_cmr_stac_L1BRAD_L2ARFL_20240201T174151_2403212_032.geojson",
    }
    doc = json.loads((FIXTURES / files[name]).read_text())
    return set().union(*(f["assets"] for f in doc["features"]))


@pytest.fixture(scope="session")
def real_asset_keys():
    """``f(product) -> asset keys`` of the real recorded provider items (tests/data/fixtures)."""
    return _real_asset_keys
