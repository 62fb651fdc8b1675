"""EnMAP L2A quality semantics on DLR's real files (issue 16, bug 4) and DESIS binned orders.

Real inputs: ``tests/data/fixtures/enmap/snap/snap_enmap_L2A_gtif_qualification.zip`` (see
MANIFEST.md §9): a METADATA.XML written by DLR's EnMAP processor and its real
QL_QUALITY_CLASSES.TIF (1128 x 1212 uint8, EPSG:32632). Its other rasters are empty placeholders,
so the spectral cube and the per-band QL_PIXELMASK below are synthesized *in the real layout*
(one uint8 band per spectral band, 1 = defective, 255 = background: SNAP's EnMAP reader, see
catalogs/sensors/enmap.yaml) on the real raster's grid; no real QL_PIXELMASK was found.
"""

from __future__ import annotations

import zipfile
from pathlib import Path

import numpy as np
import pytest
import rasterio
from affine import Affine
from odc.geo.geobox import GeoBox

from spectralearth_data.catalog import load_sensor
from spectralearth_data.engine.readers import SceneRef, read_scene
from spectralearth_data.engine.readers.enmap_order import (
    OrderBands,
    check_band_table,
    order_asset_key,
    order_assets,
    parse_order_bands,
)
from spectralearth_data.errors import InputDataError
from spectralearth_data.masks import MaskFlag
from spectralearth_data.sources.local import parse_order_metadata

from .synth import write_tif

FIXTURES = Path(__file__).resolve().parents[1] / "data" / "fixtures"
SNAP_ZIP = FIXTURES / "enmap" / "snap" / "snap_enmap_L2A_gtif_qualification.zip"
PRODUCT = "ENMAP01-____L2A-DT0000326721_20170626T102020Z_001_V000204_20200406T201930Z"
# a 64 x 64 window of the real QL_QUALITY_CLASSES holding all of its values 0..3 (counted once:
# 668 x 0, 1557 x 1 land, 540 x 2 water, 1331 x 3 background)
ROW0, COL0, N = 864, 0, 64


def unpack(tmp_path: Path, cog: bool = False) -> Path:
    """The real order folder out of the zip (its 0-byte placeholder rasters left out). With
    ``cog``, the rasters get the ``_COG.TIF`` names of DLR's STAC assets (recorded items in
    tests/data/fixtures/dlr/enmap_l2a_search_3items.json); the METADATA.XML keeps its name."""
    folder = tmp_path / "order"
    folder.mkdir()
    with zipfile.ZipFile(SNAP_ZIP) as z:
        for info in z.infolist():
            name = Path(info.filename).name
            if not name or info.file_size == 0:
                continue
            if cog and name.upper().endswith(".TIF"):
                name = name[:-4] + "_COG.TIF"
            (folder / name).write_bytes(z.read(info))
    return folder


def _window_geobox(classes: Path) -> GeoBox:
    with rasterio.open(classes) as ds:
        tr = ds.transform @ Affine.translation(COL0, ROW0)
        return GeoBox((N, N), tr, ds.crs.to_string())


def test_real_metadata_with_cog_names_becomes_an_item(tmp_path):
    folder = unpack(tmp_path, cog=True)
    xml = folder / f"{PRODUCT}-METADATA.XML"
    item = parse_order_metadata(xml)
    assert item["id"] == PRODUCT and item["collection"] == "enmap"
    assert item["properties"]["datetime"] == "2017-06-26T10:20:20.999936Z"
    assert item["properties"]["eo:cloud_cover"] == 0.0
    ring = item["geometry"]["coordinates"][0]
    # frames upper_left, upper_right, lower_right, lower_left of base/spatialCoverage (the file also
    # repeats upper_left and adds center; neither is a corner of the ring)
    assert ring[0] == [10.7960234, 47.7875252] and ring[2] == [11.0813528, 47.4554646] and ring[-1] == ring[0]
    assert len(ring) == 5
    href = item["assets"]["ql_quality_classes"]["href"]
    assert href.endswith("-QL_QUALITY_CLASSES_COG.TIF")
    assert order_assets(xml)["ql_quality_classes"] == str(folder / Path(href).name)


def test_cog_and_other_order_spellings_map_to_one_key():
    p = PRODUCT
    for name in (f"{p}-QL_PIXELMASK.TIF", f"{p}-QL_PIXELMASK_COG.TIF", f"{p}-ql_pixelmask.tif"):
        assert order_asset_key(name, p) == "ql_pixelmask"
    for name in (f"{p}-SPECTRAL_IMAGE.TIF", f"{p}-SPECTRAL_IMAGE_COG.TIF", f"{p}-SPECTRAL_IMAGE.JP2",
                 f"{p}-SPECTRAL_IMAGE.BSQ"):
        assert order_asset_key(name, p) == "spectral_image"
    assert order_asset_key(f"{p}-SPECTRAL_IMAGE.HDR", p) is None  # ENVI header: GDAL finds it from the .BSQ
    assert order_asset_key(f"{p}-METADATA.XML", p) is None


def test_plain_name_wins_over_the_cog_twin(tmp_path):
    folder = unpack(tmp_path)
    plain = next(folder.glob("*QL_QUALITY_CLASSES.TIF"))
    (folder / (plain.name[:-4] + "_COG.TIF")).write_bytes(plain.read_bytes())
    assets = order_assets(folder / f"{PRODUCT}-METADATA.XML")
    assert assets["ql_quality_classes"] == str(plain)


def test_real_pre_launch_band_table_is_refused(tmp_path):
    """The real file is a pre-launch product with 218 bands: refused, not read under the catalog's 224."""
    xml = unpack(tmp_path) / f"{PRODUCT}-METADATA.XML"
    order = parse_order_bands(str(xml))
    assert len(order.wavelength) == 218 and order.wavelength[0] == pytest.approx(423.03)
    with pytest.raises(InputDataError, match="218 bands, the catalog lists 224"):
        check_band_table(order, load_sensor("enmap").bands, "enmap order")


def _scene_on_real_grid(tmp_path: Path, classes: Path, pixelmask: np.ndarray) -> SceneRef:
    """The real QL_QUALITY_CLASSES plus a synthesized cube and QL_PIXELMASK on its grid's window."""
    spec = load_sensor("enmap")
    with rasterio.open(classes) as ds:
        tr, epsg = ds.transform @ Affine.translation(COL0, ROW0), ds.crs.to_epsg()
    cube = np.full((len(spec.bands), N, N), 1000, np.int16)  # valid everywhere: only the QA flags
    d = tmp_path / "synth"
    d.mkdir()
    assets = {
        "spectral_image": str(write_tif(d / "SPECTRAL_IMAGE.TIF", cube, tr, epsg, nodata=-32768, interleave="band")),
        "quality_pixelmask": str(write_tif(d / "QL_PIXELMASK.TIF", pixelmask, tr, epsg, interleave="band")),
        "quality_classes": str(classes),
    }
    return SceneRef("EN_REAL_QA", "local", assets, {})


def test_real_quality_classes_set_water_and_nodata(tmp_path):
    classes = next(unpack(tmp_path).glob("*QL_QUALITY_CLASSES.TIF"))
    spec = load_sensor("enmap")
    pm = np.zeros((len(spec.bands), N, N), np.uint8)
    out = read_scene(spec, _scene_on_real_grid(tmp_path, classes, pm), _window_geobox(classes))
    with rasterio.open(classes) as ds:
        real = ds.read(1)[ROW0:ROW0 + N, COL0:COL0 + N]
    assert set(np.unique(real)) == {0, 1, 2, 3}
    water = (out.mask & MaskFlag.WATER) != 0
    nodata = (out.mask & MaskFlag.NODATA) != 0
    np.testing.assert_array_equal(water, real == 2)
    np.testing.assert_array_equal(nodata, real == 3)
    assert not out.mask[(real == 0) | (real == 1)].any()  # land, and the undocumented 0, set nothing


def test_per_band_pixel_mask_flags_defects_in_usable_bands(tmp_path):
    """A defect in any usable band marks the pixel bad (32); one in a water-vapour band (usable:
    false) does not; band 1 alone does not decide; 255 (background) is nodata."""
    classes = next(unpack(tmp_path).glob("*QL_QUALITY_CLASSES.TIF"))
    spec = load_sensor("enmap")
    usable = [i for i, b in enumerate(spec.bands) if b.usable]
    unusable = [i for i, b in enumerate(spec.bands) if not b.usable]
    pm = np.zeros((len(spec.bands), N, N), np.uint8)
    pm[usable[150], 0:8, 0:8] = 1     # a SWIR band, band 1 clean
    pm[unusable[3], 8:16, 0:8] = 1    # a water-vapour band only
    pm[0, 16:24, 0:8] = 1             # band 1
    pm[:, 24:32, 0:8] = 255           # background in every band
    out = read_scene(spec, _scene_on_real_grid(tmp_path, classes, pm), _window_geobox(classes))
    sat = (out.mask & MaskFlag.SATURATED) != 0
    nod = (out.mask & MaskFlag.NODATA) != 0
    assert sat[0:8, 0:8].all() and sat[16:24, 0:8].all()
    assert not sat[8:16, 0:8].any()
    assert nod[24:32, 0:8].all()
    assert not sat[32:, :].any()


def test_single_band_pixel_mask_is_refused(tmp_path):
    """A QL_PIXELMASK with one band cannot say which spectral band is defective: a clear error."""
    classes = next(unpack(tmp_path).glob("*QL_QUALITY_CLASSES.TIF"))
    spec = load_sensor("enmap")
    scene = _scene_on_real_grid(tmp_path, classes, np.zeros((1, N, N), np.uint8))
    with pytest.raises(InputDataError, match=r"QL_PIXELMASK.TIF: has 1 bands"):
        read_scene(spec, scene, _window_geobox(classes))


@pytest.mark.parametrize("n, factor", [(118, 2), (79, 3), (60, 4)])
def test_binned_desis_order_is_refused(n, factor):
    bands = load_sensor("desis").bands
    order = OrderBands(*(np.linspace(400, 1000, n) for _ in range(4)))
    with pytest.raises(InputDataError, match=rf"binned DESIS product \({n} bands, {factor}x spectral binning\).*"
                                             rf"unbinned DESIS L2A products \(235 bands\)"):
        check_band_table(order, bands, "desis order X", "desis")


def test_order_folder_with_cog_names_reads_like_the_plain_one(tmp_path):
    """The same order with DLR's STAC file names (``-SPECTRAL_IMAGE_COG.TIF``, ``-QL_*_COG.TIF``):
    found by the local source and by the METADATA.XML-as-data-asset path, read identically."""
    from .synth import demo_cells
    from .test_orders import _scene, order_from_synth

    cell = demo_cells(1)[0]
    spec = load_sensor("enmap")
    xml = order_from_synth(tmp_path / "plain", [cell])
    plain = read_scene(spec, _scene(xml), cell.geobox(30.0))
    xml_cog = order_from_synth(tmp_path / "cog", [cell])
    for f in xml_cog.parent.glob("*.TIF"):
        f.rename(f.with_name(f.name[:-4] + "_COG.TIF"))
    scene = _scene(xml_cog)
    assert {"spectral_image", "ql_pixelmask", "ql_quality_classes", "metadata"} <= set(scene.assets)
    for got in (read_scene(spec, scene, cell.geobox(30.0)),
                read_scene(spec, SceneRef("EN", "local", {"spectral_image": str(xml_cog)}, {}), cell.geobox(30.0))):
        np.testing.assert_array_equal(got.data, plain.data)
        np.testing.assert_array_equal(got.mask, plain.mask)


def test_qa_entry_takes_flags_or_classes_not_both():
    from pydantic import ValidationError

    from spectralearth_data.catalog import QAClass, QASpec

    with pytest.raises(ValidationError, match="either 'flags'"):
        QAClass(layer="x", meaning="m", flags=("cloud",), classes={1: ("cloud",)})
    with pytest.raises(ValidationError, match="unknown|not a mask flag|flag"):
        QAClass(layer="x", meaning="m", classes={1: ("clouds",)})
    with pytest.raises(ValidationError, match="kind=layers"):
        QASpec(asset="qa", kind="bits", reference="r",
               entries=(QAClass(bit=0, meaning="m", classes={1: ("cloud",)}),))
    e = QAClass(layer="x", meaning="m", classes={1: (), 2: ("water",), 3: ("nodata",)})
    assert e.class_bits() == {2: int(MaskFlag.WATER), 3: int(MaskFlag.NODATA)} and e.sets_flags
