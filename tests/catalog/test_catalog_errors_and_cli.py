"""Broken catalog files give one clear error naming file and field; `spectralearth catalog` works."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

from spectralearth_data.catalog import load_catalog, parse_region, parse_sensor
from spectralearth_data.errors import CatalogError

CATALOGS = Path(__file__).resolve().parents[2] / "catalogs"
EXE = Path(sys.executable).parent / "spectralearth"


@pytest.fixture
def catalogs_copy(tmp_path: Path) -> Path:
    dst = tmp_path / "catalogs"
    shutil.copytree(CATALOGS, dst)
    return dst


def _edit_yaml(path: Path, edit) -> None:
    data = yaml.safe_load(path.read_text())
    edit(data)
    path.write_text(yaml.safe_dump(data, sort_keys=False))


@pytest.mark.parametrize(
    ("sensor", "edit", "field"),
    [
        ("s2", lambda d: d["bands"][3].update(wavelength_nm="red-ish"), "bands.3.wavelength_nm"),
        ("s2", lambda d: d.pop("gsd_m"), "gsd_m"),
        ("landsat", lambda d: d.update(patch_px=100), "patch_px"),
        ("s2", lambda d: d["qa"]["entries"][2].update(flags=["smoke"]), "qa.entries.2.flags"),
        ("lst", lambda d: d["bands"][0].update(valid_range=[10, 1]), "bands.0"),
        ("s1", lambda d: d["licence"].pop("redistributable"), "licence.redistributable"),
        # a QA layer that is a band of the one QA raster (DESIS QL_QUALITY-2): all or none, each once
        ("desis", lambda d: d["qa"]["entries"][3].pop("band"), "entries.3: give every layer a 'band'"),
        ("desis", lambda d: d["qa"]["entries"][3].update(band=1), "given to more than one layer"),
        ("desis", lambda d: d["qa"]["entries"][3].update(band=0), "qa.entries.3.band"),
        ("s2", lambda d: d["qa"]["entries"][0].update(band=1), "'band' is for kind=layers"),
    ],
)
def test_malformed_sensor_file_names_file_and_field(catalogs_copy, sensor, edit, field):
    path = catalogs_copy / "sensors" / f"{sensor}.yaml"
    _edit_yaml(path, edit)
    with pytest.raises(CatalogError) as err:
        parse_sensor(path)
    assert str(path) in str(err.value) and field in str(err.value)
    with pytest.raises(CatalogError, match=field.replace(".", r"\.")):
        load_catalog(catalogs_copy)


def test_broken_band_table_names_the_table_row(catalogs_copy):
    table = catalogs_copy / "band_tables" / "enmap.csv"
    lines = table.read_text().splitlines()
    lines[5] = "band_005,not-a-number,7.0,true"
    table.write_text("\n".join(lines) + "\n")
    with pytest.raises(CatalogError, match=r"enmap\.csv: row 6"):
        parse_sensor(catalogs_copy / "sensors" / "enmap.yaml")


def test_unsorted_hsi_wavelengths_are_rejected(catalogs_copy):
    table = catalogs_copy / "band_tables" / "desis.csv"
    lines = table.read_text().splitlines()
    lines[3], lines[4] = lines[4], lines[3]
    table.write_text("\n".join(lines) + "\n")
    with pytest.raises(CatalogError, match="strictly increasing"):
        parse_sensor(catalogs_copy / "sensors" / "desis.yaml")


def test_invalid_yaml_names_the_line(catalogs_copy):
    path = catalogs_copy / "sensors" / "s1.yaml"
    path.write_text(path.read_text() + "\nbands: [unclosed\n")
    with pytest.raises(CatalogError, match=r"s1\.yaml:.*line \d+"):
        parse_sensor(path)


@pytest.mark.parametrize(
    ("edit", "field"),
    [
        (lambda f: f["geometry"].update(type="Point", coordinates=[13.0, 52.4]), "geometry.type"),
        (
            lambda f: f["geometry"].update(
                coordinates=[[[200, 52], [201, 52], [201, 53], [200, 52]]]
            ),
            "geometry.coordinates",
        ),
        (
            lambda f: f["geometry"].update(
                coordinates=[[[13, 52], [13.1, 52.1], [13.1, 52], [13, 52.1], [13, 52]]]
            ),
            "geometry",
        ),
    ],
)
def test_malformed_region_file_names_file_and_field(catalogs_copy, edit, field):
    path = catalogs_copy / "regions" / "demo.geojson"
    doc = json.loads(path.read_text())
    edit(doc["features"][0])
    path.write_text(json.dumps(doc))
    with pytest.raises(CatalogError) as err:
        parse_region(path)
    assert str(path) in str(err.value) and field in str(err.value)


def test_region_file_that_is_not_json(tmp_path):
    path = tmp_path / "broken.geojson"
    path.write_text('{"type": "Feature", ')
    with pytest.raises(CatalogError, match=r"broken\.geojson: not valid JSON"):
        parse_region(path)


def _run(*args: str, env_catalogs: Path | None = None) -> subprocess.CompletedProcess:
    env = dict(os.environ)
    if env_catalogs is not None:
        env["SPECTRALEARTH_CATALOGS"] = str(env_catalogs)
    return subprocess.run(
        [str(EXE), *args], capture_output=True, text=True, env=env, timeout=120, check=False
    )


def test_cli_json_lists_the_seven_products():
    res = _run("catalog", "--json")
    assert res.returncode == 0, res.stderr
    rows = {r["name"]: r for r in json.loads(res.stdout)}
    assert sorted(rows) == ["desis", "emit", "enmap", "landsat", "lst", "s1", "s2"]
    assert rows["enmap"]["bands"] == 224 and rows["enmap"]["usable_bands"] == 202
    assert rows["enmap"]["redistributable"] is False and rows["s2"]["redistributable"] is True
    assert (
        rows["emit"]["gsd_m"] == 60
        and rows["emit"]["patch_px"] == 64
        and rows["s1"]["kind"] == "sar"
    )
    assert all({"licence", "kind", "patch_px"} <= set(r) for r in rows.values())


def test_cli_table_and_one_sensor():
    res = _run("catalog")
    assert res.returncode == 0 and "enmap" in res.stdout and "lst" in res.stdout
    one = _run("catalog", "--sensor", "landsat", "--json")
    assert one.returncode == 0
    info = json.loads(one.stdout)
    assert [b["name"] for b in info["band_list"]] == [
        "coastal",
        "blue",
        "green",
        "red",
        "nir08",
        "swir16",
        "swir22",
    ]
    table = _run("catalog", "--sensor", "s2")
    assert table.returncode == 0 and "B8A" in table.stdout


def test_cli_with_a_broken_catalog_prints_one_line_naming_file_and_field(catalogs_copy):
    path = catalogs_copy / "sensors" / "emit.yaml"
    _edit_yaml(path, lambda d: d.update(gsd_m="sixty"))
    res = _run("catalog", env_catalogs=catalogs_copy)
    assert res.returncode != 0
    lines = [ln for ln in res.stderr.splitlines() if ln.strip()]
    assert len(lines) == 1, res.stderr
    assert str(path) in lines[0] and "gsd_m" in lines[0]
    assert "Traceback" not in res.stderr


def test_cli_unknown_sensor_is_one_line_error():
    res = _run("catalog", "--sensor", "modis")
    assert res.returncode == 2
    assert res.stderr.strip().count("\n") == 0 and "modis" in res.stderr
