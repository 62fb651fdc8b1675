"""The release's descriptions for people and ML tools: ``README.md`` (the dataset card) and
``croissant.json`` (MLCommons Croissant 1.0 JSON-LD), both of the latest version.

The card gives the counts per product, the coverage (extent, locations, partitions, time span),
the licences with their attribution and year, how to cite the release and how to read it (Python,
plain xarray, geopandas, DuckDB). Croissant describes the compacted index objects of the version
(a FileSet listing exactly its objects) as the record set ``patches`` with the index columns, so
``mlcroissant`` can list the patches. A synthesized release says so at the top of both.
"""

from __future__ import annotations

import json

from .catalogue import attribution, licence_years
from .storage import Location

CARD = "README.md"
CROISSANT = "croissant.json"

_CONTEXT = {
    "@language": "en", "@vocab": "https://schema.org/", "sc": "https://schema.org/",
    "cr": "http://mlcommons.org/croissant/", "dct": "http://purl.org/dc/terms/",
    "citeAs": "cr:citeAs", "column": "cr:column", "conformsTo": "dct:conformsTo",
    "data": {"@id": "cr:data", "@type": "@json"}, "dataType": {"@id": "cr:dataType", "@type": "@vocab"},
    "examples": {"@id": "cr:examples", "@type": "@json"}, "extract": "cr:extract", "field": "cr:field",
    "fileObject": "cr:fileObject", "fileSet": "cr:fileSet", "format": "cr:format", "includes": "cr:includes",
    "isLiveDataset": "cr:isLiveDataset", "key": "cr:key", "recordSet": "cr:recordSet", "source": "cr:source",
    "references": "cr:references", "transform": "cr:transform", "regex": "cr:regex",
    "rai": "http://mlcommons.org/croissant/RAI/", "equivalentProperty": "cr:equivalentProperty",
    "fileProperty": "cr:fileProperty", "jsonPath": "cr:jsonPath", "md5": "cr:md5", "parentField": "cr:parentField",
    "path": "cr:path", "repeated": "cr:repeated", "replace": "cr:replace", "samplingRate": "cr:samplingRate",
    "separator": "cr:separator", "subField": "cr:subField",
}

#: Index columns in the Croissant record set, with their schema.org types.
_FIELDS: tuple[tuple[str, str, str], ...] = (
    ("patch_id", "sc:Text", "product/cell/scene: unique id of the patch"),
    ("cell_id", "sc:Text", "grid cell (location) id EPSG_COL_ROW"),
    ("sensor", "sc:Text", "product name"),
    ("datetime", "sc:Date", "acquisition time (UTC)"),
    ("batch", "sc:Text", "batch of the product's arrays holding the patch"),
    ("row", "sc:Integer", "row of the patch in its batch's <sensor>/<batch>/data array"),
    ("scene_id", "sc:Text", "the provider's scene id"),
    ("valid_fraction", "sc:Float", "share of valid pixels"),
    ("cloud_fraction", "sc:Float", "share of cloud/shadow among valid pixels"),
    ("sha256", "sc:Text", "sha256 of the patch's stored bytes"),
    ("licence", "sc:Text", "licence id of the product"),
)


def _years(rows) -> dict[str, str]:
    return licence_years(rows) if len(rows) else {}


def _licence_lines(record: dict, rows) -> list[tuple[str, str, str, bool]]:
    """(product, licence id, attribution with its year, redistributable) per product."""
    from ..catalog import load_sensor

    years = _years(rows)
    out = []
    for sensor in sorted(record["counts"]):
        spec = load_sensor(sensor)
        out.append((sensor, spec.licence.id, attribution(spec.licence.attribution, years.get(sensor, "")),
                    spec.licence.redistributable))
    return out


def croissant_dict(record: dict, rows) -> dict:
    """The Croissant JSON-LD of a version (paths relative to the release root)."""
    synthesized = bool(record.get("synthesized"))
    tag = "SYNTHESIZED " if synthesized else ""
    desc = (f"{tag}SpectralEarth-MM release {record['release_id']} version {record['id']}: "
            f"{record['patches']} patches of {', '.join(sorted(record['counts']))} at {record['cells']} locations. "
            "The index records list each patch; its pixels are row `row` of the Zarr array "
            "`<sensor>/<batch>/data` (or `<sensor>/data` without a batch).")
    if synthesized:
        desc += " SYNTHESIZED demo data: not real acquisitions."
    licences = sorted({lic for _, lic, _, _ in _licence_lines(record, rows)})
    index_keys = [e["key"] for e in record["index"]]
    cols = set(rows.columns) if len(rows) else {f for f, _, _ in _FIELDS}
    fields = [{"@type": "cr:Field", "@id": f"patches/{name}", "name": name, "description": text, "dataType": dtype,
               "source": {"fileSet": {"@id": "index"}, "extract": {"column": name}}}
              for name, dtype, text in _FIELDS if name in cols]
    return {
        "@context": _CONTEXT, "@type": "sc:Dataset",
        "name": f"{record['release_id']}",
        "description": desc,
        "conformsTo": "http://mlcommons.org/croissant/1.0",
        "version": f"{int(record['id'][1:])}.0.0",
        "datePublished": record["created"],
        "license": [f"https://spdx.org/licenses/{lic}.html" if lic.upper().startswith("CC-") else lic
                    for lic in licences],
        "url": "./",
        "citeAs": cite_as(record),
        "creator": {"@type": "sc:Organization", "name": "SpectralEarth"},
        "isLiveDataset": False,
        "distribution": [
            {"@type": "cr:FileObject", "@id": "partitions", "name": "partitions.parquet",
             "contentUrl": record["partitions"], "encodingFormat": "application/x-parquet",
             "sha256": _sha(record, record["partitions"])},
            {"@type": "cr:FileSet", "@id": "index", "name": "index",
             "description": "compacted GeoParquet index of this version (sorted by cell_id, bbox covering column)",
             "encodingFormat": "application/x-parquet", "includes": index_keys},
        ],
        "recordSet": [{"@type": "cr:RecordSet", "@id": "patches", "name": "patches",
                       "description": f"{tag}one record per patch of version {record['id']}", "field": fields}],
    }


def _sha(record: dict, key: str) -> str:
    for e in record["index"]:
        if e["key"] == key:
            return e["sha256"]
    return record.get("partitions_sha256", "")


def cite_as(record: dict) -> str:
    year = record["created"][:4]
    return (f"@misc{{spectralearth_{record['release_id'].replace('-', '_')}_{record['id']},\n"
            f"  title = {{SpectralEarth-MM {record['release_id']}, version {record['id']}}},\n"
            f"  author = {{SpectralEarth contributors}},\n  year = {{{year}}},\n"
            f"  note = {{content sha256 {record['content_sha256']}}}\n}}")


def card_text(record: dict, rows, root: dict, url: str = "RELEASE") -> str:
    """The dataset card (Markdown) of a version."""
    import pandas as pd

    synthesized = bool(record.get("synthesized"))
    lines: list[str] = []
    if synthesized:
        lines += ["> **SYNTHESIZED DEMO DATA - NOT REAL ACQUISITIONS.** Every scene this release was built from",
                  "> was synthesized by `spectralearth demo-scenes`; use it to try the tools, never as data.", ""]
    lines += [f"# SpectralEarth-MM `{record['release_id']}` - version {record['id']}", "",
              f"{'SYNTHESIZED ' if synthesized else ''}Co-registered patches of several Earth-observation products "
              f"on a {record.get('cell_m')} m grid: one Zarr v3 store, a GeoParquet index, versions that never "
              "rewrite each other.", "",
              f"- version: {record['id']} (parent: {record['parent'] or 'none'}), published {record['created']}",
              f"- pipeline: {record['pipeline_version']}; content sha256 `{record['content_sha256']}`",
              f"- {record['patches']} patches at {record['cells']} locations", ""]
    lines += ["## Counts", "", "| product | patches | locations | licence | redistributable |", "|---|---:|---:|---|---|"]
    for sensor, c in sorted(record["counts"].items()):
        lines.append(f"| {sensor} | {c['patches']} | {c['cells']} | {c['licence']} | {'yes' if c['redistributable'] else 'no'} |")
    lines += ["", "## Coverage", ""]
    if len(rows):
        xmin, ymin, xmax, ymax = rows.total_bounds
        t = pd.to_datetime(rows["datetime"], utc=True)
        lines += [f"- extent (lon/lat): {xmin:.4f}, {ymin:.4f} to {xmax:.4f}, {ymax:.4f}",
                  f"- time: {t.min():%Y-%m-%d} to {t.max():%Y-%m-%d}", ""]
        lines += ["Locations (each `#` is a grid square holding at least one patch; north up):", "", "```",
                  *coverage_map(rows), "```", ""]
    lines += ["| partition | patches | bbox (lon/lat) |", "|---|---:|---|"]
    for e in record["index"]:
        b = e["bbox"]
        lines.append(f"| {e['partition']} | {e['rows']} | {b[0]:.3f}, {b[1]:.3f}, {b[2]:.3f}, {b[3]:.3f} |")
    lines += ["", "## Licences", "", "Each product keeps its own licence; attribute it as follows.", ""]
    for sensor, lic, text, redistributable in _licence_lines(record, rows):
        note = "" if redistributable else " (not redistributable: keep such a copy private)"
        lines.append(f"- **{sensor}** ({lic}{note}): {text}")
    lines += ["", "## How to cite", "", "```bibtex", cite_as(record), "```", "",
              "## How to read it", "", "```python",
              "import spectralearth_data as se",
              f"r = se.open_release({url!r}, version={record['id']!r})",
              "r.index                 # GeoDataFrame: one row per patch",
              f"r.dataset({sorted(record['counts'])[0]!r})       # xarray.Dataset with patch_id, cell_id, time, epsg",
              "```", "",
              "Without SpectralEarth code: the index is GeoParquet 1.1 (`geopandas.read_parquet(KEY, bbox=...)`, "
              f"or DuckDB on the objects listed in `{record['partitions']}`), each product's arrays are Zarr v3 "
              "(`xarray.open_zarr(RELEASE, group='<sensor>/<batch>')`), `row` of an index record is the patch's "
              "position along `patch` there. STAC: `stac/collection.json`, `stac/items.parquet`; "
              "Croissant: `croissant.json`; this version's record: "
              f"`versions/{record['id']}.json`.", ""]
    return "\n".join(lines)


def coverage_map(rows, width: int = 48, height: int = 16) -> list[str]:
    """A text map of where the patches are: the extent cut into ``width`` x ``height`` squares
    (fewer for a small extent), ``#`` where a patch's cell centre falls, ``.`` elsewhere."""
    import numpy as np

    if not len(rows):
        return []
    b = rows.geometry.bounds  # cell centres from the outlines' boxes (no planar centroid in lon/lat)
    x, y = np.asarray((b["minx"] + b["maxx"]) / 2), np.asarray((b["miny"] + b["maxy"]) / 2)
    xmin, ymin, xmax, ymax = rows.total_bounds
    w = max(1, min(width, len(set(np.round(x, 6)))))
    h = max(1, min(height, len(set(np.round(y, 6)))))
    ix = np.clip(((x - xmin) / max(xmax - xmin, 1e-12) * w).astype(int), 0, w - 1)
    iy = np.clip(((ymax - y) / max(ymax - ymin, 1e-12) * h).astype(int), 0, h - 1)
    grid = np.full((h, w), ".")
    grid[iy, ix] = "#"
    return [f"{ymax:8.3f} " + "".join(grid[0])] + ["         " + "".join(r) for r in grid[1:-1]] + \
        ([f"{ymin:8.3f} " + "".join(grid[-1])] if h > 1 else []) + [f"         {xmin:.3f} .. {xmax:.3f}"]


def write_croissant(loc: Location, record: dict, rows) -> None:
    loc.put(CROISSANT, json.dumps(croissant_dict(record, rows), indent=1).encode())


def write_card(loc: Location, record: dict, rows, root: dict) -> None:
    loc.put(CARD, card_text(record, rows, root, url=loc.url if loc.is_remote else "RELEASE").encode())
