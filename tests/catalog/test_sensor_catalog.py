"""The sensor catalog facts against the real fixtures (band tables, SRFs, recorded STAC items)."""

from __future__ import annotations

import csv
import json
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import shapely.geometry

from spectralearth_data.catalog import (
    load_catalog,
    load_region,
    load_sensor,
    load_sources,
    region_names,
)
from spectralearth_data.masks import MaskFlag

FIX = Path(__file__).resolve().parents[1] / "data" / "fixtures"
ES = FIX / "stac" / "earth_search" / "colocated_colorado_20231008"
PC = FIX / "stac" / "planetary_computer" / "items"

EXPECTED = {  # name: (bands, usable, gsd_m, patch_px, kind, redistributable)
    "enmap": (224, 202, 30, 128, "hsi", False),
    "emit": (285, 244, 60, 64, "hsi", True),
    "desis": (235, 235, 30, 128, "hsi", False),
    "s2": (12, 12, 10, 384, "multispectral", True),
    "landsat": (7, 7, 30, 128, "multispectral", True),
    "lst": (1, 1, 30, 128, "thermal", True),
    "s1": (2, 2, 10, 384, "sar", True),
}


@pytest.fixture(scope="module")
def cat():
    return load_catalog()


def _first_item(path: Path) -> dict:
    doc = json.loads(path.read_text())
    return doc["features"][0] if doc.get("type") == "FeatureCollection" else doc


def test_seven_products_with_their_counts(cat):
    assert sorted(cat) == sorted(EXPECTED)
    for name, (n, usable, gsd, px, kind, redis) in EXPECTED.items():
        spec = cat[name]
        assert (len(spec.bands), len(spec.usable_bands), spec.gsd_m, spec.patch_px) == (
            n,
            usable,
            gsd,
            px,
        ), name
        assert spec.kind == kind and spec.licence.redistributable is redis, name
        assert spec.patch_px_for(960) * spec.gsd_m == 960
        assert any(p.source == "demo" for p in spec.providers), name


def test_time_windows(cat):
    assert cat["s1"].time_window_days == 15
    for name in ("s2", "landsat", "lst"):
        assert cat[name].time_window_days == 30


@pytest.mark.parametrize(
    ("name", "table", "tol"),
    [
        ("enmap", "enmap_potsdam_wavelength_fwhm.csv", 0.0),
        ("desis", "desis_wavelength_fwhm.csv", 0.0),
        ("emit", "emit_wavelength_fwhm.csv", 0.1),
    ],
)
def test_hsi_wavelengths_equal_the_real_band_tables(cat, name, table, tol):
    rows = list(csv.DictReader((FIX / "band_tables" / table).open()))
    ref_wl = np.array([float(r["wavelength"]) for r in rows])
    ref_fw = np.array([float(r["fwhm"]) for r in rows])
    wl = np.array([b.wavelength_nm for b in cat[name].bands])
    fw = np.array([b.fwhm_nm for b in cat[name].bands])
    assert np.all(np.diff(wl) > 0)
    assert wl.shape == ref_wl.shape
    if tol == 0.0:
        assert np.array_equal(wl, ref_wl) and np.array_equal(fw, ref_fw)
    else:
        assert np.max(np.abs(wl - ref_wl)) <= tol and np.max(np.abs(fw - ref_fw)) <= tol
    assert [b.index for b in cat[name].bands] == list(range(len(rows)))


def test_enmap_unusable_bands_are_the_water_vapour_bands_incl_real_bad_bands(cat):
    dropped = [b for b in cat["enmap"].bands if not b.usable]
    assert len(dropped) == 22
    assert all(1290 < b.wavelength_nm < 1525 or 1735 < b.wavelength_nm < 1970 for b in dropped)
    # the 6 bands the real L2A scene marks bbl=0 (filled with nodata) are among them
    import rasterio

    with rasterio.open(
        FIX.parents[2] / "spectralearth_model/evaluate/data/enmap_potsdam" / "images" / "enmap_potsdam_tile_128_0.tif"
    ) as ds:
        bad = {i for i in range(ds.count) if ds.tags(i + 1).get("bbl") == "0"}
    assert len(bad) == 6 and bad <= {b.index for b in dropped}


def test_emit_unusable_bands_sit_in_the_absorption_features(cat):
    dropped = [b.wavelength_nm for b in cat["emit"].bands if not b.usable]
    assert dropped and all(1300 < w < 1450 or 1750 < w < 1970 for w in dropped)


def test_emit_usable_follows_the_v001_good_wavelengths_rule(cat):
    """EMIT L2A V001 ``good_wavelengths`` is 0 where 1325 < wl < 1435 nm or 1770 < wl < 1962 nm
    (emit-sds/emit-sds-l2a v1.3.3 output_conversion.py; catalogs/ATTRIBUTION.md): 244 of 285."""
    bands = cat["emit"].bands
    rule = [not (1325 < b.wavelength_nm < 1435 or 1770 < b.wavelength_nm < 1962) for b in bands]
    assert [b.usable for b in bands] == rule
    assert sum(rule) == 244 and len(bands) == 285
    bad = [i + 1 for i, b in enumerate(bands) if not b.usable]  # 1-based band numbers
    assert bad == list(range(128, 143)) + list(range(188, 214))


def test_emit_mask_layers_are_the_v001_names_not_v002(cat):
    """EMITL2ARFL V001 mask_bands (emit-sds-l2a v1.3.3 make_emit_masks.py); the V002 EMITL2AMASK
    collection capitalises "Flag" and adds SpecTf layers (emit-sds-masks)."""
    layers = [e.layer for e in cat["emit"].qa.entries]
    assert layers == ["Cloud flag", "Cirrus flag", "Water flag", "Spacecraft Flag", "Dilated Cloud Flag",
                      "AOD550", "H2O (g cm-2)", "Aggregate Flag"]
    assert not {"Cloud Flag", "Cirrus Flag", "Water Flag"} & set(layers)
    assert not any(name.startswith("SpecTf") for name in layers)


def _srf_centres(path: Path) -> dict[str, float]:
    srf = pd.read_csv(path, sep="\t")
    wl = srf["Wavelength"].to_numpy(float)
    return {c: float((wl * srf[c]).sum() / srf[c].sum()) for c in srf.columns[1:]}


S2_SRF = {
    "B02": "B2",
    "B03": "B3",
    "B04": "B4",
    "B05": "B5",
    "B06": "B6",
    "B07": "B7",
    "B08": "B8",
    "B8A": "B8A",
    "B11": "B11",
    "B12": "B12",
}
L8_SRF = {
    "coastal": "CoastalAerosol",
    "blue": "Blue",
    "green": "Green",
    "red": "Red",
    "nir08": "NIR",
    "swir16": "SWIR1",
    "swir22": "SWIR2",
}


@pytest.mark.parametrize(
    ("name", "srf_file", "mapping", "tol"),
    # The catalog quotes Sentinel-2A and Landsat-8 (S2B's B12 sits 17 nm lower; the Landsat-9
    # file has stray response far outside the bands, which skews a plain weighted mean).
    [
        ("s2", "Sentinel_2A_Spectral_Response.tsv", S2_SRF, 1.0),
        ("landsat", "Landsat_8_Spectral_Response.tsv", L8_SRF, 1.0),
    ],
)
def test_multispectral_centres_match_the_srf(cat, name, srf_file, mapping, tol):
    centres = _srf_centres(FIX / "srf" / srf_file)
    bands = {b.name: b for b in cat[name].bands}
    for ours, col in mapping.items():
        assert abs(bands[ours].wavelength_nm - centres[col]) <= tol, (
            ours,
            bands[ours].wavelength_nm,
            centres[col],
        )


def test_s2_band_set_and_published_b01_b09(cat):
    names = [b.name for b in cat["s2"].bands]
    assert names == [
        "B01",
        "B02",
        "B03",
        "B04",
        "B05",
        "B06",
        "B07",
        "B08",
        "B8A",
        "B09",
        "B11",
        "B12",
    ]
    bands = {b.name: b for b in cat["s2"].bands}
    assert bands["B01"].wavelength_nm == pytest.approx(442.7) and bands[
        "B09"
    ].wavelength_nm == pytest.approx(945.1)
    assert "ESA" in bands["B01"].wavelength_source and "ESA" in bands["B09"].wavelength_source


def test_s2_offset_rule_follows_the_processing_baseline(cat):
    rule = cat["s2"].offset_rule
    assert rule is not None
    pc_item = _first_item(PC / "sentinel-2-l2a_4items.geojson")
    assert rule.offset_for(pc_item["properties"]) == -0.1  # baseline 05.10
    assert rule.offset_for({"s2:processing_baseline": "03.01"}) == 0.0
    es_item = _first_item(ES / "sentinel-2-l2a_S2A_13TDE_20231008_0_L2A.json")
    rb = es_item["assets"]["red"]["raster:bands"][0]
    b04 = next(b for b in cat["s2"].bands if b.name == "B04")
    assert (b04.scale, b04.offset, b04.nodata) == (rb["scale"], rb["offset"], rb["nodata"])


def test_asset_keys_exist_in_the_real_items(cat):
    pc_s2 = _first_item(PC / "sentinel-2-l2a_4items.geojson")["assets"]
    es_s2 = _first_item(ES / "sentinel-2-l2a_S2A_13TDE_20231008_0_L2A.json")["assets"]
    s2 = cat["s2"]
    for b in s2.bands:
        assert b.asset in pc_s2
        assert s2.provider("earth-search").asset_map[b.asset] in es_s2
    assert s2.qa.asset in pc_s2 and s2.provider("earth-search").asset_map[s2.qa.asset] in es_s2

    for item in (
        _first_item(PC / "landsat-c2-l2_4items.geojson"),
        _first_item(ES / "landsat-c2-l2_LC08_L2SP_033032_20231008_02_T1.json"),
    ):
        for name in ("landsat", "lst"):
            for b in cat[name].bands:
                rb = item["assets"][b.asset]["raster:bands"][0]
                assert (b.scale, b.offset, b.nodata, b.dtype) == (
                    rb["scale"],
                    rb["offset"],
                    rb["nodata"],
                    rb["data_type"],
                )
            assert cat[name].qa.asset in item["assets"]

    rtc = _first_item(PC / "sentinel-1-rtc_4items.geojson")["assets"]
    for b in cat["s1"].bands:
        rb = rtc[b.asset]["raster:bands"][0]
        assert (b.nodata, b.dtype) == (rb["nodata"], rb["data_type"])

    emit_doc = json.loads(
        (
            FIX / "emit" / "emit_cmr_stac_L1BRAD_L2ARFL_20240201T174151_2403212_032.geojson"
        ).read_text()
    )
    l2a = next(f for f in emit_doc["features"] if "L2A_RFL" in f["assets"]["data"]["href"])
    emit = cat["emit"]
    cmr = emit.provider("earthdata-cmr")
    assert (cmr.short_name, cmr.provider, cmr.collection) == (
        "EMITL2ARFL",
        "LPCLOUD",
        l2a["collection"],
    )
    assert cmr.version == "001"
    # the CMR-STAC item keys its files by position (data1 = RFLUNCERT, data2 = MASK); our keys
    # resolve through the catalog's file-name patterns
    from spectralearth_data.engine.readers import SceneRef, asset_href

    scene = SceneRef(l2a["id"], "local", {k: a["href"] for k, a in l2a["assets"].items()}, l2a)
    assert "_RFL_001_" in asset_href(emit, scene, emit.data_asset)
    assert "_MASK_001_" in asset_href(emit, scene, emit.qa.asset)
    assert "_RFLUNCERT_001_" in asset_href(emit, scene, "uncertainty")


def test_providers_name_known_sources(cat):
    sources = load_sources()
    assert sorted(sources) == sorted(
        ["planetary-computer", "earth-search", "dlr-geoservice", "earthdata-cmr", "local", "demo"]
    )
    assert (
        sources["planetary-computer"].url == "https://planetarycomputer.microsoft.com/api/stac/v1"
    )
    assert (
        sources["planetary-computer"].auth == "planetary-computer"
        and sources["planetary-computer"].supports_query
    )
    assert sources["earthdata-cmr"].auth == "earthdata"
    for spec in cat.values():
        for p in spec.providers:
            assert p.source in sources, (spec.name, p.source)
    assert {p.collection for p in cat["s1"].providers if p.source == "planetary-computer"} == {
        "sentinel-1-rtc",
        "sentinel-1-grd",
    }


def test_qa_maps_onto_mask_flags(cat):
    scl = {e.value: e.mask_bits for e in cat["s2"].qa.entries}
    assert sorted(scl) == list(range(12))
    assert (
        scl[0] == MaskFlag.NODATA and scl[9] == MaskFlag.CLOUD and scl[3] == MaskFlag.CLOUD_SHADOW
    )
    assert scl[6] == MaskFlag.WATER and scl[11] == MaskFlag.SNOW_ICE and scl[4] == 0
    for name in ("landsat", "lst"):
        bits = {e.bit: e.mask_bits for e in cat[name].qa.entries}
        assert sorted(bits) == list(range(8))
        assert (
            bits[0] == MaskFlag.NODATA
            and bits[3] == MaskFlag.CLOUD
            and bits[4] == MaskFlag.CLOUD_SHADOW
        )
        assert bits[5] == MaskFlag.SNOW_ICE and bits[7] == MaskFlag.WATER and bits[6] == 0
    layers = {e.layer: e.mask_bits for e in cat["emit"].qa.entries}
    assert layers["Cloud flag"] == MaskFlag.CLOUD and layers["Water flag"] == MaskFlag.WATER
    enmap = {e.layer: e.mask_bits for e in cat["enmap"].qa.entries}
    assert (
        enmap["quality_cloud"] == MaskFlag.CLOUD
        and enmap["quality_cloudshadow"] == MaskFlag.CLOUD_SHADOW
    )
    assert enmap["quality_snow"] == MaskFlag.SNOW_ICE
    assert cat["s1"].qa is None


def test_regions():
    names = region_names()
    assert {"demo", "beauce-fr", "iowa-us", "nile-delta-eg", "colorado-front-range"} <= set(names)
    demo = load_region("demo")
    assert demo.shape.equals(shapely.geometry.box(13.00, 52.38, 13.06, 52.42))
    assert (demo.start, demo.end) == ("2024-05-01", "2024-09-30") and "synthesi" in demo.description
    for n in names:
        r = load_region(n)
        assert r.title and r.description and r.start and r.end
        w, s, e, nn = r.shape.bounds
        assert 0 < e - w <= 1.0 and 0 < nn - s <= 1.0  # modest: tens of km at most
    front = load_region("colorado-front-range").shape
    for f in ES.glob("*.json"):
        assert shapely.geometry.shape(json.loads(f.read_text())["geometry"]).contains(front), f.name


def test_attribution_names_every_table_and_srf():
    root = Path(__file__).resolve().parents[2] / "catalogs"
    text = (root / "ATTRIBUTION.md").read_text()
    for f in list((root / "band_tables").glob("*.csv")) + list((root / "srf").glob("*.tsv")):
        assert f.name in text, f.name


def test_load_sensor_unknown_name_lists_known_products():
    from spectralearth_data.errors import CatalogError

    with pytest.raises(CatalogError, match="unknown product 'modis'.*enmap"):
        load_sensor("modis")


def test_enmap_order_folder_keys_map_onto_our_quality_layers(cat):
    """Real order folders name layers by file suffix (...-QL_QUALITY_CLOUD.TIF -> ql_quality_cloud)."""
    enmap = cat["enmap"]
    local = enmap.provider("local").asset_map
    real_suffixes = {
        "ql_pixelmask",
        "ql_quality_cloud",
        "ql_quality_cloudshadow",
        "ql_quality_haze",
        "ql_quality_cirrus",
        "ql_quality_snow",
        "ql_quality_classes",
    }
    assert {local[e.layer] for e in enmap.qa.entries} == real_suffixes
    assert enmap.provider("demo").asset_map == {}  # the demo uses our keys as they are


def test_desis_quality_is_the_ql_quality_2_band_order(cat):
    """One 10-band raster (hyperproc's DESIS reader; RemoteSensingToolbox.jl for bands 1-8):
    cloud is over land or over water, haze and the two retrievals set no flag."""
    qa = cat["desis"].qa
    assert qa.kind == "layers" and qa.banded and qa.asset == "quality_layers"
    assert {e.band: (e.layer, e.mask_bits) for e in qa.entries} == {
        1: ("shadow", MaskFlag.CLOUD_SHADOW),
        2: ("land", 0),
        3: ("snow", MaskFlag.SNOW_ICE),
        4: ("haze_land", 0),
        5: ("haze_water", 0),
        6: ("cloud_land", MaskFlag.CLOUD),
        7: ("cloud_water", MaskFlag.CLOUD),
        8: ("water", MaskFlag.WATER),
        9: ("aot550", 0),
        10: ("water_vapour", 0),
    }
    assert not cat["enmap"].qa.banded  # EnMAP: one GeoTIFF per quality layer


@pytest.mark.parametrize("name", ["enmap", "desis"])
def test_dlr_asset_map_covers_every_role_with_a_recorded_key(cat, name):
    """Each role the reader asks for is mapped for dlr-geoservice onto a key the recorded DLR
    items carry (tests/data/fixtures/dlr/)."""
    spec = cat[name]
    doc = json.loads((FIX / "dlr" / f"{name}_l2a_search_3items.json").read_text())
    for feature in doc["features"]:
        amap = spec.provider("dlr-geoservice").asset_map
        roles = {spec.data_asset, spec.qa.asset}
        if not spec.qa.banded:
            roles |= {e.layer for e in spec.qa.entries}
        assert roles <= set(amap)
        assert {amap[r] for r in roles} <= set(feature["assets"])
