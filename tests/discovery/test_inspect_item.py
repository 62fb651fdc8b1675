"""``spectralearth inspect-item`` on recorded real responses: the DLR EnMAP/DESIS search answers,
the EMIT UMM-G records, Earth Search search pages and items, Planetary Computer items; and local
EMIT NetCDF files written here."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
from discovery_helpers import run

FIXTURES = Path(__file__).resolve().parents[1] / "data" / "fixtures"
ENMAP = FIXTURES / "dlr" / "enmap_l2a_search_3items.json"
DESIS = FIXTURES / "dlr" / "desis_l2a_search_3items.json"
EMIT_UMM = FIXTURES / "emit" / "emit_l2a_umm_3granules.json"
ES_PAGE1 = FIXTURES / "stac" / "earth_search" / "search_pages_20250731" / "page1.json"
ES_0214 = FIXTURES / "stac" / "earth_search" / "items" / "sentinel-2-l2a_2020-04_baseline02.14_24items.json"
PC_S2 = FIXTURES / "stac" / "planetary_computer" / "items" / "sentinel-2-l2a_4items.geojson"
PC_LANDSAT = FIXTURES / "stac" / "planetary_computer" / "items" / "landsat-c2-l2_4items.geojson"

S2_ES_KEYS = {"B01": "coastal", "B02": "blue", "B03": "green", "B04": "red", "B05": "rededge1",
              "B06": "rededge2", "B07": "rededge3", "B08": "nir", "B8A": "nir08", "B09": "nir09",
              "B11": "swir16", "B12": "swir22", "SCL": "scl"}


def inspect_json(monkeypatch, capsys, *args: str) -> tuple[int, list[dict], str]:
    code, out, err = run(monkeypatch, capsys, "inspect-item", *args, "--json")
    return code, json.loads(out), err


def assets(entry: dict) -> dict[str, str | None]:
    return {role: (r["asset"] if r else None) for role, r in entry["roles"].items()}


def test_dlr_enmap_items_resolve_every_role(monkeypatch, capsys):
    code, out, err = run(monkeypatch, capsys, "inspect-item", str(ENMAP))
    assert code == 0, err
    assert "error" not in err
    assert out.count("\nenmap ENMAP01-") + out.startswith("enmap ENMAP01-") == 3
    assert "source     dlr-geoservice (collection ENMAP_HSI_L2A)" in out
    assert "epsg       32632" in out and "reflectance = DN x 0.0001 + 0, nodata -32768" in out

    code, items, _ = inspect_json(monkeypatch, capsys, str(ENMAP))
    assert code == 0 and len(items) == 3
    assert assets(items[0]) == {
        "data": "image", "quality_pixelmask": "defective_pixel_mask", "quality_cloud": "quality_cloud",
        "quality_cloudshadow": "quality_cloud_shadow", "quality_haze": "quality_haze",
        "quality_cirrus": "quality_cirrus", "quality_snow": "quality_snow", "quality_classes": "quality_classes",
    }
    first = items[0]
    assert first["roles"]["data"]["href"].endswith("-SPECTRAL_IMAGE_COG.TIF")
    assert (first["product"], first["epsg"], first["scale"], first["offset"], first["nodata"]) == \
        ("enmap", 32632, 0.0001, 0.0, -32768.0)
    assert first["scene_id"] == "ENMAP01-____L2A-DT0000044371_20230929T104711Z_033_V010502_20260106T185219Z"


def test_dlr_desis_items_resolve_image_and_quality2(monkeypatch, capsys):
    code, items, err = inspect_json(monkeypatch, capsys, str(DESIS), "--source", "dlr-geoservice")
    assert code == 0, err
    assert [assets(i) for i in items] == [{"data": "image", "quality_layers": "quality2"}] * 3
    # the items say "proj:epsg": null beside "proj:code": "EPSG:32611"
    assert {i["epsg"] for i in items} == {32611}
    assert all(i["scale"] == 0.0001 and i["offset"] == 0.0 and i["nodata"] == -32768.0 for i in items)


def test_emit_umm_records_are_keyed_by_file_name(monkeypatch, capsys):
    code, items, err = inspect_json(monkeypatch, capsys, str(EMIT_UMM))  # source guessed: earthdata-cmr
    assert code == 0, err
    assert len(items) == 3 and {i["source"] for i in items} == {"earthdata-cmr"}
    for i in items:
        assert assets(i) == {"data": "data", "mask": "mask"}
        assert "/EMIT_L2A_RFL_001_" in i["roles"]["data"]["href"]
        assert "/EMIT_L2A_MASK_001_" in i["roles"]["mask"]["href"]
        assert (i["scale"], i["offset"], i["nodata"]) == (1.0, 0.0, -9999.0)
    assert items[0]["scene_id"] == "EMIT_L2A_RFL_001_20230422T195912_2311213_001"
    assert items[0]["datetime"] == "2023-04-22T19:59:12Z"


def test_emit_cmr_umm_json_response(monkeypatch, capsys, tmp_path):
    records = json.loads(EMIT_UMM.read_text())
    response = tmp_path / "cmr.json"
    response.write_text(json.dumps({"hits": 3, "took": 10, "items": records}))
    code, items, err = inspect_json(monkeypatch, capsys, str(response), "--source", "earthdata-cmr")
    assert code == 0, err
    assert [assets(i) for i in items] == [{"data": "data", "mask": "mask"}] * 3


def test_earth_search_page_offsets_per_collection(monkeypatch, capsys):
    code, items, err = inspect_json(monkeypatch, capsys, str(ES_PAGE1))
    assert code == 0, err
    by_collection: dict[str, list[dict]] = {}
    for i in items:
        by_collection.setdefault(i["collection"], []).append(i)
    # S1 GRD and S2 L1C items are not read from Earth Search: notes, not problems
    assert sorted(by_collection) == ["sentinel-2-c1-l2a", "sentinel-2-l2a"]
    assert "note: S1A_IW_GRDH_" in err and "not gamma0" in err and "sentinel-2-l1c" in err
    for i in by_collection["sentinel-2-c1-l2a"]:
        assert (i["scale"], i["offset"], i["nodata"]) == (0.0001, -0.1, 0.0)
        assert assets(i) == S2_ES_KEYS and i["source"] == "earth-search"
    for i in by_collection["sentinel-2-l2a"]:  # earthsearch:boa_offset_applied: true
        assert (i["scale"], i["offset"]) == (0.0001, 0.0)
        assert "boa_offset_applied" in i["encoding"] and assets(i) == S2_ES_KEYS
    code, out, _ = run(monkeypatch, capsys, "inspect-item", str(ES_PAGE1))
    assert code == 0 and "reflectance = DN x 0.0001 - 0.1, nodata 0" in out
    assert "  B04  red  " in out and "  SCL  scl  " in out


def test_earth_search_baseline_0214_items_have_no_offset(monkeypatch, capsys):
    code, items, err = inspect_json(monkeypatch, capsys, str(ES_0214))
    assert code == 0, err
    assert len(items) == 24
    assert {(i["scale"], i["offset"]) for i in items} == {(0.0001, 0.0)}
    assert all(assets(i) == S2_ES_KEYS for i in items)


def test_planetary_computer_items(monkeypatch, capsys):
    code, items, err = inspect_json(monkeypatch, capsys, str(PC_S2))
    assert code == 0, err
    assert {i["source"] for i in items} == {"planetary-computer"}
    # no raster:bands: the offset comes from s2:processing_baseline 05.10
    assert {(i["scale"], i["offset"]) for i in items} == {(0.0001, -0.1)}
    assert assets(items[0]) == {k: k for k in S2_ES_KEYS}
    assert items[0]["roles"]["B04"]["href"].startswith("https://sentinel2l2a01.blob.core.windows.net/")

    code, items, err = inspect_json(monkeypatch, capsys, str(PC_LANDSAT))
    assert code == 0, err
    assert sorted({i["product"] for i in items}) == ["landsat", "lst"]  # one collection, two products
    landsat = next(i for i in items if i["product"] == "landsat")
    lst = next(i for i in items if i["product"] == "lst")
    assert (landsat["scale"], landsat["offset"]) == (2.75e-05, -0.2)
    assert (lst["scale"], lst["offset"]) == (0.00341802, 149.0)
    assert assets(lst) == {"lwir11": "lwir11", "qa_pixel": "qa_pixel"}


def test_json_shape(monkeypatch, capsys):
    _, items, _ = inspect_json(monkeypatch, capsys, str(DESIS))
    for i in items:
        assert {"product", "scene_id", "epsg", "roles", "scale", "offset", "nodata", "problems"} <= set(i)
        assert i["problems"] == []
        for role in i["roles"].values():
            assert role is None or set(role) == {"asset", "href"}


def test_missing_roles_exit_2_one_line_each(monkeypatch, capsys, tmp_path):
    doc = json.loads(ENMAP.read_text())
    del doc["features"][0]["assets"]["quality_cloud"]
    del doc["features"][1]["assets"]["image"]
    broken = tmp_path / "enmap.json"
    broken.write_text(json.dumps(doc))
    code, out, err = run(monkeypatch, capsys, "inspect-item", str(broken))
    assert code == 2
    errors = [line for line in err.splitlines() if line.startswith("error: ")]
    assert len(errors) == 2, err
    assert "quality_cloud: missing" in errors[0] and doc["features"][0]["id"] in errors[0]
    assert "data: missing" in errors[1] and doc["features"][1]["id"] in errors[1]
    assert "Traceback" not in err
    assert "  quality_cloud        missing" in out

    code, items, err = inspect_json(monkeypatch, capsys, str(broken))
    assert code == 2
    assert items[0]["roles"]["quality_cloud"] is None and items[1]["roles"]["data"] is None
    assert len(items[0]["problems"]) == 1 and items[2]["problems"] == []


def test_missing_scl_on_earth_search_item(monkeypatch, capsys, tmp_path):
    doc = json.loads(ES_0214.read_text())
    item = doc["features"][0]
    del item["assets"]["scl"]
    one = tmp_path / "item.json"
    one.write_text(json.dumps(item))
    code, items, err = inspect_json(monkeypatch, capsys, str(one), "--source", "earth-search")
    assert code == 2 and items[0]["roles"]["SCL"] is None
    assert len([line for line in err.splitlines() if line.startswith("error: ")]) == 1


def test_hrefs_are_redacted(monkeypatch, capsys, tmp_path):
    doc = json.loads(PC_S2.read_text())
    item = doc["features"][0]
    item["assets"]["B04"]["href"] += "?st=2024-01-01&se=2024-01-02&sig=SECRETSIGNATURE"
    signed = tmp_path / "signed.json"
    signed.write_text(json.dumps(item))
    code, out, err = run(monkeypatch, capsys, "inspect-item", str(signed), "--json")
    assert code == 0, err
    assert "SECRETSIGNATURE" not in out + err


def test_unknown_source_and_missing_file(monkeypatch, capsys, tmp_path):
    code, _, err = run(monkeypatch, capsys, "inspect-item", str(ENMAP), "--source", "nowhere")
    assert code == 2 and err.startswith("error: unknown source 'nowhere'") and "Traceback" not in err
    code, _, err = run(monkeypatch, capsys, "inspect-item", str(tmp_path / "none.json"))
    assert code == 2 and "no such file or folder" in err
    code, _, err = run(monkeypatch, capsys, "inspect-item", str(ENMAP), "--source", "earthdata-cmr")
    assert code == 2 and "not UMM-G granule records" in err


# -- local EMIT NetCDF files ---------------------------------------------------------------------

STEM = "001_20230422T195912_2311213_001.nc"


def _write_emit(folder: Path, *, location: bool = True, band_params: bool = True) -> Path:
    """A small EMIT L2A RFL + MASK pair in the real layout (demo writers), or an RFL file
    without its ``location`` / ``sensor_band_parameters`` group (written with h5netcdf)."""
    import h5netcdf
    from pyproj import CRS

    from spectralearth_data.catalog import sensor_spec
    from spectralearth_data.demo.writers import write_emit_mask, write_emit_reflectance

    spec = sensor_spec("emit")
    nb, ny, nx = len(spec.bands), 4, 5
    refl = np.full((ny, nx, nb), 0.2, np.float32)
    glt_x = np.tile(np.arange(1, nx + 1, dtype=np.int32), (ny, 1))
    glt_y = np.tile(np.arange(1, ny + 1, dtype=np.int32)[:, None], (1, nx))
    gt = (-110.0, 0.0005, 0.0, 40.0, 0.0, -0.0005)
    wkt = CRS.from_epsg(4326).to_wkt()
    attrs = {"time_coverage_start": "2023-04-22T19:59:12+0000"}
    rfl = folder / f"EMIT_L2A_RFL_{STEM}"
    if location and band_params:
        zeros = np.zeros((ny, nx))
        write_emit_reflectance(rfl, refl, np.array([b.wavelength_nm for b in spec.bands]),
                               np.array([b.fwhm_nm for b in spec.bands]), np.ones(nb, bool), zeros, zeros, zeros,
                               glt_x, glt_y, gt, wkt, -9999.0, attrs)
        names = [e.layer for e in spec.qa.entries]
        write_emit_mask(folder / f"EMIT_L2A_MASK_{STEM}", np.zeros((ny, nx, len(names)), np.float32), names,
                        -9999.0, gt, wkt, attrs)
        return rfl
    with h5netcdf.File(rfl, "w") as f:
        f.dimensions = {"downtrack": ny, "crosstrack": nx, "bands": nb}
        f.attrs.update({**attrs, "geotransform": np.asarray(gt), "spatial_ref": wkt})
        f.create_variable("reflectance", ("downtrack", "crosstrack", "bands"), dtype="f4", data=refl)
        if band_params:
            g = f.create_group("sensor_band_parameters")
            g.create_variable("wavelengths", ("bands",), data=np.array([b.wavelength_nm for b in spec.bands], "f4"))
        if location:
            loc = f.create_group("location")
            loc.dimensions = {"ortho_y": ny, "ortho_x": nx}
            loc.create_variable("glt_x", ("ortho_y", "ortho_x"), data=glt_x)
            loc.create_variable("glt_y", ("ortho_y", "ortho_x"), data=glt_y)
    return rfl


def test_local_emit_netcdf_pair_resolves(monkeypatch, capsys, tmp_path):
    rfl = _write_emit(tmp_path)
    code, items, err = inspect_json(monkeypatch, capsys, str(rfl))  # non-JSON PATH: local
    assert code == 0, err
    (item,) = items
    assert item["product"] == "emit" and item["source"] == "local" and item["epsg"] == 4326
    assert assets(item) == {"data": "data", "mask": "mask"}
    assert item["roles"]["mask"]["href"].endswith(f"EMIT_L2A_MASK_{STEM}")
    assert item["datetime"] == "2023-04-22T19:59:12Z"
    # the mask file names the same granule
    code, items, _ = inspect_json(monkeypatch, capsys, str(tmp_path / f"EMIT_L2A_MASK_{STEM}"))
    assert code == 0 and items[0]["roles"]["data"]["href"] == str(rfl.resolve())


def test_local_emit_without_its_mask_file(monkeypatch, capsys, tmp_path):
    rfl = _write_emit(tmp_path)
    (tmp_path / f"EMIT_L2A_MASK_{STEM}").unlink()
    code, items, err = inspect_json(monkeypatch, capsys, str(rfl), "--source", "local")
    assert code == 2 and items[0]["roles"]["mask"] is None
    assert len([line for line in err.splitlines() if line.startswith("error: ")]) == 1


@pytest.mark.parametrize("missing", ["location", "sensor_band_parameters"])
def test_local_emit_netcdf_lacking_a_group_is_one_line(monkeypatch, capsys, tmp_path, missing):
    rfl = _write_emit(tmp_path, location=missing != "location", band_params=missing != "sensor_band_parameters")
    code, out, err = run(monkeypatch, capsys, "inspect-item", str(rfl))
    assert code == 2 and out == ""
    lines = err.strip().splitlines()
    assert len(lines) == 1, err
    assert lines[0].startswith("error: ") and f"lacks group '{missing}'" in lines[0] and rfl.name in lines[0]
    assert "Traceback" not in err


def test_local_file_that_is_not_netcdf(monkeypatch, capsys, tmp_path):
    bogus = tmp_path / "EMIT_L2A_RFL_001_20230422T195912_2311213_001.nc"
    bogus.write_text("not hdf5")
    code, _, err = run(monkeypatch, capsys, "inspect-item", str(bogus))
    assert code == 2 and len(err.strip().splitlines()) == 1 and "not a NetCDF4/HDF5 file" in err


# -- a real EnMAP order folder -------------------------------------------------------------------

SNAP_ZIP = FIXTURES / "enmap" / "snap" / "snap_enmap_L2A_gtif_qualification.zip"


def test_real_enmap_order_folder(monkeypatch, capsys, tmp_path):
    """DLR's L2A qualification order (METADATA.XML + QL_* GeoTIFFs): every role resolves to the
    order's files, keyed as the local source keys them; its METADATA.XML lists 218 bands (88 VNIR
    + 130 SWIR), which the reader refuses against the catalog's 224: one problem, exit 2."""
    import zipfile

    with zipfile.ZipFile(SNAP_ZIP) as z:
        z.extractall(tmp_path)
    folder = tmp_path / "enmap_L2A_gtif_qualification"
    for target in (folder, next(folder.glob("*-SPECTRAL_IMAGE.TIF")), next(folder.glob("*-METADATA.XML"))):
        code, items, err = inspect_json(monkeypatch, capsys, str(target))
        (item,) = items
        assert item["product"] == "enmap" and item["source"] == "local"
        assert assets(item) == {
            "data": "spectral_image", "quality_pixelmask": "ql_pixelmask", "quality_cloud": "ql_quality_cloud",
            "quality_cloudshadow": "ql_quality_cloudshadow", "quality_haze": "ql_quality_haze",
            "quality_cirrus": "ql_quality_cirrus", "quality_snow": "ql_quality_snow",
            "quality_classes": "ql_quality_classes",
        }
        assert code == 2
        errors = [line for line in err.splitlines() if line.startswith("error: ")]
        assert len(errors) == 1 and "the order has 218 bands, the catalog lists 224" in errors[0], err


def test_stac_item_pointing_at_a_broken_local_netcdf(monkeypatch, capsys, tmp_path):
    rfl = _write_emit(tmp_path, location=False)
    item = {"type": "Feature", "stac_version": "1.0.0", "id": "EMIT_L2A_RFL_001_20230422T195912_2311213_001",
            "collection": "EMITL2ARFL", "properties": {"datetime": "2023-04-22T19:59:12Z"},
            "geometry": {"type": "Polygon", "coordinates": [[[-110, 40], [-109.9, 40], [-109.9, 39.9], [-110, 39.9],
                                                             [-110, 40]]]},
            "assets": {"data": {"href": rfl.name}}}  # relative to the item file
    path = tmp_path / "item.json"
    path.write_text(json.dumps(item))
    code, items, err = inspect_json(monkeypatch, capsys, str(path), "--source", "local")
    assert code == 2 and items[0]["roles"]["data"]["href"] == str(rfl.resolve())
    errors = [line for line in err.splitlines() if line.startswith("error: ")]
    assert len(errors) == 2, err  # the mask file is not there, and the RFL file lacks its GLT
    assert any("mask: missing" in e for e in errors) and any("lacks group 'location'" in e for e in errors)
