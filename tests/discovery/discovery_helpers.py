"""Paths and small helpers shared by the discovery tests (unique module name on purpose)."""

from __future__ import annotations

import json
import sys
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[2]
if str(REPO) not in sys.path:
    sys.path.insert(0, str(REPO))

FIX = REPO / "tests/data/fixtures"
PC_ITEMS = FIX / "stac/planetary_computer/items"
COLORADO = FIX / "stac/earth_search/colocated_colorado_20231008"
EMIT_ITEMS = FIX / "emit/emit_cmr_stac_L1BRAD_L2ARFL_20240201T174151_2403212_032.geojson"
#: The recorded real CMR response (3 EMITL2ARFL V001 granules, UMM-G as earthaccess returned them;
#: tests/data/fixtures/MANIFEST.md). The replay server serves these records unchanged.
CMR_RECORDS = FIX / "emit/emit_l2a_umm_3granules.json"


def write_region(path: Path, bbox: tuple[float, float, float, float], name: str = "test") -> Path:
    """A region GeoJSON file for a lon/lat box."""
    x0, y0, x1, y1 = bbox
    ring = [[x0, y0], [x1, y0], [x1, y1], [x0, y1], [x0, y0]]
    doc = {"type": "Feature", "properties": {"name": name}, "geometry": {"type": "Polygon", "coordinates": [ring]}}
    path.write_text(json.dumps(doc))
    return path


def run(monkeypatch, capsys, *args: str) -> tuple[int, str, str]:
    """Run the ``spectralearth`` console script in-process: (exit code, stdout, stderr)."""
    from spectralearth_data.cli import main

    monkeypatch.setattr(sys, "argv", ["spectralearth", *args])
    with pytest.raises(SystemExit) as exit_info:
        main()
    out, err = capsys.readouterr()
    return exit_info.value.code or 0, out, err
