"""STAC items and collections for the demo scenes, shaped like the real providers' items.

Planetary Computer style for s2/landsat/lst/s1 (asset keys, ``proj:epsg`` on the item,
``proj:shape``/``proj:transform`` per asset, ``raster:bands`` where PC has them, ``eo:bands``),
CMR-STAC style for EMIT (``data``/``data2`` NetCDF, no ``proj:*``), and the DLR keys the catalog
names for EnMAP/DESIS. Every item and collection says it is synthesized.
"""

from __future__ import annotations

from datetime import datetime

import pystac
from shapely.geometry import mapping

from ..catalog import SensorSpec
from ..errors import CatalogError
from .scenes import DemoScene, SceneOut

SYNTHETIC_PROP = "spectralearth:synthetic"
#: Names the product explicitly (Landsat SR and ST items share one scene).
SENSOR_PROP = "spectralearth:sensor"
EXTENSIONS = {
    "eo": "https://stac-extensions.github.io/eo/v1.0.0/schema.json",
    "proj": "https://stac-extensions.github.io/projection/v1.1.0/schema.json",
    "raster": "https://stac-extensions.github.io/raster/v1.1.0/schema.json",
    "sat": "https://stac-extensions.github.io/sat/v1.0.0/schema.json",
    "sar": "https://stac-extensions.github.io/sar/v1.0.0/schema.json",
}
PLATFORM_INFO = {
    "s2": {"constellation": "Sentinel 2", "instruments": ["msi"], "s2:processing_baseline": "05.10",
           "s2:product_type": "S2MSI2A"},
    "landsat": {"instruments": ["oli", "tirs"], "landsat:correction": "L2SP",
                "landsat:collection_number": "02", "landsat:collection_category": "T1"},
    "s1": {"constellation": "Sentinel-1", "sar:instrument_mode": "IW", "sar:frequency_band": "C",
           "sar:product_type": "GRD", "sar:polarizations": ["VV", "VH"], "sar:center_frequency": 5.405},
    "enmap": {"instruments": ["hsi"]},
    "desis": {"instruments": ["desis"]},
}


def collection_id(sensor: SensorSpec) -> str:
    """The demo collection of a product: the demo provider's collection, else the product name."""
    try:
        return sensor.provider("demo").collection or sensor.name
    except CatalogError:
        return sensor.name


def make_collection(sensor: SensorSpec, items: list[pystac.Item]) -> pystac.Collection:
    bboxes = [it.bbox for it in items]
    bbox = [min(b[0] for b in bboxes), min(b[1] for b in bboxes), max(b[2] for b in bboxes),
            max(b[3] for b in bboxes)]
    times = sorted(it.datetime for it in items)
    col = pystac.Collection(
        id=collection_id(sensor),
        title=f"SYNTHESIZED demo: {sensor.title}",
        description=(f"SYNTHESIZED scenes shaped like {sensor.title} for the SpectralEarth offline demo. "
                     "Physically plausible but not real acquisitions: do not use for science."),
        extent=pystac.Extent(pystac.SpatialExtent([bbox]), pystac.TemporalExtent([[times[0], times[-1]]])),
        license="CC0-1.0",
        extra_fields={SYNTHETIC_PROP: True},
    )
    col.providers = [pystac.Provider(name="SpectralEarth demo-scenes (synthesized)", roles=["producer"])]
    return col


def make_item(scene: DemoScene, sensor: SensorSpec, out: SceneOut) -> pystac.Item:
    """The STAC item of one product of a scene (assets with absolute hrefs; made relative on save)."""
    geom = out.footprint
    props: dict = {
        "platform": scene.platform,
        "eo:cloud_cover": out.cloud_cover,
        "title": f"SYNTHESIZED demo scene {scene.scene_id}",
        "description": "Synthesized by spectralearth demo-scenes; not a real acquisition.",
        SYNTHETIC_PROP: True,
        SENSOR_PROP: sensor.name,
        **PLATFORM_INFO.get(scene.group, {}),
        **scene.properties,
    }
    if out.epsg is not None:
        props["proj:epsg"] = out.epsg
    item = pystac.Item(id=scene.scene_id, geometry=mapping(geom), bbox=list(geom.bounds),
                       datetime=scene.datetime, properties=props)
    used = {"eo"}
    # Products sharing files (Landsat SR + ST) get every asset, as the real provider item has them.
    assets: dict = {}
    for name in [sensor.name, *sorted(out.assets)]:
        for a in out.assets[name]:
            assets.setdefault(a.key, a)
    for a in assets.values():
        extra: dict = {}
        if a.shape is not None:
            extra.update({"proj:shape": list(a.shape), "proj:transform": a.transform, "gsd": a.gsd})
            used.add("proj")
        if a.raster_bands:
            extra["raster:bands"] = a.raster_bands
            used.add("raster")
        if a.eo_bands:
            extra["eo:bands"] = a.eo_bands
        item.add_asset(a.key, pystac.Asset(href=str(a.path.resolve()), media_type=a.media_type,
                                           roles=a.roles, title=a.title, extra_fields=extra))
    if any(k.startswith("sat:") for k in props):
        used.add("sat")
    if any(k.startswith("sar:") for k in props):
        used.add("sar")
    item.stac_extensions = sorted(EXTENSIONS[k] for k in used)
    return item


def iso(dt: datetime) -> str:
    return dt.isoformat().replace("+00:00", "Z")
