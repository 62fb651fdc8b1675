"""EnMAP L2A local orders: METADATA.XML band table + gains/offsets, quality layers, real tile."""

from __future__ import annotations

import shutil
from pathlib import Path

import numpy as np
import pytest
import rasterio

from spectralearth_data.catalog import load_sensor
from spectralearth_data.engine.readers import SceneRef, read_scene
from spectralearth_data.engine.readers.enmap_order import parse_order_bands
from spectralearth_data.errors import InputDataError
from spectralearth_data.grid import cell_for
from spectralearth_data.masks import MaskFlag
from spectralearth_data.sources.local import parse_order_metadata

from .synth import demo_cells, enmap_scene

FIXTURES = Path(__file__).resolve().parents[1] / "data" / "fixtures"
PRODUCT = "ENMAP01-____L2A-DT0000001867_20220724T104526Z_008_V010302_20230628T165614Z"


def write_metadata(path: Path, wavelength, fwhm, gain: float, offset: float) -> Path:
    """A METADATA.XML in DLR's EnMAP ``level_X`` layout (written here) with a band table."""
    bands = "".join(
        f'<bandID number="{i + 1}"><wavelengthCenterOfBand>{w}</wavelengthCenterOfBand><FWHMOfBand>{f}</FWHMOfBand>'
        f"<GainOfBand>{gain}</GainOfBand><OffsetOfBand>{offset}</OffsetOfBand></bandID>"
        for i, (w, f) in enumerate(zip(wavelength, fwhm)))
    pts = "".join(f"<point><frame>{k}</frame><latitude>52.39</latitude><longitude>13.06</longitude></point>"
                  for k in ("upper_left", "upper_right", "lower_right", "lower_left"))
    path.write_text(
        '<?xml version="1.0" encoding="UTF-8"?>\n<level_X>'
        f"<metadata><name>{PRODUCT}-METADATA.XML</name></metadata>"
        f"<base><level>L2A</level><temporalCoverage><startTime>2022-07-24T10:45:26Z</startTime></temporalCoverage>"
        f"<spatialCoverage><boundingPolygon>{pts}</boundingPolygon></spatialCoverage></base>"
        f"<specific><bandCharacterisation>{bands}</bandCharacterisation></specific></level_X>")
    return path


def order_from_synth(tmp_path: Path, cells, gain=0.0001, offset=0.0, nbands=None) -> Path:
    """An order folder (DLR file names) made of the synthetic EnMAP scene of :mod:`.synth`."""
    spec = load_sensor("enmap")
    assets, _, _ = enmap_scene(tmp_path / "src", "EN_ORDER", cells)
    folder = tmp_path / "order"
    folder.mkdir()
    shutil.copy(assets["spectral_image"], folder / f"{PRODUCT}-SPECTRAL_IMAGE.TIF")
    for layer in (e.layer for e in spec.qa.entries):
        ql = layer.replace("quality_", "QL_QUALITY_").replace("QL_QUALITY_pixelmask", "QL_PIXELMASK").upper()
        shutil.copy(assets[layer], folder / f"{PRODUCT}-{ql}.TIF")
    bands = spec.bands[: nbands or len(spec.bands)]
    return write_metadata(folder / f"{PRODUCT}-METADATA.XML", [b.wavelength_nm for b in bands], [b.fwhm_nm for b in bands], gain, offset)


def _scene(xml: Path) -> SceneRef:
    item = parse_order_metadata(xml)
    return SceneRef(item["id"], "local", {k: v["href"] for k, v in item["assets"].items()}, item)


def test_metadata_band_table_is_parsed():
    spec = load_sensor("enmap")
    import tempfile

    with tempfile.TemporaryDirectory() as d:
        xml = write_metadata(Path(d) / "x-METADATA.XML", [b.wavelength_nm for b in spec.bands], [b.fwhm_nm for b in spec.bands], 2e-4, 0.01)
        t = parse_order_bands(str(xml))
    assert len(t.wavelength) == 224 and t.wavelength[0] == pytest.approx(spec.bands[0].wavelength_nm)
    assert (t.gain == 2e-4).all() and (t.offset == 0.01).all()


def test_order_gains_offsets_reencoded_to_catalog_scale(tmp_path):
    """The same DNs with gain 2e-4/offset 0.01 in the XML mean DN*2e-4+0.01 reflectance, which the
    catalog's encoding (scale 1e-4, offset 0) stores as 2*DN + 100."""
    cell = demo_cells(1)[0]
    spec = load_sensor("enmap")
    gb = cell.geobox(30.0)
    same = read_scene(spec, _scene(order_from_synth(tmp_path / "a", [cell])), gb)
    scaled = read_scene(spec, _scene(order_from_synth(tmp_path / "b", [cell], gain=2e-4, offset=0.01)), gb)
    valid = same.data != -32768
    assert valid.mean() > 0.9
    np.testing.assert_array_equal(scaled.data[valid].astype(int), 2 * same.data[valid].astype(int) + 100)
    assert (scaled.data[~valid] == -32768).all()
    np.testing.assert_array_equal(scaled.mask, same.mask)


def test_order_quality_layers_reach_the_mask(tmp_path):
    cell = demo_cells(1)[0]
    xml = order_from_synth(tmp_path, [cell])
    cloud = next(xml.parent.glob("*QL_QUALITY_CLOUD.TIF"))
    with rasterio.open(cloud, "r+") as ds:
        a = ds.read()
        a[:, -12:, :] = 1  # 8 px margin: the cell's last 4 rows
        ds.write(a)
    out = read_scene(load_sensor("enmap"), _scene(xml), cell.geobox(30.0))
    assert (out.mask[-4:] & MaskFlag.CLOUD).all() and not (out.mask[:-4] & MaskFlag.CLOUD).any()


def test_order_with_metadata_as_data_asset(tmp_path):
    """A scene that names only the METADATA.XML (or the folder) finds its rasters beside it."""
    cell = demo_cells(1)[0]
    xml = order_from_synth(tmp_path, [cell])
    spec = load_sensor("enmap")
    via_item = read_scene(spec, _scene(xml), cell.geobox(30.0))
    for href in (str(xml), str(xml.parent) + "/"):
        got = read_scene(spec, SceneRef("EN", "local", {"spectral_image": href}, {}), cell.geobox(30.0))
        np.testing.assert_array_equal(got.data, via_item.data)


def test_order_with_wrong_band_table_is_refused(tmp_path):
    cell = demo_cells(1)[0]
    xml = order_from_synth(tmp_path, [cell], nbands=200)
    with pytest.raises(InputDataError, match=r"METADATA.XML\).*200 bands, the catalog lists 224"):
        read_scene(load_sensor("enmap"), _scene(xml), cell.geobox(30.0))


def test_real_enmap_tile_as_an_order(tmp_path):
    """The real Potsdam L2A tile (float32 reflectance x 10000, half a pixel off the UTM 30 m grid)
    with its real band table: read onto a cell, int16 DNs within the tile's range."""
    folder = tmp_path / "order"
    folder.mkdir()
    tile = FIXTURES.parents[2] / "spectralearth_model/evaluate/data/enmap_potsdam" / "images" / "enmap_potsdam_tile_128_0.tif"
    shutil.copy(tile, folder / f"{PRODUCT}-SPECTRAL_IMAGE.TIF")
    table = np.loadtxt(FIXTURES / "band_tables" / "enmap_potsdam_wavelength_fwhm.csv", delimiter=",", skiprows=1)
    xml = write_metadata(folder / f"{PRODUCT}-METADATA.XML", table[:, 0], table[:, 1], 0.0001, 0.0)
    with rasterio.open(tile) as ds:
        b = ds.bounds
        lon, lat = rasterio.warp.transform(ds.crs, "EPSG:4326", [(b.left + b.right) / 2], [(b.top + b.bottom) / 2])
        src = ds.read(50)
    cell = cell_for(lon[0], lat[0], 960)
    out = read_scene(load_sensor("enmap"), _scene(xml), cell.geobox(30.0))
    assert out.data.dtype == np.int16 and out.data.shape == (224, 32, 32)
    got = out.data[49][(out.mask & MaskFlag.NODATA) == 0]
    assert got.size > 0 and src[src > -32768].min() - 1 <= got.min() and got.max() <= src.max() + 1
    assert parse_order_metadata(xml)["assets"]["spectral_image"]["href"].endswith("SPECTRAL_IMAGE.TIF")


def test_desis_style_band_tags_are_read(tmp_path):
    """DESIS METADATA.XML names the per-band elements wavelengthWidthOfBand / gainOfBand /
    offsetOfBand (lower-case g/o); the same parser reads them."""
    xml = tmp_path / "DESIS-METADATA.XML"
    bands = "".join(
        f"<band><wavelengthCenterOfBand>{400 + 2.5 * i}</wavelengthCenterOfBand><wavelengthWidthOfBand>3.0</wavelengthWidthOfBand>"
        f"<gainOfBand>0.0001</gainOfBand><offsetOfBand>0</offsetOfBand></band>" for i in range(235))
    xml.write_text(f"<hdr><specific><bandCharacterisation>{bands}</bandCharacterisation></specific></hdr>")
    t = parse_order_bands(str(xml))
    assert len(t.wavelength) == 235 and t.wavelength[-1] == pytest.approx(400 + 2.5 * 234)
    assert (t.fwhm == 3.0).all() and (t.gain == 1e-4).all() and (t.offset == 0).all()
    empty = tmp_path / "E-METADATA.XML"
    empty.write_text("<level_X><base/></level_X>")
    with pytest.raises(InputDataError, match="no band table"):
        parse_order_bands(str(empty))
