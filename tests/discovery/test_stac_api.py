"""pystac-client against a real STAC API process (rustac serve) on localhost, with paging,
client-side filtering and injected faults (500, 429 + Retry-After, always failing)."""

from __future__ import annotations

import json

import pytest
from discovery_helpers import write_region

from spectralearth_data.catalog import load_sources, parse_region
from spectralearth_data.errors import SourceError
from spectralearth_data.schema import SCENE_COLUMNS
from spectralearth_data.sources import search
from spectralearth_data.sources.base import SearchRequest
from spectralearth_data.sources.stac_api import StacApiSource
from tests.servers import FaultProxy

TASMANIA = (146.0, -45.0, 152.0, -37.0)  # the 4 real PC Landsat-9 items
SEVERNAYA = (88.0, 79.5, 106.0, 84.0)  # the 4 real PC S2 items (T47XMJ is a sliver at 80.12 N)


@pytest.fixture
def tasmania(tmp_path):
    return write_region(tmp_path / "tas.geojson", TASMANIA)


def test_search_pc_sentinel2_over_real_items(stac_api, tmp_path, fast_retry):
    region = write_region(tmp_path / "sz.geojson", SEVERNAYA)
    scenes = search("planetary-computer", region, "2024-04-19", "2024-04-19", ["s2"], url=stac_api, retry=fast_retry)
    assert tuple(scenes.columns) == SCENE_COLUMNS
    assert sorted(scenes["scene_id"].str.split("_").str[4]) == ["T46XER", "T46XES", "T47XMJ", "T47XML"]
    assert set(scenes["epsg"]) == {32646, 32647}
    assert (scenes["source"] == "planetary-computer").all()


def test_paging_returns_every_item_across_pages(stac_api, tasmania, fast_retry):
    spec = load_sources()["planetary-computer"].model_copy(update={"page_size": 1})
    with FaultProxy(stac_api) as proxy:
        src = StacApiSource(spec, retry=fast_retry, url=proxy.url)
        request = SearchRequest(region=parse_region(tasmania), sensors=(_sensor("landsat"),))
        scenes = src.search(request)
    posts = [r for r in proxy.log if r.method == "POST" and r.path == "/search"]
    assert len(scenes) == 4
    assert len(posts) >= 4  # one page per item (the last may be empty)
    assert all(json.loads(r.body)["limit"] == 1 for r in posts)


def test_next_link_paging_is_bounded_by_max_pages(stac_api, tasmania, fast_retry):
    # a source's max_pages bounds next-link paging too: 4 items in pages of 1 need 4 pages
    spec = load_sources()["planetary-computer"].model_copy(update={"page_size": 1, "max_pages": 2})
    request = SearchRequest(region=parse_region(tasmania), sensors=(_sensor("landsat"),))
    with pytest.raises(SourceError, match=r"read 2 items in 2 pages of up to 1 \(max_pages 2\).*narrow"):
        StacApiSource(spec, retry=fast_retry, url=stac_api).search(request)
    spec = spec.model_copy(update={"max_pages": 4})
    assert len(StacApiSource(spec, retry=fast_retry, url=stac_api).search(request)) == 4


def test_cloud_and_platform_filter_client_side_when_server_lacks_query(stac_api, tasmania, fast_retry):
    # rustac does not advertise the query extension: no `query` is sent, the client filters instead,
    # whatever sources.yaml says, and both configurations give the same answer. The DLR one sends
    # the region's bbox instead of `intersects` (sources.yaml); its CQL2 cloud filter is left out
    # here because rustac answers no items at all to a body with "filter-lang" (the DLR replay
    # test checks the filter).
    for source, spatial in (("planetary-computer", "intersects"), ("dlr-geoservice", "bbox")):
        spec = load_sources()[source].model_copy(update={"name": "planetary-computer", "cloud_filter": "none"})
        with FaultProxy(stac_api) as proxy:
            src = StacApiSource(spec, retry=fast_retry, url=proxy.url)
            req = SearchRequest(region=parse_region(tasmania), sensors=(_sensor("landsat"),), max_cloud=30.0)
            scenes = src.search(req)
        posts = [json.loads(r.body) for r in proxy.log if r.method == "POST"]
        assert posts and all("query" not in body for body in posts)
        assert all(body["collections"] == ["landsat-c2-l2"] and spatial in body for body in posts), source
        assert all("filter" not in body for body in posts), source
        assert sorted(scenes["cloud_cover"].round(1)) == [25.4, 25.5], source


def test_landsat_collection_gives_landsat_and_lst_rows(stac_api, tasmania, fast_retry):
    scenes = search("planetary-computer", tasmania, sensors=["landsat", "lst"], url=stac_api, retry=fast_retry)
    assert scenes.groupby("sensor").size().to_dict() == {"landsat": 4, "lst": 4}


def test_empty_search_returns_empty_table(stac_api, tmp_path, fast_retry):
    region = write_region(tmp_path / "pacific.geojson", (-150.0, -10.0, -149.0, -9.0))
    scenes = search("planetary-computer", region, sensors=["s2", "landsat"], url=stac_api, retry=fast_retry)
    assert len(scenes) == 0 and tuple(scenes.columns) == SCENE_COLUMNS


def test_server_answers_500_then_429_then_succeeds(stac_api, tasmania, fast_retry):
    with FaultProxy(stac_api, faults=[500, (429, {"Retry-After": "0"})]) as proxy:
        scenes = search("planetary-computer", tasmania, sensors=["landsat"], url=proxy.url, retry=fast_retry)
    assert len(scenes) == 4
    assert [r.status for r in proxy.log[:3]] == [500, 429, 200]


def test_server_always_failing_names_the_source(stac_api, tasmania, fast_retry):
    with FaultProxy(stac_api, always=503) as proxy, pytest.raises(
            SourceError, match=r"source .planetary-computer. \(http://127\.0\.0\.1:\d+\): unreachable or failing after 3 retries"):
        search("planetary-computer", tasmania, sensors=["landsat"], url=proxy.url, retry=fast_retry)
    assert len(proxy.log) == fast_retry.attempts + 1


def test_unreachable_server_is_a_source_error(tasmania, fast_retry):
    from tests.servers import free_port

    with pytest.raises(SourceError, match="source 'earth-search'.*unreachable"):
        search("earth-search", tasmania, sensors=["s2"], url=f"http://127.0.0.1:{free_port()}", retry=fast_retry)


def test_unknown_source_and_unserved_product(tasmania):
    with pytest.raises(SourceError, match="unknown source 'nope'; known sources: .*demo"):
        search("nope", tasmania)
    with pytest.raises(SourceError, match=r"does not serve product\(s\) \['emit'\]"):
        search("earth-search", tasmania, sensors=["emit"])


def _sensor(name):
    from spectralearth_data.catalog import load_sensor

    return load_sensor(name)
