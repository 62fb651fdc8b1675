"""Readers: one scene of one product -> native-dtype bands and QA flags on a target GeoBox.

``read_scene`` picks the reader from the data asset: a NetCDF swath (EMIT L2A, through its GLT),
a local order folder or METADATA.XML (EnMAP/DESIS), otherwise GeoTIFF/COG assets (one per band,
or one cube). Which bands, which asset, scale/offset, nodata and QA meaning all come from the
product's :class:`~spectralearth_data.catalog.SensorSpec`.
"""

from __future__ import annotations

import fnmatch
import functools
import json
import logging
from dataclasses import dataclass, field
from typing import Any

import numpy as np
from rasterio.enums import Resampling

from ...catalog import BandSpec, SensorSpec
from ...errors import CatalogError, InputDataError
from ...schema import stac_epsg
from .. import qa as qamod
from .cog import read_many_onto, read_onto

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class SceneRef:
    """The plan's facts about one scene: id, source, unsigned asset hrefs and the STAC item."""

    scene_id: str
    source: str
    assets: dict[str, str]
    item: dict[str, Any] = field(default_factory=dict)

    @classmethod
    def from_plan_row(cls, row: Any) -> SceneRef:
        assets = row["assets"]
        item = row.get("item") if hasattr(row, "get") else row["item"]
        return cls(
            scene_id=str(row["scene_id"]),
            source=str(row["source"]),
            assets=json.loads(assets) if isinstance(assets, str) else dict(assets),
            item=json.loads(item) if isinstance(item, str) and item else (item or {}),
        )


@dataclass
class SceneRaster:
    """A scene on the target grid: ``data`` (C, H, W) native dtype in the catalog's encoding,
    ``mask`` (H, W) uint8 flags, and ``encoding`` the scene's own per-band scale/offset before it
    was re-encoded (empty where the reader does not say)."""

    data: np.ndarray
    mask: np.ndarray
    encoding: tuple = ()


def asset_href(spec: SensorSpec, scene: SceneRef, key: str) -> str:
    """The href of our asset ``key`` in this scene.

    Tried in order: the scene's own provider's ``asset_map`` name, ``key`` itself, an asset whose
    file name matches a provider's ``asset_patterns`` glob for ``key`` (positional keys such as
    CMR-STAC's data1/data2 do not say which file is which), then the other providers' names.
    """
    names = [key]
    for p in spec.providers:
        alias = p.asset_map.get(key)
        if alias and alias not in names:
            names.insert(0 if p.source == scene.source else len(names), alias)
    first = names.index(key) + 1
    for n in names[:first]:
        if n in scene.assets:
            return scene.assets[n]
    patterns = [p.asset_patterns[key] for p in spec.providers if key in p.asset_patterns]
    for k in sorted(scene.assets):
        name = scene.assets[k].split("?", 1)[0].rsplit("/", 1)[-1]
        if any(fnmatch.fnmatchcase(name, pat) for pat in patterns):
            return scene.assets[k]
    for n in names[first:]:
        if n in scene.assets:
            return scene.assets[n]
    have = ", ".join(sorted(scene.assets))
    also = f" or a file {' / '.join(patterns)}" if patterns else ""
    raise InputDataError(f"scene {scene.scene_id}: no asset {' / '.join(names)}{also} (has: {have})")


def item_epsg(scene: SceneRef, asset_key: str | None = None) -> int | None:
    """The EPSG code the STAC item states for an asset (asset-level, then item-level; a null or
    textual ``proj:epsg`` falls back to ``proj:code``, :func:`~spectralearth_data.schema.stac_epsg`)."""
    item = scene.item or {}
    places = []
    if asset_key is not None:
        places.append((item.get("assets") or {}).get(asset_key) or {})
    places.append(item.get("properties") or {})
    for d in places:
        epsg = stac_epsg(d) if isinstance(d, dict) else None
        if epsg is not None:
            return epsg
    return None


def group_dtype(bands: tuple[BandSpec, ...], sensor: str) -> str:
    dtypes = {b.dtype for b in bands}
    if len(dtypes) != 1:
        raise CatalogError(f"sensor {sensor!r}: stored bands need one dtype, found {sorted(dtypes)}")
    return dtypes.pop()


def _asset_key_for(spec: SensorSpec, scene: SceneRef, key: str) -> str:
    href = asset_href(spec, scene, key)
    return next(k for k, v in scene.assets.items() if v == href)


def read_cog_scene(spec: SensorSpec, scene: SceneRef, geobox, bands: tuple[BandSpec, ...]) -> SceneRaster:
    """Bands and QA of a GeoTIFF/COG scene on ``geobox``."""
    dtype = group_dtype(bands, spec.name)
    nodata = bands[0].nodata
    # group bands by asset so a cube is opened (and its blocks decoded) once
    groups: dict[str, list[tuple[int, int]]] = {}
    for i, b in enumerate(bands):
        key = b.asset or spec.data_asset
        if key is None:
            raise CatalogError(f"sensor {spec.name!r}: band {b.name} has no asset and no data_asset")
        groups.setdefault(key, []).append((i, (b.index or 0) + 1 if b.asset is None else 1))
    requests = []
    for key, members in groups.items():
        real_key = _asset_key_for(spec, scene, key)
        requests.append((scene.assets[real_key], [m[1] for m in members], item_epsg(scene, real_key)))
    arrays = read_many_onto(requests, geobox, dtype=dtype, nodata=nodata, resampling=Resampling.bilinear, source=scene.source)
    if len(arrays) == 1 and [m[0] for m in next(iter(groups.values()))] == list(range(len(bands))):
        data = arrays[0]  # one cube holding every band in order (EnMAP, DESIS): no copy
    else:
        data = np.empty((len(bands), *geobox.shape), dtype=dtype)
        for members, arr in zip(groups.values(), arrays):
            data[[m[0] for m in members]] = arr
    from .enmap_order import apply_order_calibration

    apply_order_calibration(spec, scene, data, bands)
    encoding = harmonize_dn(spec, scene, data, bands)
    mask = qamod.data_bits(data, bands, usable_mask(bands))
    if spec.qa is not None:
        mask |= _read_qa(spec, scene, geobox, bands)
    return SceneRaster(data, mask, encoding)


def _read_qa(spec: SensorSpec, scene: SceneRef, geobox, bands: tuple[BandSpec, ...] | None = None) -> np.ndarray:
    qa = spec.qa
    assert qa is not None
    if qa.kind == "layers":
        return qamod.layers_to_bits(qa, _read_qa_layers(spec, scene, geobox, bands), geobox.shape)
    real = _asset_key_for(spec, scene, qa.asset)
    values = read_onto(
        scene.assets[real], geobox, indexes=[1], dtype=qa.dtype, nodata=None,
        resampling=Resampling.nearest, source=scene.source, expect_epsg=item_epsg(scene, real),
    )[0]
    return qamod.qa_to_bits(qa, values)


def _read_qa_layers(spec: SensorSpec, scene: SceneRef, geobox,
                    bands: tuple[BandSpec, ...] | None = None) -> dict[str, np.ndarray]:
    """The quality layers that set mask flags, on ``geobox`` (layers without flags are not read).

    Either bands of the one QA asset (``entries[i].band``: DESIS QL_QUALITY-2), read in one pass
    and required; or one asset per layer (EnMAP QL_*), where a missing layer is skipped (an order
    folder may hold only the cube). A layer is read as one band, or, when ``per_band`` (EnMAP
    QL_PIXELMASK: one band per spectral band), as the bands of the *usable* spectral bands of
    ``bands`` (default: the stored bands), ``(k, H, W)`` (a mask with fewer bands than the cube is
    refused by :func:`~.cog.read_onto`, naming the file and the band count). A scene with none of its layers is
    logged: its pixels are flagged from the data values alone, and a provider whose keys the
    catalog does not map would look cloud-free.
    """
    qa = spec.qa
    assert qa is not None
    wanted = [e for e in qa.entries if e.sets_flags]
    if not wanted:
        return {}
    if qa.banded:
        real = _asset_key_for(spec, scene, qa.asset)
        arrays = read_onto(
            scene.assets[real], geobox, indexes=[int(e.band) for e in wanted], dtype="float32",  # type: ignore[arg-type]
            nodata=None, resampling=Resampling.nearest, source=scene.source, expect_epsg=item_epsg(scene, real),
        )
        return {str(e.layer): a for e, a in zip(wanted, arrays)}
    layers = {}
    for e in wanted:
        try:
            real = _asset_key_for(spec, scene, e.layer)  # type: ignore[arg-type]
        except InputDataError:
            continue
        href = scene.assets[real]
        if e.per_band:
            cube = bands if bands is not None else stored_bands(spec)
            indexes = [(b.index if b.index is not None else i) + 1 for i, b in enumerate(cube) if b.usable]
            layers[str(e.layer)] = read_onto(
                href, geobox, indexes=indexes, dtype=qa.dtype, nodata=None,
                resampling=Resampling.nearest, source=scene.source,
            )
            continue
        layers[str(e.layer)] = read_onto(
            href, geobox, indexes=[1], dtype="float32", nodata=None,
            resampling=Resampling.nearest, source=scene.source,
        )[0]
    if not layers:
        _warn_no_qa(scene.scene_id, scene.source, spec.name, ", ".join(str(e.layer) for e in wanted),
                    ", ".join(sorted(scene.assets)))
    return layers


@functools.lru_cache(maxsize=256)
def _warn_no_qa(scene_id: str, source: str, sensor: str, layers: str, assets: str) -> None:
    """Say once per scene (not once per cell read) that it has no quality layer."""
    log.warning("scene %s (%s): none of the %s quality layers %s is among its assets (%s); only the data "
                "values flag its pixels", scene_id, source, sensor, layers, assets)


def harmonize_dn(spec: SensorSpec, scene: SceneRef, data: np.ndarray, bands: tuple[BandSpec, ...]) -> tuple:
    """Bring this scene's DNs onto the catalog's single scale/offset per band, in place, and
    return the scene's own encoding (:func:`.encoding.scene_encoding`: the item's raster:bands,
    corrected by an ``offset_applied_property`` such as ``earthsearch:boa_offset_applied``, else
    the product's ``offset_rule``, else the catalog), so all stored patches decode with the same
    CF attributes (``add_offset`` = the bands' offset)."""
    from .encoding import reencode, scene_encoding

    if not bands:
        return ()
    enc = scene_encoding(spec, scene, bands)
    reencode(data, bands, enc)
    return enc


def check_supported(spec: SensorSpec, scene: SceneRef) -> None:
    """Refuse a scene from a provider the catalog marks ``unsupported`` (e.g. Sentinel-1 GRD
    amplitude planned as gamma0), naming the reason."""
    collection = (scene.item or {}).get("collection")
    p = spec.provider_for(scene.source, collection)
    if p is not None and p.unsupported and (collection is None or p.collection == collection):
        raise InputDataError(f"{spec.name} scene {scene.scene_id} ({scene.source}, {collection}): {p.unsupported}")


def read_scene(spec: SensorSpec, scene: SceneRef, geobox, bands: tuple[BandSpec, ...] | None = None) -> SceneRaster:
    """One scene of product ``spec`` on ``geobox`` (see the module docstring for the dispatch)."""
    from ...credentials import reading_item

    # the scene's STAC item says which assets are requester-pays (credentials.gdal_options)
    with reading_item(scene.item):
        return _read_scene(spec, scene, geobox, bands)


def _read_scene(spec: SensorSpec, scene: SceneRef, geobox, bands: tuple[BandSpec, ...] | None) -> SceneRaster:
    bands = bands if bands is not None else stored_bands(spec)
    check_supported(spec, scene)
    key = spec.data_asset
    if key is not None:
        href = asset_href(spec, scene, key)
        low = href.lower().split("?")[0]
        if low.endswith((".nc", ".nc4", ".h5")):
            from .emit import read_emit_scene

            return read_emit_scene(spec, scene, geobox, bands)
        if low.endswith((".xml", "/")):
            from .enmap_order import read_order_scene

            return read_order_scene(spec, scene, geobox, bands)
    return read_cog_scene(spec, scene, geobox, bands)


def stored_bands(spec: SensorSpec) -> tuple[BandSpec, ...]:
    """The bands written to the store: all of the catalog's bands (the model drops the
    ``usable: false`` ones; the store stays a faithful copy of the product)."""
    return spec.bands


def usable_mask(bands: tuple[BandSpec, ...]) -> np.ndarray:
    """(C,) bool: bands whose values count for the pixel flags (``usable`` in the catalog)."""
    return np.array([b.usable for b in bands], dtype=bool)
