"""Column contracts of the tables passed between stages (DESIGN.md).

Every stage reads and writes these columns, so a plan or an index written by one version can be
checked by another. JSON-valued columns hold text so that Parquet stays flat and readable by any
tool. Hrefs are always *unsigned*: signing and tokens are applied only when a reader opens them.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any


def stac_epsg(fields: Mapping[str, Any]) -> int | None:
    """The EPSG code stated by a STAC item's properties or one asset (the ``epsg`` column):
    ``proj:epsg`` (STAC 1.0) when it is a number, else ``proj:code`` ``"EPSG:<n>"`` (STAC 1.1).

    Providers differ in how they write it: DLR's DESIS items carry ``"proj:epsg": null`` beside
    ``"proj:code": "EPSG:32611"``, and DLR writes other numbers as text (``"enmap:tileID": "33"``,
    ``"raster:nodata": "null"``). A number given as text counts; a null, ``"null"`` or any other
    text falls through to ``proj:code``; None when neither names a code.
    """
    epsg = fields.get("proj:epsg")
    if isinstance(epsg, str) and epsg.strip().isdigit():
        epsg = int(epsg.strip())
    if isinstance(epsg, float) and epsg.is_integer():
        epsg = int(epsg)
    if isinstance(epsg, int) and not isinstance(epsg, bool) and epsg > 0:
        return epsg
    code = fields.get("proj:code")
    if isinstance(code, str):
        auth, _, number = code.strip().partition(":")
        if auth.upper() == "EPSG" and number.strip().isdigit():
            return int(number.strip())
    return None


#: The scene table every source returns (a GeoDataFrame, geometry in EPSG:4326).
SCENE_COLUMNS: tuple[str, ...] = (
    "scene_id",  # provider's item / granule id
    "sensor",  # product name from catalogs/sensors (enmap, emit, desis, s2, landsat, lst, s1)
    "datetime",  # acquisition time, tz-aware UTC
    "geometry",  # footprint, EPSG:4326 (antimeridian-crossing footprints split into a MultiPolygon)
    "cloud_cover",  # percent 0..100, NaN where unknown
    "assets",  # JSON text: {asset_key: href}, unsigned
    "source",  # source name from catalogs/sources.yaml (or "local")
    "collection",  # STAC collection id / CMR short name
    "epsg",  # native CRS EPSG code, <NA> for swath products (EMIT) and radar geometry
    "properties",  # JSON text: the item's properties (no credentials)
    "item",  # JSON text: the whole STAC item with unsigned hrefs (readers need raster:bands, proj:*)
)

#: One row per (cell, sensor, scene) chosen by co-location.
PLAN_COLUMNS: tuple[str, ...] = (
    "cell_id",  # grid cell id, e.g. 32633_00103_01452
    "cell_m",  # cell size in metres
    "epsg",  # the cell's CRS
    "sensor",
    "scene_id",
    "datetime",
    "anchor_sensor",  # the HSI (or --anchor) product this row is paired with
    "anchor_scene_id",
    "anchor_datetime",
    "dt_days",  # datetime - anchor_datetime, in days (signed)
    "cloud_cover",
    "rank",  # 0 = best candidate for this (cell, anchor scene, sensor)
    "reason",  # why it was chosen, e.g. "anchor", "cloud 3.1% dt +2.4 d"
    "hsi_combo",  # HSI products covering the cell, sorted, '+'-joined (e.g. "emit+enmap")
    "source",
    "assets",  # JSON text, unsigned hrefs
    "item",  # JSON text, unsigned STAC item
    "geometry",  # the cell outline in EPSG:4326
)

#: One row per patch in index/patches/<batch>/part-*.parquet (the release's commit log).
INDEX_COLUMNS: tuple[str, ...] = (
    "patch_id",  # f"{sensor}/{cell_id}/{scene_id}"
    "cell_id",
    "sensor",
    "datetime",
    "row",  # position along N in <sensor>/data
    "scene_id",
    "anchor_scene_id",
    "assets",  # JSON text, unsigned hrefs read for this patch
    "valid_fraction",
    "cloud_fraction",
    "coreg_shift_px",  # NaN where no reference was available
    "sha256",  # of the patch's data bytes (C, H, W, native dtype, C order)
    "pipeline_version",
    "licence",
    "redistributable",
    "batch",  # the writer's batch: the row's data is <sensor>/<batch>/data[row]
    "epsg",  # the cell's (and the patch's) CRS
    "transform",  # JSON text [a, b, c, d, e, f]: affine of the patch's pixel grid in that CRS (GDAL order
    #               x = c + a*col + b*row, y = f + d*col + e*row; rasterio.Affine(*transform))
    "geometry",  # the cell outline in EPSG:4326
)

#: One row per cell (locations; layout 2 derives them from the index).
LOCATION_COLUMNS: tuple[str, ...] = ("cell_id", "cell_m", "epsg", "sensors", "geometry")
