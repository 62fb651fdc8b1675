"""``spectralearth search`` / ``spectralearth colocate`` through the console entry point: outputs,
and user errors printed as one ``error: ...`` line with exit code 2."""

from __future__ import annotations

import json

import geopandas as gpd
import pytest
from discovery_helpers import COLORADO, run, write_region

from spectralearth_data.schema import PLAN_COLUMNS, SCENE_COLUMNS
from tests.servers import FaultProxy

TASMANIA = (146.0, -45.0, 152.0, -37.0)


@pytest.fixture
def colorado_items(tmp_path):
    path = tmp_path / "items.json"
    items = [json.loads(p.read_text()) for p in sorted(COLORADO.glob("*.json"))]
    path.write_text(json.dumps({"type": "FeatureCollection", "features": items}))
    return path


def test_search_then_colocate_local_items(monkeypatch, capsys, tmp_path, colorado_items):
    region = write_region(tmp_path / "colorado.geojson", (-106.5, 39.0, -102.5, 41.5))
    scenes_path, plan_path = tmp_path / "scenes.parquet", tmp_path / "plan.parquet"
    code, out, _ = run(monkeypatch, capsys, "search", "--source", f"local:{colorado_items}", "--region", str(region),
                       "--start", "2023-10-01", "--end", "2023-10-31", "--sensors", "s2,landsat", "-o", str(scenes_path))
    assert code == 0 and "2 scenes from local" in out and "landsat: 1, s2: 1" in out
    assert tuple(gpd.read_parquet(scenes_path).columns) == SCENE_COLUMNS

    code, out, _ = run(monkeypatch, capsys, "colocate", str(scenes_path), "-o", str(plan_path), "--anchor", "s2",
                       "--window-days", "landsat=1", "--cell-m", "3840", "--region", str(region))
    assert code == 0, out
    plan = gpd.read_parquet(plan_path)
    assert tuple(plan.columns) == PLAN_COLUMNS
    assert plan.groupby("sensor")["cell_id"].nunique().to_dict() == {"landsat": 282, "s2": 729}
    summary = json.loads((tmp_path / "plan.summary.json").read_text())
    assert summary["per_product"]["landsat"]["cells"] == 282 and summary["per_hsi_combo"] == {"none": 729}
    assert summary["windows_days"] == {"landsat": 1.0, "s2": 30.0}
    assert "729 cells, 1 anchor scenes, 1011 plan rows (sources: local)" in out
    assert "time windows: landsat +/-1 d, s2 +/-30 d" in out
    png = (tmp_path / "plan.coverage.png").read_bytes()
    assert png.startswith(b"\x89PNG\r\n\x1a\n") and len(png) > 10_000


def test_colocate_without_hsi_explains_what_to_do(monkeypatch, capsys, tmp_path, colorado_items):
    region = write_region(tmp_path / "colorado.geojson", (-106.5, 39.0, -102.5, 41.5))
    scenes_path = tmp_path / "scenes.parquet"
    run(monkeypatch, capsys, "search", "--source", f"local:{colorado_items}", "--region", str(region), "-o", str(scenes_path))
    code, out, err = run(monkeypatch, capsys, "colocate", str(scenes_path), "-o", str(tmp_path / "plan.parquet"))
    # issue 20.3: an empty plan is an error (it only became an empty release further down)
    (line,) = err.strip().splitlines()
    assert code == 2 and line.startswith(f"error: {scenes_path}: no co-located cells, no plan written: no "
                                         "hyperspectral scenes to anchor the cells (products present: landsat"), line
    assert line.endswith("give --anchor s2 (or another product present) to anchor on it"), line
    assert not (tmp_path / "plan.parquet").exists()


def test_colocate_demo_scenes_with_cells_larger_than_the_scenes_names_a_cell_size(monkeypatch, capsys, tmp_path):
    """Issue 20.3: the SYNTHESIZED demo scenes are about 5 km across; the default 3840 m cells do
    not fit in them. The error says so and names a size that fits; an earlier plan stays."""
    from spectralearth_data.demo import make_demo_scenes

    make_demo_scenes(tmp_path / "scenes")
    scenes_path, plan_path = tmp_path / "scenes.parquet", tmp_path / "plan.parquet"
    code, _, err = run(monkeypatch, capsys, "search", "--source", "demo", "--demo-dir", str(tmp_path / "scenes"),
                       "--region", "demo", "-o", str(scenes_path))
    assert code == 0, err
    code, out, _ = run(monkeypatch, capsys, "colocate", str(scenes_path), "-o", str(plan_path), "--cell-m", "960")
    assert code == 0 and "20 cells" in out  # the README's example
    before = plan_path.read_bytes()
    code, out, err = run(monkeypatch, capsys, "colocate", str(scenes_path), "-o", str(plan_path))
    assert code == 2 and len(err.strip().splitlines()) == 1, err
    assert "no 3840 m cell is fully covered by one of the 6 anchor scene(s)" in err
    assert "the cells are larger than the scenes allow; use smaller cells, e.g. --cell-m 1920" in err
    assert plan_path.read_bytes() == before


def test_search_stac_api_by_url(monkeypatch, capsys, tmp_path, stac_api):
    region = write_region(tmp_path / "tas.geojson", TASMANIA)
    code, out, _ = run(monkeypatch, capsys, "search", "--source", "planetary-computer", "--url", stac_api,
                       "--region", str(region), "--sensors", "landsat", "--max-cloud", "30", "-o", str(tmp_path / "s.parquet"))
    assert code == 0 and "2 scenes from planetary-computer" in out


def test_failing_server_is_one_error_line(monkeypatch, capsys, tmp_path, stac_api):
    region = write_region(tmp_path / "tas.geojson", TASMANIA)
    out_path = tmp_path / "s.parquet"
    with FaultProxy(stac_api, always=503) as proxy:
        code, out, err = run(monkeypatch, capsys, "search", "--source", "planetary-computer", "--url", proxy.url,
                             "--retries", "1", "--region", str(region), "-o", str(out_path))
    assert code == 2 and out == ""
    assert err.count("\n") == 1 and "Traceback" not in err
    assert err.startswith("error: source 'planetary-computer' (http://127.0.0.1:") and "after 1 retries" in err
    assert len(proxy.log) == 2 and not out_path.exists()


@pytest.mark.parametrize("args, message", [
    pytest.param(["search", "--source", "demo", "--region", "{region}", "-o", "x.parquet"], "region.geojson: not valid JSON",
                 id="malformed-region"),
    pytest.param(["search", "--source", "nope", "--region", "demo", "-o", "x.parquet"], "unknown source 'nope'",
                 id="unknown-source"),
    pytest.param(["search", "--source", "demo", "--region", "demo", "--start", "2024-13-01", "-o", "x.parquet"],
                 "date '2024-13-01': not an ISO date", id="bad-date"),
    pytest.param(["colocate", "missing.parquet", "-o", "p.parquet"], "missing.parquet: scene table not found",
                 id="missing-scenes"),
    pytest.param(["colocate", "{scenes}", "-o", "p.parquet", "--window-days", "s2"], "--window-days 's2': expected PRODUCT=DAYS",
                 id="bad-window"),
    pytest.param(["colocate", "{scenes}", "-o", "p.parquet", "--cell-m", "1000"], "cell size must be a positive multiple of 60 m",
                 id="bad-cell-size"),
])
def test_user_errors_are_one_line_exit_2(monkeypatch, capsys, tmp_path, colorado_items, args, message):
    region = tmp_path / "region.geojson"
    region.write_text("{oops")
    scenes = tmp_path / "scenes.parquet"
    good = write_region(tmp_path / "colorado.geojson", (-106.5, 39.0, -102.5, 41.5))
    run(monkeypatch, capsys, "search", "--source", f"local:{colorado_items}", "--region", str(good), "-o", str(scenes))
    monkeypatch.chdir(tmp_path)
    code, _, err = run(monkeypatch, capsys, *[a.format(region=region, scenes=scenes) for a in args])
    assert code == 2 and err.startswith("error: ") and message in err
    assert err.count("\n") == 1 and "Traceback" not in err
    assert not (tmp_path / "p.parquet").exists()


def test_help_describes_sources_and_anchors(monkeypatch, capsys):
    def words(text: str) -> str:  # help is wrapped in a box: compare the words only
        return " ".join(text.replace("\u2502", " ").split())

    monkeypatch.setenv("COLUMNS", "200")  # a wide terminal, so that rich neither hyphenates nor elides
    code, out, _ = run(monkeypatch, capsys, "search", "--help")
    assert code == 0 and "local:PATH" in out and "stac-geoparquet" in words(out) and "--retries" in out
    code, out, _ = run(monkeypatch, capsys, "colocate", "--help")
    assert code == 0 and "--anchor" in out and "--window-days" in out and "15 d SAR" in words(out)
