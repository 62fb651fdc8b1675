"""How the `dlr-geoservice` source searches: the region's `bbox` (then the exact region on the
client), a CQL2-JSON cloud filter, `startIndex` paging with `limit` <= 500, and a bounded number of
pages that fails with a clear error. Against tests/servers/dlr_replay.py, which serves the recorded
real EnMAP and DESIS items (tests/data/fixtures/dlr/, unchanged) paged the way the clients that
work against the real API page it (catalogs/sources.yaml, dlr-geoservice)."""

from __future__ import annotations

import json

import pytest
import shapely.geometry
from discovery_helpers import FIX, write_region

from spectralearth_data.catalog import catalog_root, load_sensor, load_sources, parse_region
from spectralearth_data.errors import CatalogError, SourceError
from spectralearth_data.sources import search
from spectralearth_data.sources.base import SearchRequest
from spectralearth_data.sources.stac_api import StacApiSource
from tests.servers.dlr_replay import StartIndexReplay

DLR = FIX / "dlr"
ENMAP = json.loads((DLR / "enmap_l2a_search_3items.json").read_text())["features"]
DESIS = json.loads((DLR / "desis_l2a_search_3items.json").read_text())["features"]
ENMAP_IDS = sorted(f["id"] for f in ENMAP)
#: Around the three recorded EnMAP tiles (datatake DT0000044371, 2023-09-29, Bavarian Alps).
ALPS = (10.8, 46.9, 11.7, 47.9)
DAY = "2023-09-29"


@pytest.fixture
def replay():
    with StartIndexReplay(ENMAP + DESIS) as server:
        yield server


def _source(replay, fast_retry, **update) -> StacApiSource:
    spec = load_sources()["dlr-geoservice"]
    return StacApiSource(spec.model_copy(update=update), retry=fast_retry, url=replay.url)


def _request(region_path, max_cloud=None) -> SearchRequest:
    from spectralearth_data.sources.base import to_utc

    return SearchRequest(region=parse_region(region_path), sensors=(load_sensor("enmap"),),
                         start=to_utc(DAY), end=to_utc(DAY, end=True), max_cloud=max_cloud)


def test_sources_yaml_says_how_dlr_is_searched():
    spec = load_sources()["dlr-geoservice"]
    assert (spec.paging, spec.spatial, spec.cloud_filter) == ("start-index", "bbox", "cql2-json")
    assert spec.max_page_size == 500 and spec.limit <= 500
    assert spec.max_pages is not None
    # the other STAC sources keep what they had: next links, intersects, the query extension
    for name in ("planetary-computer", "earth-search"):
        other = load_sources()[name]
        assert (other.paging, other.spatial, other.cloud_filter, other.max_pages) == (
            "next-link", "intersects", "query", None)


def test_default_search_sends_bbox_cloud_filter_limit_and_start_index(replay, tmp_path, fast_retry):
    region = write_region(tmp_path / "alps.geojson", ALPS)
    scenes = search("dlr-geoservice", region, DAY, DAY, ["enmap"], max_cloud=10,
                    url=replay.url, retry=fast_retry)
    assert sorted(scenes["scene_id"]) == ENMAP_IDS  # cloud cover 0, 5, 0
    [body] = replay.searches  # 3 matches fit one page of 500
    assert body["collections"] == ["ENMAP_HSI_L2A"]
    assert body["bbox"] == list(ALPS) and "intersects" not in body
    assert body["datetime"] == f"{DAY}T00:00:00Z/{DAY}T23:59:59Z"
    assert body["limit"] == 500 and body["startIndex"] == 0
    assert body["filter-lang"] == "cql2-json"
    assert {"op": "<=", "args": [{"property": "eo:cloud_cover"}, 10]} in body["filter"]["args"]
    assert "query" not in body


def test_cloud_filter_reaches_the_server(replay, tmp_path, fast_retry):
    region = write_region(tmp_path / "alps.geojson", ALPS)
    scenes = _source(replay, fast_retry).search(_request(region, max_cloud=3))
    assert len(scenes) == 2 and (scenes["cloud_cover"] == 0).all()
    # the server, not only the client, left out the 5 % tile
    assert len(replay.returned) == 1 and len(replay.returned[0]) == 2


def test_pages_follow_by_start_index_until_every_item_is_read(replay, tmp_path, fast_retry):
    region = write_region(tmp_path / "alps.geojson", ALPS)
    scenes = _source(replay, fast_retry, page_size=1).search(_request(region))
    assert sorted(scenes["scene_id"]) == ENMAP_IDS
    assert [b["startIndex"] for b in replay.searches] == [0, 1, 2]  # numberMatched 3: no 4th, empty page
    assert all(b["limit"] == 1 for b in replay.searches)
    assert [len(ids) for ids in replay.returned] == [1, 1, 1]


def test_a_short_page_does_not_end_the_search_while_more_match(tmp_path, fast_retry):
    """startIndex is the count of items that came, not pages x limit, and a page shorter than
    asked for ends the search only when numberMatched says nothing is left."""
    with StartIndexReplay(ENMAP, page_cap=1) as replay:
        region = write_region(tmp_path / "alps.geojson", ALPS)
        scenes = _source(replay, fast_retry, page_size=2).search(_request(region))
        assert sorted(scenes["scene_id"]) == ENMAP_IDS
        assert [b["startIndex"] for b in replay.searches] == [0, 1, 2]


def test_limit_never_exceeds_the_servers_cap(replay, tmp_path, fast_retry):
    region = write_region(tmp_path / "alps.geojson", ALPS)
    # a spec copied past validation still sends at most max_page_size
    scenes = _source(replay, fast_retry, page_size=1000).search(_request(region))
    assert len(scenes) == 3 and [b["limit"] for b in replay.searches] == [500]
    # without the cap the replay refuses the page (as the real API does above 500), and the
    # error says so on one line
    with pytest.raises(SourceError) as err:
        _source(replay, fast_retry, page_size=1000, max_page_size=None).search(_request(region))
    msg = str(err.value)
    assert "'dlr-geoservice'" in msg and "HTTP 400" in msg and "limit" in msg and "\n" not in msg


def test_page_size_above_the_cap_is_refused_by_the_catalog(tmp_path):
    text = (catalog_root() / "sources.yaml").read_text()
    assert "    page_size: 500\n" in text
    (tmp_path / "sources.yaml").write_text(text.replace("    page_size: 500\n", "    page_size: 600\n"))
    with pytest.raises(CatalogError, match=r"sources\.yaml.*page_size 600 is above .*max_page_size 500"):
        load_sources(tmp_path)


def test_more_pages_than_max_pages_fail_with_a_clear_error(replay, tmp_path, fast_retry):
    region = write_region(tmp_path / "alps.geojson", ALPS)
    with pytest.raises(SourceError) as err:
        _source(replay, fast_retry, page_size=2, max_pages=1).search(_request(region))
    msg = str(err.value)
    assert "\n" not in msg
    assert "'dlr-geoservice'" in msg and "ENMAP_HSI_L2A" in msg
    assert "read 2 items in 1 page of up to 2" in msg and "3 match" in msg
    assert "narrow" in msg and "max_pages" in msg
    assert len(replay.searches) == 1  # it stopped at the bound, it did not scan on
    # exactly enough pages is not an error
    replay.requests.clear()
    scenes = _source(replay, fast_retry, page_size=2, max_pages=2).search(_request(region))
    assert sorted(scenes["scene_id"]) == ENMAP_IDS and len(replay.searches) == 2


def test_item_inside_the_bbox_but_outside_the_region_is_dropped(replay, tmp_path, fast_retry):
    # an L-shaped region along the north and east edges of ALPS: its bbox holds all three tiles,
    # its shape touches only the northern one (tile 031)
    x0, y0, x1, y1 = ALPS
    ring = [[x0, y1], [x1, y1], [x1, y0], [11.6, y0], [11.6, 47.6], [x0, 47.6], [x0, y1]]
    path = tmp_path / "l.geojson"
    path.write_text(json.dumps({"type": "Feature", "properties": {"name": "l"},
                                "geometry": {"type": "Polygon", "coordinates": [ring]}}))
    shape = parse_region(path).shape
    assert list(shape.bounds) == list(ALPS)
    outside = [f["id"] for f in ENMAP if not shapely.geometry.shape(f["geometry"]).intersects(shape)]
    assert len(outside) == 2 and all("_031_" not in i for i in outside)
    scenes = _source(replay, fast_retry).search(_request(path))
    assert sorted(replay.returned[0]) == ENMAP_IDS  # the server's bbox test let all three through
    assert list(scenes["scene_id"]) == [i for i in ENMAP_IDS if "_031_" in i]
    assert replay.searches[0]["bbox"] == list(ALPS)


def test_a_server_that_ignores_start_index_fails_instead_of_looping(tmp_path, fast_retry):
    """rustac serve pages by `skip`/next links and ignores `startIndex`: every page repeats the
    first item. The search stops at the second page with an error, bound or no bound."""
    from tests.servers import stac_api_server

    fc = tmp_path / "enmap.json"
    fc.write_text(json.dumps({"type": "FeatureCollection", "features": ENMAP}))
    region = write_region(tmp_path / "alps.geojson", ALPS)
    spec = load_sources()["dlr-geoservice"].model_copy(update={"page_size": 1, "max_pages": None})
    with stac_api_server([fc]) as url:
        with pytest.raises(SourceError, match="repeats items already read: this server does not page by startIndex"):
            StacApiSource(spec, retry=fast_retry, url=url).search(_request(region))
