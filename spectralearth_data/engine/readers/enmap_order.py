"""EnMAP / DESIS L2A local orders (as DLR delivers them): ``*-METADATA.XML`` + GeoTIFF rasters.

An order folder holds ``<product>-METADATA.XML``, ``<product>-SPECTRAL_IMAGE.TIF`` and the
quality layers ``<product>-QL_*.TIF``. The rasters are read like any GeoTIFF (see
:mod:`.cog`); the METADATA.XML adds the per-band calibration of *this* scene:

* EnMAP (``level_X`` schema): ``specific/bandCharacterisation/bandID`` with
  ``wavelengthCenterOfBand``, ``FWHMOfBand``, ``GainOfBand``, ``OffsetOfBand``;
* DESIS: the same per-band elements named ``wavelengthCenterOfBand``, ``wavelengthWidthOfBand``,
  ``gainOfBand``, ``offsetOfBand``.

``physical = DN * gain + offset``. The store keeps one encoding per product (the catalog's
scale/offset, written as CF attributes), so when an order's gains/offsets differ from the
catalog's, its DNs are re-encoded: ``DN' = round((DN * gain + offset - catalog_offset) /
catalog_scale)``. An order whose band count differs from the catalog, or whose band centres lie
further than :data:`MAX_WAVELENGTH_DIFF_NM` from it, is refused with a clear error rather than
written under the wrong wavelengths.
"""

from __future__ import annotations

import functools
import xml.etree.ElementTree as ET
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from ...catalog import BandSpec, SensorSpec
from ...errors import InputDataError
from ..hrefs import local_path

#: Largest accepted distance (nm) between an order's band centre and the catalog's. Band centres
#: of one sensor move by a nanometre or two between processor versions; more means another sensor
#: or another band table.
MAX_WAVELENGTH_DIFF_NM = 5.0

_TAGS = {
    "wavelength": ("wavelengthcenterofband",),
    "fwhm": ("fwhmofband", "wavelengthwidthofband"),
    "gain": ("gainofband",),
    "offset": ("offsetofband",),
}


@dataclass(frozen=True)
class OrderBands:
    """Per-band facts of one order from its METADATA.XML, in band order (each (C,) float64)."""

    wavelength: np.ndarray
    fwhm: np.ndarray
    gain: np.ndarray
    offset: np.ndarray


def _child(el: ET.Element, names: tuple[str, ...]) -> str | None:
    for c in el:
        if c.tag.split("}")[-1].lower() in names and c.text and c.text.strip():
            return c.text.strip()
    return None


@functools.lru_cache(maxsize=32)
def parse_order_bands(xml_path: str) -> OrderBands:
    """The band table of an EnMAP/DESIS METADATA.XML (see the module docstring for the tags)."""
    try:
        root = ET.parse(xml_path).getroot()
    except (ET.ParseError, OSError) as e:
        raise InputDataError(f"{xml_path}: not a readable METADATA.XML ({e})") from None
    rows = []
    for el in root.iter():
        wl = _child(el, _TAGS["wavelength"])
        if wl is None:
            continue
        vals = {k: _child(el, names) for k, names in _TAGS.items()}
        try:
            rows.append(tuple(np.nan if (v := vals[k]) is None else float(v) for k in ("wavelength", "fwhm", "gain", "offset")))
        except ValueError as e:
            raise InputDataError(f"{xml_path}: band element <{el.tag}> has a non-numeric value ({e})") from None
    if not rows:
        raise InputDataError(f"{xml_path}: no band table (no element with a wavelengthCenterOfBand child)")
    arr = np.asarray(rows, dtype=np.float64).T
    return OrderBands(*arr)


def metadata_href(scene) -> str | None:
    """The METADATA.XML href of an order scene (asset ``metadata``, or any asset ending so)."""
    for key, href in scene.assets.items():
        if href.split("?")[0].upper().endswith("METADATA.XML") or (key == "metadata" and href.lower().endswith(".xml")):
            return href
    return None


#: DESIS spectral binning: band count of a binned product -> binning factor. "no-binning results in
#: 235 spectral bands ..., 2x binning with 118 spectral bands, 3x binning with 79 ... and 4x binning
#: with 60" (DLR, DESIS data products page, dlr.de/en/eoc/research-transfer/projects-missions/desis/
#: products/data-products). Binned bands are sums of adjacent bands with their own centres and
#: widths; the store's DESIS band table is the unbinned 235, so binned orders are refused.
DESIS_BINNED_BANDS = {118: 2, 79: 3, 60: 4}


def check_band_table(order: OrderBands, bands: tuple[BandSpec, ...], where: str, sensor: str | None = None) -> None:
    """Refuse an order whose bands do not match the catalog's (count, centre wavelengths)."""
    n = len(order.wavelength)
    if sensor == "desis" and n in DESIS_BINNED_BANDS and n != len(bands):
        raise InputDataError(
            f"{where}: a binned DESIS product ({n} bands, {DESIS_BINNED_BANDS[n]}x spectral binning); only "
            f"unbinned DESIS L2A products ({len(bands)} bands) are supported: order the scene without binning"
        )
    if n != len(bands):
        raise InputDataError(f"{where}: the order has {n} bands, the catalog lists {len(bands)}")
    cat = np.array([np.nan if b.wavelength_nm is None else b.wavelength_nm for b in bands])
    diff = np.abs(order.wavelength - cat)
    worst = int(np.nanargmax(diff)) if np.isfinite(diff).any() else 0
    if np.isfinite(diff).any() and diff[worst] > MAX_WAVELENGTH_DIFF_NM:
        raise InputDataError(
            f"{where}: band {worst + 1} is centred at {order.wavelength[worst]:.2f} nm, the catalog says "
            f"{cat[worst]:.2f} nm (more than {MAX_WAVELENGTH_DIFF_NM} nm apart): another sensor or band table?"
        )


def recalibrate(data: np.ndarray, order: OrderBands, bands: tuple[BandSpec, ...]) -> None:
    """Re-encode ``data`` (C, H, W) in place from the order's gains/offsets to the catalog's."""
    nodata = bands[0].nodata
    info = np.iinfo(data.dtype) if data.dtype.kind in "ui" else None
    for i, b in enumerate(bands):
        g, o = order.gain[i], order.offset[i]
        if not np.isfinite(g) or g == 0:
            continue  # no calibration for this band: keep the catalog's
        o = 0.0 if not np.isfinite(o) else o
        if np.isclose(g, b.scale, rtol=1e-6, atol=0) and np.isclose(o, b.offset, rtol=0, atol=1e-9):
            continue
        x = data[i]
        valid = x != nodata if nodata is not None else np.ones(x.shape, bool)
        new = (x[valid].astype(np.float64) * g + o - b.offset) / b.scale
        if info is not None:
            new = np.clip(np.rint(new), info.min, info.max)
            if nodata is not None:
                new[new == nodata] = nodata + (1 if nodata < info.max else -1)  # never becomes fill
        x[valid] = new.astype(data.dtype)


def apply_order_calibration(spec: SensorSpec, scene, data: np.ndarray, bands: tuple[BandSpec, ...]) -> None:
    """If ``scene`` is a local order with a METADATA.XML, check its band table and re-encode
    its DNs onto the catalog's scale/offset (in place). Scenes without one are left as they are."""
    href = metadata_href(scene)
    if href is None:
        return
    path = local_path(href)
    if path is None:
        return  # remote orders: DLR's STAC items carry the catalog encoding
    order = parse_order_bands(str(Path(path)))
    check_band_table(order, bands, f"{spec.name} order {scene.scene_id} ({Path(path).name})", spec.name)
    recalibrate(data, order, bands)


#: Raster files of an order, by extension: GeoTIFF (also DLR's ``_COG.TIF`` copies that the STAC
#: items link), JPEG2000, and ENVI's binary cube (GDAL opens ``.BSQ/.BIL/.BIP`` and finds the
#: ``.HDR`` beside it). The order form's formats: see catalogs/sensors/enmap.yaml (local provider).
ORDER_RASTER_SUFFIXES = (".tif", ".tiff", ".jp2", ".j2k", ".bsq", ".bil", ".bip")


def order_asset_key(file_name: str, product: str) -> str | None:
    """The asset key of one file of an order (``None``: not a raster of ``product``): the part
    after the product name, lower case, without the extension and without DLR's ``_COG`` suffix
    (``<product>-QL_PIXELMASK_COG.TIF`` and ``<product>-QL_PIXELMASK.TIF`` -> ``ql_pixelmask``)."""
    p = Path(file_name)
    if p.suffix.lower() not in ORDER_RASTER_SUFFIXES or not p.name.startswith(product):
        return None
    key = p.stem[len(product):].lstrip("-_").lower()
    if key.endswith("_cog"):
        key = key[: -len("_cog")]
    return key or "image"


def order_rasters(folder: Path, product: str) -> dict[str, Path]:
    """Asset key -> file for the rasters of ``product`` in ``folder``. Where one layer exists in
    two spellings (plain and ``_COG``, or TIF and JP2), the GeoTIFF without ``_COG`` is taken."""
    found: dict[str, list[Path]] = {}
    for f in sorted(Path(folder).iterdir()):
        key = order_asset_key(f.name, product) if f.is_file() else None
        if key is not None:
            found.setdefault(key, []).append(f)

    def rank(f: Path) -> tuple[int, int]:
        return (ORDER_RASTER_SUFFIXES.index(f.suffix.lower()), f.stem.upper().endswith("_COG"))

    return {k: min(v, key=rank) for k, v in found.items()}


def order_assets(xml_path: Path) -> dict[str, str]:
    """Asset key -> path for the rasters beside a METADATA.XML (keys: :func:`order_asset_key`, as
    the local source writes them) plus ``metadata``."""
    xml_path = Path(xml_path)
    product = xml_path.name.split("-METADATA")[0] if "-METADATA" in xml_path.name.upper() else ""
    assets = {k: str(f) for k, f in order_rasters(xml_path.parent, product).items()}
    assets["metadata"] = str(xml_path)
    return assets


def read_order_scene(spec: SensorSpec, scene, geobox, bands: tuple[BandSpec, ...]):
    """A scene whose data asset is the order's METADATA.XML (or its folder): find the rasters
    beside it and read them as a GeoTIFF scene (which applies the order calibration)."""
    from . import SceneRef, asset_href, read_cog_scene

    href = asset_href(spec, scene, spec.data_asset)  # type: ignore[arg-type]
    path = local_path(href)
    if path is None:
        raise InputDataError(f"{href}: an order's METADATA.XML must be a local file")
    p = Path(path)
    if p.is_dir():
        xmls = sorted(x for x in p.iterdir() if x.name.upper().endswith("METADATA.XML"))
        if not xmls:
            raise InputDataError(f"{p}: no *METADATA.XML in the order folder")
        p = xmls[0]
    if not p.exists():
        raise InputDataError(f"{p}: order METADATA.XML not found")
    assets = {**order_assets(p), **{k: v for k, v in scene.assets.items() if k != spec.data_asset}}
    found = order_assets(p)
    data_asset = str(spec.data_asset)
    if data_asset not in found:
        raise InputDataError(f"{p.parent}: no {data_asset.upper()} raster beside the METADATA.XML")
    assets[data_asset] = found[data_asset]
    return read_cog_scene(spec, SceneRef(scene.scene_id, scene.source, assets, scene.item), geobox, bands)
