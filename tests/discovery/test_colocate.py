"""Co-location on real recorded items (checked against a brute-force shapely answer) and on small
synthetic footprints for the ranking rules and the grid's edges (antimeridian, UTM zone border)."""

from __future__ import annotations

import json
import math

import numpy as np
import pandas as pd
import pytest
import shapely
from discovery_helpers import COLORADO, EMIT_ITEMS
from pyproj import Transformer
from shapely.geometry import box

from spectralearth_data.catalog import load_catalog
from spectralearth_data.colocate import colocate, read_plan, summarize, write_plan
from spectralearth_data.errors import InputDataError
from spectralearth_data.grid import cells_covering, footprint_cells
from spectralearth_data.schema import PLAN_COLUMNS
from spectralearth_data.sources.base import item_rows, parse_footprint, scenes_frame

CATALOG = load_catalog()
T0 = pd.Timestamp("2024-06-01T10:00:00Z")


# -- helpers ---------------------------------------------------------------------------------------


def colorado_scenes():
    """The real Earth Search S2 and Landsat-8 items of 2023-10-08 over Colorado (25 min apart)."""
    rows = []
    for path in sorted(COLORADO.glob("*.json")):
        item = json.loads(path.read_text())
        products = ["s2"] if item["collection"] == "sentinel-2-l2a" else ["landsat", "lst"]
        rows += item_rows(item, [CATALOG[p] for p in products], "earth-search", "eo:cloud_cover")
    return scenes_frame(rows)


def brute_force_fractions(geom, epsg: int, cell_m: int) -> dict[str, float]:
    """Share of every cell of ``epsg`` near ``geom`` that ``geom`` covers: one shapely
    intersection per cell, in a Python loop (the footprint densified to 0.005 deg, then projected)."""
    fwd = Transformer.from_crs(4326, epsg, always_xy=True)
    proj = shapely.transform(geom.segmentize(0.005), lambda xy: np.column_stack(fwd.transform(xy[:, 0], xy[:, 1])))
    x0, y0, x1, y1 = proj.bounds
    out = {}
    for c in range(math.floor(x0 / cell_m), math.floor(x1 / cell_m) + 1):
        for r in range(math.floor(y0 / cell_m), math.floor(y1 / cell_m) + 1):
            cell = box(c * cell_m, r * cell_m, (c + 1) * cell_m, (r + 1) * cell_m)
            out[f"{epsg}_{c:05d}_{r:05d}"] = proj.intersection(cell).area / cell.area
    return out


def scene(sid: str, sensor: str, geom, days: float = 0.0, cloud: float = float("nan")) -> dict:
    """A scene row for a synthetic footprint (lon/lat box or GeoJSON geometry)."""
    footprint = parse_footprint(geom if isinstance(geom, dict) else shapely.geometry.mapping(geom))
    return {"scene_id": sid, "sensor": sensor, "datetime": T0 + pd.Timedelta(days=days), "geometry": footprint,
            "cloud_cover": cloud, "assets": json.dumps({"data": f"file:///{sid}.tif"}), "source": "synthetic",
            "collection": sensor, "epsg": None, "properties": "{}", "item": "{}"}


def chosen(plan, sensor: str, anchor: str | None = None) -> dict[str, str]:
    """cell_id -> scene_id of ``sensor`` in the plan (optionally for one anchor scene)."""
    sel = plan[(plan["sensor"] == sensor) & ((plan["anchor_scene_id"] == anchor) if anchor else True)]
    assert not sel.duplicated(["cell_id", "anchor_scene_id"]).any()
    return dict(zip(sel["cell_id"], sel["scene_id"]))


# -- real fixture items ----------------------------------------------------------------------------


@pytest.mark.parametrize("cell_m", [3840, 1920])
def test_colorado_s2_landsat_pairs_match_brute_force(cell_m):
    scenes = colorado_scenes()
    s2 = scenes.loc[scenes["sensor"] == "s2"].geometry.iloc[0]
    ls = scenes.loc[scenes["sensor"] == "landsat"].geometry.iloc[0]
    s2_frac = brute_force_fractions(s2, 32613, cell_m)
    ls_frac = brute_force_fractions(ls, 32613, cell_m)
    want_cells = {c for c, f in s2_frac.items() if f >= 1 - 1e-9}
    want_pairs = {c for c in want_cells if ls_frac.get(c, 0.0) >= 1 - 1e-9}
    assert 0 < len(want_pairs) < len(want_cells)  # the scenes overlap only partly

    plan = colocate(scenes, cell_m=cell_m, anchors=["s2"])
    assert tuple(plan.columns) == PLAN_COLUMNS
    assert set(chosen(plan, "s2")) == want_cells
    assert set(chosen(plan, "landsat")) == want_pairs
    assert set(chosen(plan, "lst")) == want_pairs  # LST comes from the same Landsat scene
    pairs = plan[plan["sensor"] == "landsat"]
    assert (pairs["scene_id"] == "LC08_L2SP_033032_20231008_02_T1").all()
    assert (pairs["anchor_scene_id"] == "S2A_13TDE_20231008_0_L2A").all()
    # Landsat was acquired 2023-10-08 17:37:26, the S2 anchor 18:02:55: dt is about -25.5 minutes
    assert pairs["dt_days"].iloc[0] * 24 * 60 == pytest.approx(-25.48, abs=0.01)
    assert (pairs["reason"] == "best of 1 in window by cloud cover, then |dt|").all()
    assert pairs["cloud_cover"].iloc[0] == pytest.approx(0.06)
    assert (plan["epsg"] == 32613).all() and (plan["cell_m"] == cell_m).all()
    # every cell outline lies inside the anchor footprint (tolerance: the outline is densified)
    cells = plan.drop_duplicates("cell_id")
    assert shapely.covers(s2.buffer(1e-6), cells.geometry.values).all()


def test_landsat_anchored_plan_pairs_the_same_cells_from_the_other_side():
    scenes = colorado_scenes()
    plan = colocate(scenes, cell_m=3840, anchors=["landsat"])
    s2_frac = brute_force_fractions(scenes.loc[scenes["sensor"] == "s2"].geometry.iloc[0], 32613, 3840)
    ls_frac = brute_force_fractions(scenes.loc[scenes["sensor"] == "landsat"].geometry.iloc[0], 32613, 3840)
    assert set(chosen(plan, "landsat")) == {c for c, f in ls_frac.items() if f >= 1 - 1e-9}
    assert set(chosen(plan, "s2")) == {c for c, f in ls_frac.items() if f >= 1 - 1e-9 and s2_frac.get(c, 0) >= 1 - 1e-9}
    assert (plan.loc[plan["sensor"] == "s2", "dt_days"] > 0).all()


def test_partial_cover_fraction_adds_border_cells():
    scenes = colorado_scenes()
    s2 = scenes.loc[scenes["sensor"] == "s2"].geometry.iloc[0]
    frac = brute_force_fractions(s2, 32613, 3840)
    plan = colocate(scenes, cell_m=3840, anchors=["s2"], min_fraction=0.5)
    assert set(chosen(plan, "s2")) == {c for c, f in frac.items() if f >= 0.5 - 1e-9}


def test_default_anchors_are_hsi_products_only():
    assert len(colocate(colorado_scenes(), cell_m=3840)) == 0  # no HSI scene: nothing anchored
    emit = json.loads(EMIT_ITEMS.read_text())["features"][1]
    rows = item_rows(emit, [CATALOG["emit"]], "earthdata-cmr", "eo:cloud_cover", "EMITL2ARFL")
    plan = colocate(scenes_frame(rows), cell_m=3840)
    want = {c.id for c in cells_covering(rows[0]["geometry"], 3840, 1.0)}
    assert set(plan["cell_id"]) == want and len(want) > 100
    assert (plan["anchor_sensor"] == "emit").all() and (plan["hsi_combo"] == "emit").all()


# -- ranking and windows (synthetic footprints) ---------------------------------------------------

HSI = box(13.0, 52.0, 13.3, 52.2)


def test_best_partner_by_cloud_then_time_offset_inside_the_window():
    scenes = scenes_frame([
        scene("enmap-a", "enmap", HSI),
        scene("s2-cloudy-near", "s2", box(12.9, 51.9, 13.4, 52.3), days=1, cloud=40.0),
        scene("s2-clear-far", "s2", box(12.9, 51.9, 13.4, 52.3), days=-20, cloud=5.0),
        scene("s2-clear-near", "s2", box(12.9, 51.9, 13.15, 52.3), days=3, cloud=5.0),  # west half only
        scene("s2-clearest-out-of-window", "s2", box(12.9, 51.9, 13.4, 52.3), days=31, cloud=0.0),
        scene("s2-unknown-cloud", "s2", box(12.9, 51.9, 13.4, 52.3), days=0, cloud=float("nan")),
    ])
    plan = colocate(scenes, cell_m=3840)
    picks = chosen(plan, "s2")
    anchor_cells = set(chosen(plan, "enmap"))
    assert set(picks) == anchor_cells
    west = {c for c in anchor_cells if plan.loc[plan["cell_id"] == c].geometry.iloc[0].bounds[2] < 13.15}
    assert west and west != anchor_cells
    # equal cloud (5 %): the nearer one where it covers the cell, else the farther one
    assert {c for c, s in picks.items() if s == "s2-clear-near"} == west
    assert {c for c, s in picks.items() if s == "s2-clear-far"} == anchor_cells - west
    row = plan[(plan["sensor"] == "s2") & (plan["scene_id"] == "s2-clear-far")].iloc[0]
    assert row["dt_days"] == pytest.approx(-20) and row["cloud_cover"] == 5.0
    assert row["reason"] == "best of 4 in window by cloud cover, then |dt|; 1 better-ranked did not cover the cell"
    # a narrower window leaves only the unknown-cloud scene and the cloudy one: cloud 40 % beats unknown
    narrow = colocate(scenes, cell_m=3840, window_days={"s2": 2})
    assert set(chosen(narrow, "s2").values()) == {"s2-cloudy-near"}


def test_several_hsi_acquisitions_per_cell_and_hsi_combinations():
    scenes = scenes_frame([
        scene("enmap-june", "enmap", HSI, days=0),
        scene("enmap-july", "enmap", HSI, days=30),
        scene("emit-june", "emit", box(13.15, 52.0, 13.5, 52.2), days=0.5),
        scene("s2-june", "s2", box(12.9, 51.9, 13.6, 52.3), days=2, cloud=1.0),
        scene("s2-july", "s2", box(12.9, 51.9, 13.6, 52.3), days=29, cloud=1.0),
        scene("s1-july", "s1", box(12.9, 51.9, 13.6, 52.3), days=35),
    ])
    plan = colocate(scenes, cell_m=3840)
    enmap_cells = set(chosen(plan, "enmap", "enmap-june"))
    assert enmap_cells == set(chosen(plan, "enmap", "enmap-july"))  # both acquisitions kept
    assert chosen(plan, "s2", "enmap-june") == dict.fromkeys(enmap_cells, "s2-june")
    assert chosen(plan, "s2", "enmap-july") == dict.fromkeys(enmap_cells, "s2-july")
    assert chosen(plan, "s1", "enmap-july") == dict.fromkeys(enmap_cells, "s1-july")  # +5 d <= 15 d
    assert chosen(plan, "s1", "enmap-june") == {}  # +35 d > 15 d
    emit_cells = set(chosen(plan, "emit", "emit-june"))
    both = enmap_cells & emit_cells
    assert both and enmap_cells - emit_cells and emit_cells - enmap_cells
    # EMIT 0.5 d after the June EnMAP scene is inside the HSI window (1 d): paired as a partner
    assert chosen(plan, "emit", "enmap-june") == dict.fromkeys(both, "emit-june")
    assert chosen(plan, "emit", "enmap-july") == {}
    combo = plan.drop_duplicates("cell_id").set_index("cell_id")["hsi_combo"]
    assert set(combo[list(both)]) == {"emit+enmap"}
    assert set(combo[list(enmap_cells - emit_cells)]) == {"enmap"}
    assert set(combo[list(emit_cells - enmap_cells)]) == {"emit"}
    summary = summarize(plan)
    assert summary.per_hsi_combo == {"emit+enmap": len(both), "enmap": len(enmap_cells - emit_cells),
                                     "emit": len(emit_cells - enmap_cells)}
    assert summary.per_product["s2"]["scenes"] == 2 and summary.anchor_scenes == 3


@pytest.mark.parametrize("shape", ["concave", "many-vertices"])
def test_concave_and_detailed_partner_footprints(shape):
    if shape == "concave":  # an L: the cells in its notch have all four corners in the convex hull
        partner = shapely.Polygon([(12.9, 51.9), (13.4, 51.9), (13.4, 52.05), (13.12, 52.05), (13.12, 52.3), (12.9, 52.3)])
    else:  # a valid-data outline with 200 vertices (beyond the numpy fast path)
        partner = shapely.Point(13.15, 52.1).buffer(0.13, quad_segs=50)
    scenes = scenes_frame([scene("enmap-a", "enmap", HSI), scene("s2-a", "s2", partner, days=1, cloud=1.0)])
    plan = colocate(scenes, cell_m=3840)
    from spectralearth_data.grid import parse_cell_id

    anchor_cells = set(chosen(plan, "enmap"))
    want = {c for c in anchor_cells if partner.covers(parse_cell_id(c, 3840).polygon_lonlat(densify=2))}
    assert want and want != anchor_cells
    assert set(chosen(plan, "s2")) == want


def test_s2_anchor_where_no_hsi_exists():
    scenes = scenes_frame([scene("s2-a", "s2", HSI, cloud=3.0), scene("s1-a", "s1", box(12.9, 51.9, 13.4, 52.3), days=4)])
    assert len(colocate(scenes, cell_m=3840)) == 0
    plan = colocate(scenes, cell_m=3840, anchors=["s2"])
    assert set(chosen(plan, "s1")) == set(chosen(plan, "s2")) and (plan["hsi_combo"] == "none").all()


def test_no_overlap_gives_anchor_rows_only_and_tiny_footprint_no_rows():
    scenes = scenes_frame([scene("enmap-a", "enmap", HSI), scene("s2-far", "s2", box(20.0, 40.0, 21.0, 41.0))])
    plan = colocate(scenes, cell_m=3840)
    assert set(plan["sensor"]) == {"enmap"} and len(plan) > 0
    sliver = scenes_frame([scene("enmap-sliver", "enmap", box(13.0, 52.0, 13.01, 52.01))])
    empty = colocate(sliver, cell_m=3840)
    assert len(empty) == 0 and tuple(empty.columns) == PLAN_COLUMNS


# -- edges of the grid ----------------------------------------------------------------------------


def _cells(plan, sensor):
    return set(plan.loc[plan["sensor"] == sensor, "cell_id"])


def test_antimeridian_crossing_footprints():
    ring = [[179.8, -17.3], [-179.8, -17.3], [-179.8, -17.0], [179.8, -17.0], [179.8, -17.3]]  # unsplit, Fiji
    wide = [[179.7, -17.4], [-179.7, -17.4], [-179.7, -16.9], [179.7, -16.9], [179.7, -17.4]]
    scenes = scenes_frame([scene("emit-fiji", "emit", {"type": "Polygon", "coordinates": [ring]}),
                           scene("s2-fiji", "s2", {"type": "Polygon", "coordinates": [wide]}, days=1, cloud=2.0)])
    assert scenes.geometry.iloc[0].geom_type == "MultiPolygon"
    plan = colocate(scenes, cell_m=3840)
    emit = _cells(plan, "emit")
    assert {c.split("_")[0] for c in emit} == {"32760", "32701"}
    assert emit == {c.id for c in cells_covering(scenes.geometry.iloc[0], 3840, 1.0)}
    assert _cells(plan, "s2") == emit
    west = scenes.geometry.iloc[0].geoms[0] if scenes.geometry.iloc[0].geoms[0].bounds[0] > 0 else scenes.geometry.iloc[0].geoms[1]
    frac = brute_force_fractions(west, 32760, 3840)
    assert {c for c in emit if c.startswith("32760")} >= {c for c, f in frac.items() if f >= 1 - 1e-9}


def test_utm_zone_border_cells_on_both_sides():
    hsi = box(11.8, 50.0, 12.2, 50.3)  # across the 12 E border of zones 32 and 33
    scenes = scenes_frame([scene("enmap-border", "enmap", hsi),
                           scene("s2-east", "s2", box(12.0, 49.9, 12.6, 50.4), days=2, cloud=1.0)])
    plan = colocate(scenes, cell_m=3840)
    anchors = _cells(plan, "enmap")
    assert anchors == {c.id for c in cells_covering(hsi, 3840, 1.0)}
    assert {c[:5] for c in anchors} == {"32632", "32633"}
    # zone 33's cells west of 12 E reach into zone 32 and are not covered by s2-east
    east = {k for k, f in brute_force_fractions(box(12.0, 49.9, 12.6, 50.4), 32633, 3840).items() if f >= 1 - 1e-9}
    assert _cells(plan, "s2") == anchors & east
    # zone 32 cells east of 12 E that reach into zone 33 pair with the S2 scene when it covers them
    frac32 = brute_force_fractions(box(12.0, 49.9, 12.6, 50.4), 32632, 3840)
    assert {c for c in anchors if c.startswith("32632") and frac32.get(c, 0) >= 1 - 1e-9} <= _cells(plan, "s2")


@pytest.mark.parametrize("ring", [
    pytest.param([[-0.2, 80.5], [0.3, 80.5], [0.3, 80.9], [-0.2, 80.9]], id="zone-border-north"),
    pytest.param([[5.0, 83.8], [7.0, 83.8], [7.0, 84.2], [5.0, 84.2]], id="utm-ups-border"),
    pytest.param([[-3.0, -0.2], [-2.7, -0.2], [-2.7, 0.2], [-3.0, 0.2]], id="equator"),
])
def test_footprint_cells_equal_grid_cells_covering(ring):
    geom = shapely.Polygon(ring)
    got = footprint_cells(np.array([geom], dtype=object), 3840, 1.0)
    assert set(got["cell_id"]) == {c.id for c in cells_covering(geom, 3840, 1.0)}
    half = footprint_cells(np.array([geom], dtype=object), 3840, 0.5)
    assert set(half["cell_id"]) == {c.id for c in cells_covering(geom, 3840, 0.5)}


def test_matches_the_nested_loop_of_the_benchmark_on_synthetic_footprints():
    """The library against benchmarks/colocate.py's naive reference (a Python loop over every
    footprint pair, ``grid.cells_covering`` and shapely ``covers`` per cell) on 30 anchors."""
    import importlib.util

    from discovery_helpers import REPO

    spec = importlib.util.spec_from_file_location("bench_colocate", REPO / "benchmarks" / "colocate.py")
    bench = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(bench)
    scenes = bench.synthetic_scenes(300, 3000, seed=3)
    plan = colocate(scenes, cell_m=3840)
    anchors = sorted(scenes.loc[scenes["sensor"] == "enmap", "scene_id"])[:30]
    ref = bench.naive_pairs(scenes, anchors, {"s2": 30.0, "landsat": 30.0}, 3840)
    sub = plan[plan["anchor_scene_id"].isin(anchors) & (plan["sensor"] != "enmap")]
    assert len(ref) > 100
    assert set(zip(sub["cell_id"], sub["sensor"], sub["scene_id"], sub["anchor_scene_id"])) == ref


# -- plan file and bad input -------------------------------------------------------------------------


def test_plan_round_trip_and_bad_input(tmp_path):
    plan = colocate(colorado_scenes(), cell_m=3840, anchors=["s2"])
    path = write_plan(plan, tmp_path / "plan.parquet")
    back = read_plan(path)
    assert tuple(back.columns) == PLAN_COLUMNS and len(back) == len(plan)
    pd.testing.assert_frame_equal(pd.DataFrame(back.drop(columns="geometry")), pd.DataFrame(plan.drop(columns="geometry")))
    with pytest.raises(InputDataError, match=r"anchor product\(s\) \['hyperion'\] unknown"):
        colocate(colorado_scenes(), anchors=["hyperion"])
    with pytest.raises(InputDataError, match="window_days: s2 must be > 0 days"):
        colocate(colorado_scenes(), window_days={"s2": 0})
    with pytest.raises(InputDataError, match=r"scene table: missing columns \['cloud_cover'"):
        colocate(colorado_scenes().drop(columns=["cloud_cover"]))
    (tmp_path / "bad.parquet").write_text("not parquet")
    with pytest.raises(InputDataError, match="bad.parquet: not a GeoParquet plan"):
        read_plan(tmp_path / "bad.parquet")
