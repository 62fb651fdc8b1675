"""The DLR EOC geoservice STAC as it really answers: recorded EnMAP and DESIS L2A search
responses replayed by a local STAC API (rustac serve), searched through the `dlr-geoservice`
source, and every catalog role (the cube and each quality layer) resolved to the real asset.

The recordings (tests/data/fixtures/dlr/, see MANIFEST.md section 8) hold each item unchanged;
only the response envelope is rebuilt here as a FeatureCollection so rustac can load it.
"""

from __future__ import annotations

import json

import pytest
from discovery_helpers import FIX, write_region

from spectralearth_data.catalog import load_sensor
from spectralearth_data.engine.readers import SceneRef, asset_href, item_epsg
from spectralearth_data.sources import search

DLR = FIX / "dlr"
ENMAP_RESPONSE = DLR / "enmap_l2a_search_3items.json"
DESIS_RESPONSE = DLR / "desis_l2a_search_3items.json"

# What the recorded items call each of our roles: (asset key, end of the file name). Written down
# from the recordings, not from the catalog, so a catalog that maps a role wrongly fails here.
ENMAP_ROLES = {
    "spectral_image": ("image", "-SPECTRAL_IMAGE_COG.TIF"),
    "quality_pixelmask": ("defective_pixel_mask", "-QL_PIXELMASK_COG.TIF"),
    "quality_cloud": ("quality_cloud", "-QL_QUALITY_CLOUD_COG.TIF"),
    "quality_cloudshadow": ("quality_cloud_shadow", "-QL_QUALITY_CLOUDSHADOW_COG.TIF"),
    "quality_haze": ("quality_haze", "-QL_QUALITY_HAZE_COG.TIF"),
    "quality_cirrus": ("quality_cirrus", "-QL_QUALITY_CIRRUS_COG.TIF"),
    "quality_snow": ("quality_snow", "-QL_QUALITY_SNOW_COG.TIF"),
    "quality_classes": ("quality_classes", "-QL_QUALITY_CLASSES_COG.TIF"),
}
DESIS_ROLES = {
    "spectral_image": ("image", "-SPECTRAL_IMAGE.tif"),
    "quality_layers": ("quality2", "-QL_QUALITY-2.tif"),
}


@pytest.fixture(scope="module")
def dlr_api(tmp_path_factory):
    """rustac serve holding the recorded EnMAP and DESIS items (both collections)."""
    from tests.servers import stac_api_server

    features = []
    for path in (ENMAP_RESPONSE, DESIS_RESPONSE):
        features += json.loads(path.read_text())["features"]
    fc = tmp_path_factory.mktemp("dlr") / "dlr_items.json"
    fc.write_text(json.dumps({"type": "FeatureCollection", "features": features}))
    with stac_api_server([fc]) as url:
        yield url


def _recorded(path):
    return {f["id"]: f for f in json.loads(path.read_text())["features"]}


def _roles(spec) -> set[str]:
    """Every asset role the catalog reads for a product: the cube and its QA layer(s)."""
    roles = {spec.data_asset, spec.qa.asset}
    if not spec.qa.banded:
        roles |= {e.layer for e in spec.qa.entries}
    return roles


@pytest.mark.parametrize(
    ("sensor", "response", "bbox", "day", "roles", "epsg"),
    [
        ("enmap", ENMAP_RESPONSE, (10.0, 47.0, 11.5, 48.5), "2023-09-29", ENMAP_ROLES, 32632),
        ("desis", DESIS_RESPONSE, (-119.0, 33.5, -117.5, 35.0), "2021-12-18", DESIS_ROLES, 32611),
    ],
)
def test_every_catalog_role_resolves_to_the_real_dlr_asset(dlr_api, tmp_path, fast_retry, sensor, response, bbox,
                                                           day, roles, epsg):
    spec = load_sensor(sensor)
    assert _roles(spec) == set(roles), "the test's role table must cover what the catalog reads"
    region = write_region(tmp_path / "r.geojson", bbox)
    scenes = search("dlr-geoservice", region, day, day, [sensor], url=dlr_api, retry=fast_retry)
    recorded = _recorded(response)
    assert sorted(scenes["scene_id"]) == sorted(recorded)
    assert (scenes["source"] == "dlr-geoservice").all()
    # EnMAP states proj:epsg on the item; DESIS has "proj:epsg": null beside "proj:code"
    assert set(scenes["epsg"]) == {epsg}
    for _, row in scenes.iterrows():
        scene = SceneRef.from_plan_row(row)
        real = recorded[scene.scene_id]["assets"]
        for role, (key, suffix) in roles.items():
            href = asset_href(spec, scene, role)
            assert href == real[key]["href"], (role, key)
            assert href.endswith(scene.scene_id + suffix), role
        data_key = roles[spec.data_asset][0]
        assert item_epsg(scene, data_key) == real[data_key]["proj:epsg"] == epsg
        # DESIS quality2 carries no proj:*: the item's proj:code stands in for it
        assert item_epsg(scene, roles[spec.qa.asset][0]) == epsg


def test_recorded_quirks_parse_into_the_scene_row(dlr_api, tmp_path, fast_retry):
    """Numbers as text (``"desis:nodata": "-32768"``, ``"enmap:tileID": "33"``, ``"raster:nodata":
    "null"``) and a null proj:epsg survive the search as they are; cloud cover (an int for EnMAP)
    becomes the row's float."""
    region = write_region(tmp_path / "r.geojson", (-119.0, 33.5, -117.5, 35.0))
    desis = search("dlr-geoservice", region, "2021-12-18", "2021-12-18", ["desis"], url=dlr_api, retry=fast_retry)
    props = json.loads(desis.iloc[0]["properties"])
    assert props["proj:epsg"] is None and props["proj:code"] == "EPSG:32611"
    assert props["desis:nodata"] == "-32768"
    assert _clouds(desis) == _clouds_recorded(DESIS_RESPONSE)
    region = write_region(tmp_path / "e.geojson", (10.0, 47.0, 11.5, 48.5))
    enmap = search("dlr-geoservice", region, "2023-09-29", "2023-09-29", ["enmap"], url=dlr_api, retry=fast_retry)
    props = json.loads(enmap.iloc[0]["properties"])
    assert props["raster:nodata"] == "null" and isinstance(props["enmap:tileID"], str)
    assert _clouds(enmap) == _clouds_recorded(ENMAP_RESPONSE)  # ints there (0, 5, 0)


def _clouds(scenes) -> dict[str, float]:
    return dict(zip(scenes["scene_id"], scenes["cloud_cover"].astype(float)))


def _clouds_recorded(path) -> dict[str, float]:
    return {k: float(f["properties"]["eo:cloud_cover"]) for k, f in _recorded(path).items()}
