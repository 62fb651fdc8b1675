"""Earth Search over two real consecutive ``POST /search`` pages (2025-07-31) replayed with the
real ``next``-token paging: each Sentinel-2 acquisition is there three times (sentinel-2-c1-l2a,
sentinel-2-l2a, sentinel-2-l1c) beside Sentinel-1 GRD items. The scene table must hold the
Collection 1 copy (the catalog's Earth Search default), never the L1C one, and Sentinel-1 on Earth
Search (GRD amplitude only) is refused with the reason."""

from __future__ import annotations

import json

import pytest
from discovery_helpers import FIX, write_region

from spectralearth_data.catalog import load_sensor, load_sources, parse_region
from spectralearth_data.errors import SourceError
from spectralearth_data.sources import search
from spectralearth_data.sources.base import SearchRequest
from spectralearth_data.sources.stac_api import StacApiSource
from tests.servers.stac_replay import StacPageReplay

PAGES = FIX / "stac/earth_search/search_pages_20250731"
ROOT = "https://earth-search.aws.element84.com/v1"
WORLD = (-180.0, -89.0, 180.0, 89.0)


def _pages():
    return [json.loads((PAGES / f"page{n}.json").read_text()) for n in (1, 2)]


@pytest.fixture
def replay():
    with StacPageReplay(_pages(), ROOT) as server:
        yield server


@pytest.fixture
def world(tmp_path):
    return write_region(tmp_path / "world.geojson", WORLD)


def _recorded(collection: str) -> list[dict]:
    return [f for p in _pages() for f in p["features"] if f["collection"] == collection]


def test_pages_follow_the_next_token_and_keep_collection_1(replay, world, fast_retry):
    scenes = search("earth-search", world, "2025-07-31", "2025-07-31", ["s2"], url=replay.url, retry=fast_retry)
    posts = [body for method, path, body in replay.requests if method == "POST"]
    # page 1 for the search itself, page 2 for exactly page 1's next token (merge: false)
    assert len(posts) == 2
    assert posts[0]["collections"] == ["sentinel-2-c1-l2a"] and "next" not in posts[0]
    assert posts[1] == {"next": "2025-07-31T13:03:25.899000Z,S2B_T24MVV_20250731T130245_L2A,sentinel-2-c1-l2a"}
    c1 = {f["id"] for f in _recorded("sentinel-2-c1-l2a")}
    assert len(c1) == 6  # 3 on page 1, 3 on page 2
    assert set(scenes["scene_id"]) == c1
    assert set(scenes["collection"]) == {"sentinel-2-c1-l2a"} and (scenes["sensor"] == "s2").all()
    assert not scenes["scene_id"].str.endswith("_L1C").any()
    # the three copies of one acquisition (tile 20EPT): only the Collection 1 one is a scene
    ept = [f["id"] for p in _pages() for f in p["features"] if "20EPT" in f["id"]]
    assert sorted(ept) == ["S2B_20EPT_20250731_0_L1C", "S2B_20EPT_20250731_0_L2A", "S2B_T20EPT_20250731T131905_L2A"]
    assert [s for s in scenes["scene_id"] if "20EPT" in s] == ["S2B_T20EPT_20250731T131905_L2A"]
    row = scenes.set_index("scene_id").loc["S2B_T20EPT_20250731T131905_L2A"]
    assert row["epsg"] == 32720
    assert json.loads(row["assets"])["red"].endswith("/sentinel-2-c1-l2a/20/E/PT/2025/7/S2B_T20EPT_20250731T131905_L2A/B04.tif")
    # the item (with its raster:bands) travels with the scene, for the reader
    item = json.loads(row["item"])
    assert item["assets"]["red"]["raster:bands"][0]["offset"] == -0.1


def test_the_older_sentinel_2_l2a_collection_is_still_searchable(replay, world, fast_retry):
    """A provider entry other than the default: the l2a copies, never the c1 or l1c ones."""
    s2 = load_sensor("s2")
    l2a = next(p for p in s2.providers if p.source == "earth-search" and p.collection == "sentinel-2-l2a")
    assert l2a.offset_applied_property == "earthsearch:boa_offset_applied"
    legacy = s2.model_copy(update={"providers": (l2a,)})
    src = StacApiSource(load_sources()["earth-search"], retry=fast_retry, url=replay.url)
    scenes = src.search(SearchRequest(region=parse_region(world), sensors=(legacy,)))
    assert set(scenes["scene_id"]) == {f["id"] for f in _recorded("sentinel-2-l2a")}
    props = [json.loads(p) for p in scenes["properties"]]
    assert all(p["earthsearch:boa_offset_applied"] is True for p in props)


def test_sentinel_1_grd_is_refused_for_s1_with_the_reason(replay, world, fast_retry):
    with pytest.raises(SourceError, match=r"earth-search.*cannot serve product 's1'.*sentinel-1-grd.*not gamma0"):
        search("earth-search", world, sensors=["s1"], url=replay.url, retry=fast_retry)
    assert replay.requests == []  # refused before any request
    # the GRD items are there in the recording, as uint16 with no scale and no unit
    grd = _recorded("sentinel-1-grd")
    assert grd and all(f["assets"]["hh"]["raster:bands"] == [{"nodata": 0, "data_type": "uint16"}] for f in grd)


def test_all_products_of_earth_search_leave_s1_out(replay, world, fast_retry):
    """Without --sensors, Earth Search's products are searched and s1 is skipped, not tiled as gamma0."""
    scenes = search("earth-search", world, "2025-07-31", "2025-07-31", url=replay.url, retry=fast_retry)
    asked = [b["collections"] for m, _, b in replay.requests if m == "POST" and "collections" in b]
    assert ["sentinel-1-grd"] not in asked
    assert "s1" not in set(scenes["sensor"])
    assert set(scenes[scenes["sensor"] == "s2"]["collection"]) == {"sentinel-2-c1-l2a"}
