"""Co-location partition by partition (colocate.colocate_partitions) gives exactly the rows of
the unpartitioned plan: on random scene sets around partition borders, UTM zone borders, the
equator and the antimeridian, every cell comes from the one partition that owns it."""

from __future__ import annotations

import json

import numpy as np
import pandas as pd
import pytest
import shapely
from geopandas.testing import assert_geodataframe_equal
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from shapely.geometry import box

from spectralearth_data.colocate import colocate, colocate_partitions, concat_plans, empty_plan
from spectralearth_data.errors import InputDataError
from spectralearth_data.grid.partitions import PartitionScheme, partition_keys
from spectralearth_data.sources.base import parse_footprint, scenes_frame

T0 = pd.Timestamp("2024-06-01T10:00:00Z")
SETTINGS = settings(max_examples=12, deadline=None, suppress_health_check=[HealthCheck.too_slow])


def scene(sid: str, sensor: str, geom, days: float, cloud: float) -> dict:
    footprint = parse_footprint(shapely.geometry.mapping(geom))
    return {"scene_id": sid, "sensor": sensor, "datetime": T0 + pd.Timedelta(days=days), "geometry": footprint,
            "cloud_cover": cloud, "assets": json.dumps({"data": f"file:///{sid}.tif"}), "source": "synthetic",
            "collection": sensor, "epsg": None, "properties": "{}", "item": "{}"}


def footprint(lon: float, lat: float, w: float, h: float, angle: float = 0.0):
    """A lon/lat box, rotated by ``angle`` degrees; split in two where it wraps across 180."""
    g = shapely.affinity.rotate(box(lon, lat, lon + w, lat + h), angle)
    if g.bounds[2] > 180:
        east = shapely.affinity.translate(g.intersection(box(180, -90, 540, 90)), xoff=-360)
        g = shapely.union(g.intersection(box(-180, -90, 180, 90)), east)
    return g


def random_scenes(seed: int, lon: float, lat: float, n_hsi: int = 6, n_opt: int = 10):
    """SYNTHESIZED scenes around ``(lon, lat)``: EnMAP and EMIT anchors (~20 km, rotated), S2-
    and Landsat-like partners (~60-120 km), some without cloud cover, +/-40 days."""
    rng = np.random.default_rng(seed)
    rows = []
    for i in range(n_hsi):
        w, h = rng.uniform(0.1, 0.35, 2)
        rows.append(scene(f"{'enmap' if i % 3 else 'emit'}_{i}", "enmap" if i % 3 else "emit",
                          footprint(lon + rng.uniform(-0.4, 0.2), lat + rng.uniform(-0.4, 0.2), w, h,
                                    rng.uniform(-20, 20)), rng.uniform(-10, 10), rng.uniform(0, 60)))
    for i in range(n_opt):
        sensor = ("s2", "landsat")[i % 2]
        w, h = rng.uniform(0.5, 1.2, 2)
        cloud = float("nan") if i % 5 == 0 else float(rng.integers(0, 5) * 10)  # ties in cloud cover
        rows.append(scene(f"{sensor}_{i}", sensor, footprint(lon + rng.uniform(-1.0, 0.2), lat + rng.uniform(-1.0, 0.2),
                                                             w, h, -12.0 if sensor == "landsat" else 0.0),
                          rng.uniform(-40, 40), cloud))
    return scenes_frame(rows)


def partitioned(scenes, scheme, **kw):
    return list(colocate_partitions(scenes, scheme, **kw))


# zone border x band edge (12 E, 48 N); the equator; the antimeridian in the south; 84 N (UTM/UPS)
PLACES = [(12.0, 48.0), (3.0, 0.0), (179.9, -16.0), (20.9, 83.9)]


@SETTINGS
@given(seed=st.integers(0, 10_000), place=st.sampled_from(PLACES),
       band=st.sampled_from([0.25, 1.0, 8.0]), min_fraction=st.sampled_from([1.0, 0.5]))
def test_partitioned_plan_equals_the_unpartitioned_plan(seed, place, band, min_fraction):
    scenes = random_scenes(seed, *place)
    scheme = PartitionScheme(zones=1, band_deg=band)
    whole = colocate(scenes, cell_m=1920, min_fraction=min_fraction, threads=1)
    parts = partitioned(scenes, scheme, cell_m=1920, min_fraction=min_fraction)
    assert_geodataframe_equal(concat_plans(p for _, p in parts), whole)
    # every cell in exactly one partition: the one that owns it
    seen: set[str] = set()
    for part, plan in parts:
        cells = set(plan["cell_id"])
        assert not cells & seen
        seen |= cells
        if len(plan):
            col_row = plan["cell_id"].str.split("_", expand=True).astype(int)
            keys = partition_keys(plan["epsg"], col_row[1], col_row[2], 1920, scheme)
            assert (keys == part.key).all()
    assert seen == set(whole["cell_id"])
    assert [p.key for p, _ in parts] == sorted(p.key for p, _ in parts)  # zone group, then band


def test_a_scene_across_partition_and_zone_borders_is_given_to_each_partition():
    # one EnMAP scene across the 12 E zone border and the 48 N band edge, one S2 scene over it
    scenes = scenes_frame([scene("enmap_x", "enmap", box(11.8, 47.85, 12.2, 48.15), 0, 10.0),
                           scene("s2_x", "s2", box(11.0, 47.0, 13.0, 49.0), 3, 20.0)])
    whole = colocate(scenes, cell_m=960)
    parts = {p.id: plan for p, plan in partitioned(scenes, PartitionScheme(), cell_m=960)}
    assert sorted(parts) == ["32632_b+05", "32632_b+06", "32633_b+05", "32633_b+06"]
    assert all(len(plan) and set(plan["scene_id"]) == {"enmap_x", "s2_x"} for plan in parts.values())
    assert sum(len(plan) for plan in parts.values()) == len(whole)
    assert_geodataframe_equal(concat_plans(parts.values()), whole)


def test_partner_ranking_sees_every_candidate_of_an_anchor_across_borders():
    # the best S2 candidate of the anchor lies only in the western partition; the eastern
    # partition's cells must still count it ("best of 2 ... 1 better-ranked did not cover")
    scenes = scenes_frame([scene("enmap_x", "enmap", box(11.8, 47.85, 12.2, 48.15), 0, 10.0),
                           scene("s2_west", "s2", box(11.0, 47.0, 11.9, 49.0), 1, 0.0),
                           scene("s2_all", "s2", box(11.0, 47.0, 13.0, 49.0), 3, 50.0)])
    whole = colocate(scenes, cell_m=960)
    got = concat_plans(p for _, p in partitioned(scenes, PartitionScheme(band_deg=1.0), cell_m=960))
    assert_geodataframe_equal(got, whole)
    east = got[(got["epsg"] == 32633) & (got["sensor"] == "s2")]
    assert len(east) and set(east["reason"]) == {"best of 2 in window by cloud cover, then |dt|; "
                                                 "1 better-ranked did not cover the cell"}


@pytest.mark.parametrize("workers", [1, 3])
def test_workers_do_not_change_the_plans(workers):
    scenes = random_scenes(7, 12.0, 48.0)
    scheme = PartitionScheme(band_deg=0.5)
    ref = partitioned(scenes, scheme, cell_m=1920, workers=2)
    got = partitioned(scenes, scheme, cell_m=1920, workers=workers)
    assert [p for p, _ in got] == [p for p, _ in ref] and len(ref) > 2
    for (_, a), (_, b) in zip(got, ref):
        assert_geodataframe_equal(a, b)


def test_no_anchor_scenes_give_no_partitions_and_bad_input_fails_like_colocate():
    only_s2 = scenes_frame([scene("s2_x", "s2", box(11.0, 47.0, 13.0, 49.0), 0, 1.0)])
    assert partitioned(only_s2, PartitionScheme()) == []
    anchored = partitioned(only_s2, PartitionScheme(), anchors=["s2"])  # an S2 anchor: its own rows only
    assert {len(p) > 0 for _, p in anchored} == {True}
    assert set(concat_plans(p for _, p in anchored)["reason"]) == {"anchor"}
    assert len(concat_plans([])) == 0 and list(concat_plans([]).columns) == list(empty_plan().columns)
    # checked when called, before the first partition is asked for
    with pytest.raises(InputDataError, match="min_fraction"):
        colocate_partitions(only_s2, PartitionScheme(), min_fraction=0.0)
    with pytest.raises(InputDataError, match="anchor product"):
        colocate_partitions(only_s2, PartitionScheme(), anchors=["nope"])
    with pytest.raises(InputDataError, match="missing columns"):
        colocate_partitions(only_s2.drop(columns=["cloud_cover"]))
