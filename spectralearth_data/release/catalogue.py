"""The release as STAC: ``stac/collection.json`` and ``stac/items.parquet`` (stac-geoparquet).

The collection describes the latest version: one entry of ``item_assets`` per product with its
bands (name, centre wavelength and FWHM in micrometres from the catalog, as the ``eo`` extension
states them), GSD, licence; providers with each product's attribution (its year filled in from
the acquisitions); the spatial and temporal extent; links to the version record, its partitions
table and the Zarr root. Items are one per location (cell): its outline, the time span of its
patches, its CRS (``proj:code``), the products present and, per product, an asset pointing into
the release (a relative href). The scenes a patch was read from are named by id; their hrefs are
linked (``derived_from``) only when they are URLs, never a builder's local paths.

A synthesized release says so in the collection's title and description and in every item.
"""

from __future__ import annotations

import json
import tempfile
from pathlib import Path

from .storage import Location

STAC_DIR = "stac"
EO_EXTENSION = "https://stac-extensions.github.io/eo/v2.0.0/schema.json"
PROJ_EXTENSION = "https://stac-extensions.github.io/projection/v2.0.0/schema.json"
ZARR_MEDIA_TYPE = "application/vnd.zarr; version=3"
PARQUET_MEDIA_TYPE = "application/vnd.apache.parquet"


def licence_years(rows) -> dict[str, str]:
    """Per product, the years of its acquisitions (``"2024"`` or ``"2023-2024"``)."""
    import pandas as pd

    out = {}
    for sensor, grp in rows.groupby("sensor", sort=True):
        years = sorted(set(pd.to_datetime(grp["datetime"], utc=True).dt.year))
        out[str(sensor)] = str(years[0]) if len(years) == 1 else f"{years[0]}-{years[-1]}"
    return out


def attribution(text: str, year: str) -> str:
    """A licence attribution with its year: in place of the catalog's ``[year]``, else after it."""
    if "[year]" in text:
        return text.replace("[year]", year)
    return text if not year or year in text else f"{text} ({year})"


def group_path(sensor: str, batch: str) -> str:
    """Where a product's arrays of one batch are: ``<sensor>/<batch>``, or ``<sensor>`` in the
    layout before batches."""
    return f"{sensor}/{batch}" if batch else sensor


def collection_dict(record: dict, rows, root: dict) -> dict:
    """The STAC Collection (a dict) of a version."""
    import pandas as pd
    import pystac

    from ..catalog import load_sensor

    synthesized = bool(record.get("synthesized"))
    tag = "SYNTHESIZED " if synthesized else ""
    times = pd.to_datetime(rows["datetime"], utc=True)
    xmin, ymin, xmax, ymax = (float(v) for v in rows.total_bounds)
    desc = (f"{tag}SpectralEarth-MM release {record['release_id']} version {record['id']}: "
            f"{record['patches']} co-registered patches of {len(record['counts'])} products at "
            f"{record['cells']} locations ({record.get('cell_m')} m cells), one Zarr v3 store with a "
            "GeoParquet index.")
    if synthesized:
        desc += " SYNTHESIZED demo data: every scene was synthesized; these are not real acquisitions."
    col = pystac.Collection(
        id=record["release_id"], title=f"{tag}SpectralEarth-MM {record['release_id']} ({record['id']})",
        description=desc, license="other",
        extent=pystac.Extent(pystac.SpatialExtent([[xmin, ymin, xmax, ymax]]),
                             pystac.TemporalExtent([[times.min().to_pydatetime(), times.max().to_pydatetime()]])),
        stac_extensions=[EO_EXTENSION, PROJ_EXTENSION],
    )
    years = licence_years(rows)
    providers = [pystac.Provider(name="SpectralEarth" + (" (synthesized demo)" if synthesized else ""),
                                 roles=[pystac.ProviderRole.PROCESSOR, pystac.ProviderRole.HOST],
                                 description=f"pipeline {record['pipeline_version']}")]
    item_assets = {}
    for sensor, c in sorted(record["counts"].items()):
        spec = load_sensor(sensor)
        text = attribution(spec.licence.attribution, years.get(sensor, ""))
        providers.append(pystac.Provider(name=text, roles=[pystac.ProviderRole.LICENSOR, pystac.ProviderRole.PRODUCER],
                                         description=f"{spec.title} ({spec.platform}); licence {spec.licence.id}",
                                         url=spec.licence.url))
        if spec.licence.url:
            col.add_link(pystac.Link(rel="license", target=spec.licence.url, title=f"{sensor}: {spec.licence.id}"))
        item_assets[sensor] = {
            "title": f"{tag}{spec.title}", "type": ZARR_MEDIA_TYPE, "roles": ["data"],
            "gsd": spec.gsd_m, "spectralearth:kind": spec.kind, "spectralearth:patches": c["patches"],
            "spectralearth:licence": spec.licence.id, "spectralearth:redistributable": spec.licence.redistributable,
            "bands": [_band(b) for b in spec.bands],
        }
    col.providers = providers
    col.add_asset("zarr", pystac.Asset(href="../", media_type=ZARR_MEDIA_TYPE, roles=["data"],
                                       title="The release's Zarr v3 root"))
    col.add_asset("index", pystac.Asset(href=f"../{record['partitions']}", media_type=PARQUET_MEDIA_TYPE,
                                        roles=["metadata"], title="Partitions of the compacted GeoParquet index"))
    col.add_asset("items", pystac.Asset(href="./items.parquet", media_type=PARQUET_MEDIA_TYPE, roles=["metadata"],
                                        title="STAC items, one per location (stac-geoparquet)"))
    col.add_asset("version", pystac.Asset(href=f"../versions/{record['id']}.json", media_type="application/json",
                                          roles=["metadata"], title="The version record"))
    col.summaries.add("spectralearth:products", sorted(record["counts"]))
    d = col.to_dict(include_self_link=False, transform_hrefs=False)
    d["item_assets"] = item_assets
    d["spectralearth:version"] = record["id"]
    d["spectralearth:synthesized"] = synthesized
    return d


def _band(b) -> dict:
    out: dict = {"name": b.name, "data_type": b.dtype}
    if b.common_name:
        out["eo:common_name"] = b.common_name
    if b.wavelength_nm is not None:
        out["eo:center_wavelength"] = round(b.wavelength_nm / 1000.0, 6)
        out["eo:full_width_half_max"] = round(float(b.fwhm_nm or 0) / 1000.0, 6)
    if b.polarisation:
        out["description"] = f"polarisation {b.polarisation}"
    if b.nodata is not None:
        out["nodata"] = b.nodata
    return out


def item_dicts(record: dict, rows) -> list[dict]:
    """One STAC Item (a dict) per location of the version."""
    import pandas as pd
    from shapely.geometry import mapping

    synthesized = bool(record.get("synthesized"))
    out = []
    rows = rows.assign(_t=pd.to_datetime(rows["datetime"], utc=True))
    for cell, grp in rows.groupby("cell_id", sort=True):
        geom = grp.geometry.iloc[0]
        props = {
            "start_datetime": grp["_t"].min().isoformat(), "end_datetime": grp["_t"].max().isoformat(),
            "datetime": None, "proj:code": f"EPSG:{str(cell).split('_', 1)[0]}",
            "spectralearth:cell_id": str(cell), "spectralearth:products": sorted(set(grp["sensor"])),
            "spectralearth:patches": len(grp), "spectralearth:version": record["id"],
            "spectralearth:scenes": sorted(set(grp["scene_id"].astype(str))),
        }
        if synthesized:
            props["description"] = f"SYNTHESIZED demo location {cell}: not real acquisitions"
        assets = {}
        for sensor, sg in grp.groupby("sensor", sort=True):
            batch = str(sg["batch"].iloc[0]) if "batch" in sg.columns else ""
            assets[str(sensor)] = {"href": f"../{group_path(str(sensor), batch)}/data", "type": ZARR_MEDIA_TYPE,
                                   "roles": ["data"], "spectralearth:rows": [int(r) for r in sg["row"]],
                                   "spectralearth:patch_ids": [str(p) for p in sg["patch_id"]]}
        links = [{"rel": "collection", "href": "./collection.json", "type": "application/json"}]
        for href in sorted(_scene_hrefs(grp["assets"])):
            links.append({"rel": "derived_from", "href": href})
        out.append({
            "type": "Feature", "stac_version": "1.1.0", "stac_extensions": [PROJ_EXTENSION],
            "id": str(cell), "collection": record["release_id"], "geometry": mapping(geom),
            "bbox": [float(v) for v in geom.bounds], "properties": props, "assets": assets, "links": links,
        })
    return out


def _scene_hrefs(assets) -> set[str]:
    """The scenes' own hrefs that are URLs (local paths of the builder are never stored)."""
    out: set[str] = set()
    for text in assets:
        try:
            hrefs = json.loads(text) if isinstance(text, str) else {}
        except ValueError:
            continue
        for h in hrefs.values():
            if isinstance(h, str) and h.split("://", 1)[0] in ("https", "http", "s3", "gs", "az", "abfs"):
                out.add(h)
    return out


def write_stac(loc: Location, record: dict, rows, root: dict) -> None:
    """Write ``stac/collection.json`` and ``stac/items.parquet`` of ``record`` at ``loc``."""
    import stac_geoparquet.arrow as sga

    col = collection_dict(record, rows, root)
    items = item_dicts(record, rows)
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / "items.parquet"
        sga.to_parquet(sga.parse_stac_items_to_arrow(items), path, collections={col["id"]: col})
        loc.put(f"{STAC_DIR}/items.parquet", path.read_bytes())
    loc.put(f"{STAC_DIR}/collection.json", json.dumps(col, indent=1).encode())
