"""What the pipeline makes of the items in one file: the library of ``spectralearth inspect-item``.

A file of items is parsed by the code of the source that would have listed them, and every item
goes through the same steps as in a search and a read:

* STAC API sources (``planetary-computer``, ``earth-search``, ``dlr-geoservice``): a STAC item,
  an ItemCollection or a search page (``features``); products are the source's providers of the
  item's collection (with their ``query``, e.g. Landsat's platforms), rows come from
  :func:`~.base.item_rows`;
* ``earthdata-cmr``: UMM-G records (a list, one record, or a CMR ``umm_json`` response with
  ``items``) through :func:`~.earthdata.granule_to_item` with the provider's ``asset_patterns``;
* ``local``: what :class:`~.local.LocalSource` reads (STAC files, stac-geoparquet, order folders),
  an order's ``METADATA.XML`` (:func:`~.local.parse_order_metadata`), or an EMIT L2A NetCDF file
  (checked for what :mod:`~spectralearth_data.engine.readers.emit` needs).

Each scene row then resolves the catalog's roles with the readers' own
:func:`~spectralearth_data.engine.readers.asset_href` (the data asset, or one asset per band, and
each QA layer as the readers name them) and its encoding with
:func:`~spectralearth_data.engine.readers.encoding.scene_encoding` (an order folder: the gains and
offsets of its METADATA.XML, as :func:`~spectralearth_data.engine.readers.enmap_order.apply_order_calibration`).
Nothing remote is opened: remote hrefs are only resolved, never read.
"""

from __future__ import annotations

import fnmatch
import json
import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from ..catalog import SensorSpec, load_catalog, load_sources
from ..credentials import redact, redact_url
from ..errors import InputDataError, SourceError

#: Suffixes read as JSON; any other PATH is a local product file or folder (``--source local``).
JSON_SUFFIXES = (".json", ".geojson")
#: EMIT L2A files read by the NetCDF reader (the same test as ``readers.read_scene``).
NETCDF_SUFFIXES = (".nc", ".nc4", ".h5")


@dataclass
class ItemReport:
    """One scene row of one item: what it resolves to, and what a read would trip over."""

    product: str
    scene_id: str
    source: str
    collection: str | None
    datetime: str | None
    epsg: int | None
    roles: dict[str, dict[str, str] | None]
    scale: Any
    offset: Any
    nodata: Any
    encoding: str
    problems: list[str] = field(default_factory=list)

    def to_json(self) -> dict[str, Any]:
        return {
            "product": self.product, "scene_id": self.scene_id, "source": self.source,
            "collection": self.collection, "datetime": self.datetime, "epsg": self.epsg,
            "roles": self.roles, "scale": self.scale, "offset": self.offset, "nodata": self.nodata,
            "encoding": self.encoding, "problems": list(self.problems),
        }


@dataclass
class Inspection:
    """Every item of a file: ``reports`` (one per scene row), ``notes`` (items the source would
    not list, and why) and ``problems`` (one line each, file-level and per scene)."""

    path: str
    reports: list[ItemReport]
    notes: list[str]
    file_problems: list[str] = field(default_factory=list)

    @property
    def problems(self) -> list[str]:
        out = list(self.file_problems)
        for r in self.reports:
            out.extend(f"{r.product} {r.scene_id}: {p}" for p in r.problems)
        return out


# -- reading the file ----------------------------------------------------------------------------


def _read_json(path: Path) -> Any:
    try:
        return json.loads(path.read_text())
    except (json.JSONDecodeError, UnicodeDecodeError) as e:
        raise SourceError(f"{path}: not valid JSON ({e})") from None


def _is_umm(doc: Any) -> bool:
    """UMM-G records: ``{umm: ...}`` / ``{meta, umm}``, a bare UMM-G record, a list of them, or a
    CMR ``umm_json`` search response (``items``)."""
    if isinstance(doc, list):
        return bool(doc) and all(isinstance(d, dict) and _is_umm(d) for d in doc)
    if not isinstance(doc, dict):
        return False
    if isinstance(doc.get("items"), list) and "features" not in doc:
        return _is_umm(doc["items"]) or not doc["items"]
    return isinstance(doc.get("umm"), dict) or "GranuleUR" in doc


def _umm_records(doc: Any, path: Path) -> list[dict[str, Any]]:
    if isinstance(doc, dict) and isinstance(doc.get("items"), list) and "features" not in doc:
        doc = doc["items"]
    records = doc if isinstance(doc, list) else [doc]
    out = []
    for r in records:
        if not isinstance(r, dict) or not (isinstance(r.get("umm"), dict) or "GranuleUR" in r):
            raise SourceError(f"{path}: not UMM-G granule records (expected a list of {{meta, umm}}, "
                              "one record, or a CMR umm_json response with 'items')")
        out.append(r if isinstance(r.get("umm"), dict) else {"umm": r})
    return out


def _stac_features(doc: Any, path: Path) -> list[dict[str, Any]]:
    """The items of a STAC API answer: one item, or the ``features`` of an ItemCollection or a
    search page (as pystac-client's ``items_as_dicts`` yields them)."""
    if isinstance(doc, dict) and isinstance(doc.get("features"), list):
        return [f for f in doc["features"] if isinstance(f, dict)]
    if isinstance(doc, dict) and doc.get("type") == "Feature":
        return [doc]
    kind = doc.get("type") if isinstance(doc, dict) else type(doc).__name__
    raise SourceError(f"{path}: expected a STAC item, ItemCollection or search page (features), got {kind!r}")


def _link_source(item: dict[str, Any], sources) -> str | None:
    """The STAC API source whose root URL the item's own links point into (self, root, parent,
    collection), if any."""
    hrefs = [link.get("href", "") for link in item.get("links") or [] if isinstance(link, dict)
             and link.get("rel") in {"self", "root", "parent", "collection"}]
    for s in sources.values():
        if s.kind == "stac-api" and s.url:
            root = s.url.rstrip("/") + "/"
            if any(h.startswith(root) or h.rstrip("/") == s.url.rstrip("/") for h in hrefs):
                return s.name
    return None


def _host_source(item: dict[str, Any], sources) -> str | None:
    """The STAC API source whose ``hosts`` (sources.yaml) serve the item's asset hrefs."""
    from urllib.parse import urlsplit

    hosts = {urlsplit(a.get("href", "")).hostname for a in (item.get("assets") or {}).values() if isinstance(a, dict)}
    for s in sources.values():
        if s.kind != "stac-api" or not s.hosts:
            continue
        include = [p for p in s.hosts if not p.startswith("!")]
        exclude = [p[1:] for p in s.hosts if p.startswith("!")]
        if any(h and any(fnmatch.fnmatch(h, p) for p in include) and not any(fnmatch.fnmatch(h, p) for p in exclude)
               for h in hosts):
            return s.name
    return None


def _collection_source(item: dict[str, Any], catalog: dict[str, SensorSpec], sources) -> str | None:
    """The one STAC API source whose providers list the item's collection."""
    coll = item.get("collection")
    found = {p.source for s in catalog.values() for p in s.providers
             if coll and p.collection == coll and sources.get(p.source) is not None
             and sources[p.source].kind == "stac-api"}
    return found.pop() if len(found) == 1 else None


def guess_source(item: dict[str, Any], catalog: dict[str, SensorSpec], sources) -> str:
    """The source a STAC item came from when ``--source`` is not given: its links, else the hosts
    of its hrefs, else the one STAC API that lists its collection, else ``local``."""
    return (_link_source(item, sources) or _host_source(item, sources)
            or _collection_source(item, catalog, sources) or "local")


# -- local product files -------------------------------------------------------------------------


def _emit_spec(catalog: dict[str, SensorSpec]) -> SensorSpec:
    spec = catalog.get("emit")
    if spec is None:
        raise SourceError("the catalog has no 'emit' product to read an EMIT NetCDF as")
    return spec


def _asset_patterns(spec: SensorSpec) -> dict[str, str]:
    out: dict[str, str] = {}
    for p in spec.providers:
        for k, v in p.asset_patterns.items():
            out.setdefault(k, v)
    return out


def _h5_names(f) -> set[str]:
    names: set[str] = set()
    f.visit(names.add)
    return names


def _check_emit_file(path: Path, kind: str, spec: SensorSpec) -> tuple[dict[str, Any], list[str]]:
    """The root attributes of an EMIT NetCDF, and what the reader would miss in it (one text
    each). ``kind`` is ``data`` (RFL) or ``mask``."""
    import h5py

    try:
        f = h5py.File(path, "r")
    except OSError as e:
        raise InputDataError(f"{path}: not a NetCDF4/HDF5 file ({redact(str(e))})") from None
    with f:
        names = _h5_names(f)
        attrs = {k: f.attrs[k] for k in f.attrs}
        lacks: list[str] = []
        if kind == "data":
            if "reflectance" not in names:
                lacks.append("variable 'reflectance'")
            if "location" not in names:
                lacks.append("group 'location' (glt_x, glt_y: the GLT the reader orthorectifies with)")
            else:
                lacks += [f"variable 'location/{v}'" for v in ("glt_x", "glt_y") if f"location/{v}" not in names]
            if "geotransform" not in attrs:
                lacks.append("attribute 'geotransform' (of the GLT's ortho grid)")
            if "sensor_band_parameters" not in names:
                lacks.append("group 'sensor_band_parameters' (wavelengths, good_wavelengths)")
            elif "reflectance" in names:
                shape = f["reflectance"].shape
                n = len(spec.bands)
                if len(shape) != 3 or shape[2] < n:
                    lacks.append(f"the catalog's {n} bands (reflectance has shape {tuple(shape)})")
        else:
            if "mask" not in names:
                lacks.append("variable 'mask'")
            if "sensor_band_parameters/mask_bands" not in names:
                lacks.append("variable 'sensor_band_parameters/mask_bands' (the mask layer names)")
            elif spec.qa is not None:
                have = [n.decode() if isinstance(n, bytes) else str(n) for n in f["sensor_band_parameters/mask_bands"][:]]
                missing = [e.layer for e in spec.qa.entries if e.flags and e.layer not in have]
                if missing:
                    lacks.append(f"the catalog's flag layers {missing} in mask_bands {have}")
    return attrs, lacks


def _text(value: Any) -> str | None:
    if isinstance(value, bytes):
        return value.decode(errors="replace")
    if hasattr(value, "tolist") and not isinstance(value, str):
        value = value.tolist()
        if isinstance(value, list) and len(value) == 1:
            value = value[0]
        if isinstance(value, bytes):
            return value.decode(errors="replace")
    return None if value is None else str(value)


_STAMP = re.compile(r"(\d{8}T\d{6})")


def emit_file_item(path: Path, catalog: dict[str, SensorSpec]) -> dict[str, Any]:
    """A STAC-like item for a local EMIT L2A NetCDF (the RFL file, or its MASK file): the file and
    the siblings of its granule (same name but for RFL/MASK/RFLUNCERT), keyed as the catalog's
    ``asset_patterns`` key the CMR links. Raises :class:`InputDataError` (one line) when a file
    lacks what the reader needs (``reflectance``, ``location``, ``geotransform``,
    ``sensor_band_parameters``; the mask file's ``mask`` and ``mask_bands``)."""
    import numpy as np
    import shapely.geometry

    spec = _emit_spec(catalog)
    patterns = _asset_patterns(spec)
    path = path.resolve()
    own = next((k for k, pat in patterns.items() if fnmatch.fnmatchcase(path.name, pat)), None)
    assets: dict[str, dict[str, Any]] = {}
    if own is None:
        assets[spec.data_asset or "data"] = {"href": str(path), "roles": ["data"]}
    else:
        # the granule's files share everything but the kind (EMIT_L2A_<RFL|MASK|RFLUNCERT>_...)
        kinds = {k: pat.split("*", 1)[0] for k, pat in patterns.items()}
        tail = path.name[len(kinds[own]):]
        for k, prefix in kinds.items():
            sibling = path.with_name(prefix + tail)
            if sibling.exists():
                assets[k] = {"href": str(sibling), "roles": ["data"]}
    problems: list[str] = []
    attrs: dict[str, Any] = {}
    data_key = spec.data_asset or "data"
    qa_key = spec.qa.asset if spec.qa is not None else None
    for key, kind in ((data_key, "data"), (qa_key, "mask")):
        if key is None or key not in assets:
            continue
        file_attrs, lacks = _check_emit_file(Path(assets[key]["href"]), kind, spec)
        if key == data_key:
            attrs = file_attrs
        if lacks:
            problems.append(f"{redact(assets[key]['href'])}: EMIT L2A {'RFL' if kind == 'data' else 'MASK'} "
                            f"NetCDF lacks {', '.join(lacks)}")
    if problems:
        raise InputDataError("; ".join(problems))
    if not attrs and data_key in assets:
        attrs = _check_emit_file(Path(assets[data_key]["href"]), "data", spec)[0]
    props: dict[str, Any] = {"spectralearth:sensor": spec.name}
    when = _text(attrs.get("time_coverage_start"))
    if not when:
        m = _STAMP.search(path.name)
        when = f"{m.group(1)[:4]}-{m.group(1)[4:6]}-{m.group(1)[6:8]}T{m.group(1)[9:11]}:{m.group(1)[11:13]}:{m.group(1)[13:15]}Z" if m else None
    if when:
        props["datetime"] = when
    wkt = _text(attrs.get("spatial_ref"))
    if wkt:
        try:
            from pyproj import CRS

            epsg = CRS.from_wkt(wkt).to_epsg()
        except Exception:  # noqa: BLE001 - pyproj raises CRSError and others for odd WKT
            epsg = None
        if epsg:
            props["proj:epsg"] = epsg
    geometry = None
    if data_key in assets and "geotransform" in attrs:
        import h5py

        with h5py.File(assets[data_key]["href"], "r") as f:
            ny, nx = f["location/glt_x"].shape
        gt = np.asarray(attrs["geotransform"], dtype=np.float64)
        x0, y0, x1, y1 = gt[0], gt[3], gt[0] + nx * gt[1], gt[3] + ny * gt[5]
        geometry = shapely.geometry.mapping(shapely.geometry.box(min(x0, x1), min(y0, y1), max(x0, x1), max(y0, y1)))
    cmr = next((p for p in spec.providers if p.short_name), None)
    stem = Path(assets.get(data_key, {"href": str(path)})["href"]).name
    return {
        "type": "Feature", "stac_version": "1.0.0", "id": stem.rsplit(".", 1)[0], "geometry": geometry,
        "properties": props, "assets": assets, "collection": cmr.short_name if cmr else spec.name,
    }


def _order_xml_for(path: Path) -> Path | None:
    """The METADATA.XML of the order a raster belongs to (the one whose product name it starts with)."""
    for x in sorted(path.parent.iterdir()):
        if x.is_file() and x.name.upper().endswith("METADATA.XML"):
            product = x.name.split("-METADATA")[0] if "-METADATA" in x.name else ""
            if product and path.name.startswith(product):
                return x
    return None


def local_items(path: Path, catalog: dict[str, SensorSpec]) -> list[dict[str, Any]]:
    """The items the local source reads from ``path``; a METADATA.XML, an order raster and an EMIT
    NetCDF are read as the one product they belong to."""
    from .local import LocalSource, parse_order_metadata, read_stac_file

    low = path.name.lower()
    if path.is_dir():
        return LocalSource(path).items()
    if low.endswith(NETCDF_SUFFIXES):
        return [emit_file_item(path, catalog)]
    if low.endswith(".xml"):
        return [parse_order_metadata(path)]
    if low.endswith((".json", ".geojson", ".parquet", ".geoparquet")):
        return read_stac_file(path)
    from ..engine.readers.enmap_order import ORDER_RASTER_SUFFIXES

    if low.endswith(ORDER_RASTER_SUFFIXES):
        xml = _order_xml_for(path)
        if xml is not None:
            return [parse_order_metadata(xml)]
        raise SourceError(f"{path}: no *METADATA.XML of its order beside it (an EnMAP/DESIS order raster is read "
                          "with its METADATA.XML)")
    raise SourceError(f"{path}: not a product file the local source reads (STAC JSON, stac-geoparquet, an "
                      "EnMAP/DESIS order folder or METADATA.XML, an EMIT L2A NetCDF)")


# -- one item ------------------------------------------------------------------------------------


def _scene(row: dict[str, Any] | None, item: dict[str, Any], source: str):
    from ..engine.readers import SceneRef
    from .base import clean_item

    if row is not None:
        return SceneRef.from_plan_row(row)
    cleaned = clean_item(item)
    return SceneRef(str(item.get("id")), source, {k: a["href"] for k, a in cleaned["assets"].items()}, cleaned)


def _reader_kind(spec: SensorSpec, scene) -> str:
    """Which reader ``readers.read_scene`` would take: ``emit``, ``order`` or ``cog``."""
    from ..engine.readers import asset_href

    if spec.data_asset is None:
        return "cog"
    try:
        low = asset_href(spec, scene, spec.data_asset).lower().split("?")[0]
    except InputDataError:
        return "cog"
    if low.endswith(NETCDF_SUFFIXES):
        return "emit"
    if low.endswith((".xml", "/")):
        return "order"
    return "cog"


def catalog_roles(spec: SensorSpec, scene) -> list[tuple[str, str]]:
    """(role, our asset name) for every asset a read of ``scene`` resolves: ``data`` (the cube) or
    one per band asset (named by it), then the QA: each layer of a product with one asset per layer
    (EnMAP), else the QA asset (S2 SCL, Landsat QA_PIXEL, DESIS QL_QUALITY-2, EMIT's mask file)."""
    roles: list[tuple[str, str]] = []
    if spec.data_asset is not None:
        roles.append(("data", spec.data_asset))
    for b in spec.bands:
        if b.asset is not None and all(b.asset != k for _, k in roles):
            roles.append((b.asset, b.asset))
    qa = spec.qa
    if qa is not None:
        if qa.kind == "layers" and not qa.banded and _reader_kind(spec, scene) != "emit":
            roles += [(str(e.layer), str(e.layer)) for e in qa.entries]
        else:
            roles.append((qa.asset, qa.asset))
    return roles


def _uniform(values: list[Any], names: list[str]) -> Any:
    """One value when every band has it, else ``{band: value}``."""
    if len(set(values)) <= 1:
        return values[0] if values else None
    return dict(zip(names, values))


def _encoding(spec: SensorSpec, scene, problems: list[str]) -> tuple[Any, Any, Any, str]:
    """(scale, offset, nodata, where it comes from) of this scene's files, as the reader takes them."""
    from ..engine.hrefs import local_path
    from ..engine.readers import stored_bands
    from ..engine.readers.encoding import scene_encoding
    from ..engine.readers.enmap_order import check_band_table, metadata_href, parse_order_bands

    bands = stored_bands(spec)
    names = [b.name for b in bands]
    nodata = _uniform([b.nodata for b in bands], names)
    href = metadata_href(scene)
    path = local_path(href) if href is not None else None
    if path is not None:
        try:
            order = parse_order_bands(str(Path(path)))
            check_band_table(order, bands, f"order {Path(path).name}", spec.name)
        except InputDataError as e:
            problems.append(str(e))
        else:
            scale = [float(g) if g == g and g != 0 else b.scale for g, b in zip(order.gain, bands)]
            offset = [float(o) if o == o else 0.0 for o in order.offset]
            return _uniform(scale, names), _uniform(offset, names), nodata, f"order {Path(path).name} gains/offsets"
    enc = scene_encoding(spec, scene, bands)
    origins = list(dict.fromkeys(e.origin for e in enc))
    return (_uniform([e.scale for e in enc], names), _uniform([e.offset for e in enc], names), nodata,
            "; ".join(origins))


def _local_emit_problems(spec: SensorSpec, scene, roles: dict[str, dict[str, str] | None]) -> list[str]:
    """What the EMIT reader would miss in the scene's local NetCDF files (remote ones are not opened)."""
    from ..engine.hrefs import local_path

    out = []
    qa_role = spec.qa.asset if spec.qa is not None else None
    for role, kind in (("data", "data"), (qa_role, "mask")):
        res = roles.get(role) if role else None
        if res is None:
            continue
        path = local_path(scene.assets[res["asset"]])
        if path is None or not Path(path).is_file():
            continue
        try:
            lacks = _check_emit_file(Path(path), kind, spec)[1]
        except InputDataError as e:
            out.append(str(e))
            continue
        if lacks:
            out.append(f"{redact(str(path))}: EMIT L2A {'RFL' if kind == 'data' else 'MASK'} NetCDF lacks "
                       f"{', '.join(lacks)}")
    return out


def _why_unlisted(item: dict[str, Any]) -> list[str]:
    from .base import clean_item, parse_datetime, parse_footprint

    why = []
    if not item.get("id"):
        why.append("no id")
    if parse_footprint(item.get("geometry")) is None:
        why.append("no polygon footprint")
    if parse_datetime(item.get("properties") or {}) is None:
        why.append("no datetime")
    if not clean_item(item)["assets"]:
        why.append("no asset with an href")
    return why


def inspect_row(spec: SensorSpec, item: dict[str, Any], row: dict[str, Any] | None, source: str,
                collection: str | None) -> ItemReport:
    """Resolve one scene row (``row`` None: the source would not list the item)."""
    from ..engine.readers import asset_href, check_supported

    problems: list[str] = []
    if row is None:
        problems.append(f"the {source} source would not list this item: {', '.join(_why_unlisted(item)) or 'unusable'}")
    scene = _scene(row, item, source)
    try:
        check_supported(spec, scene)
    except InputDataError as e:
        problems.append(str(e))
    roles: dict[str, dict[str, str] | None] = {}
    for role, key in catalog_roles(spec, scene):
        try:
            href = asset_href(spec, scene, key)
        except InputDataError as e:
            roles[role] = None
            msg = str(e).removeprefix(f"scene {scene.scene_id}: ")
            problems.append(f"{role}: missing ({msg})")
            continue
        real = next(k for k, v in scene.assets.items() if v == href)
        roles[role] = {"asset": real, "href": redact_url(href)}
    if _reader_kind(spec, scene) == "emit":
        problems += _local_emit_problems(spec, scene, roles)
    scale, offset, nodata, origin = _encoding(spec, scene, problems)
    when = row["datetime"] if row is not None else None
    epsg = row["epsg"] if row is not None else None
    return ItemReport(
        product=spec.name, scene_id=scene.scene_id, source=source, collection=collection,
        datetime=when.isoformat().replace("+00:00", "Z") if when is not None else None,
        epsg=int(epsg) if epsg is not None else None, roles=roles, scale=scale, offset=offset,
        nodata=nodata, encoding=origin, problems=problems,
    )


def _none_read(path: Path, reports: list[ItemReport], notes: list[str], what: str) -> list[str]:
    """The file-level problem of a file in which no item is read as a catalog product."""
    if reports:
        return []
    return [f"{path}: no {what} is read as a catalog product" + (" (see the notes)" if notes else "")]


def _stac_products(item: dict[str, Any], source: str, catalog: dict[str, SensorSpec],
                   notes: list[str]) -> list[tuple[SensorSpec, Any]]:
    """The products a search of STAC API ``source`` lists this item as, with their provider; a
    note for an item no product takes (another collection, or one the catalog refuses)."""
    from .base import matches_query

    coll = item.get("collection")
    props = item.get("properties") or {}
    out, refused = [], []
    for s in catalog.values():
        for p in s.providers:
            if p.source != source or coll is None or p.collection != coll:
                continue
            if p.unsupported:
                refused.append(f"{s.name}: {p.unsupported}")
            elif matches_query(props, p.query):
                out.append((s, p))
            break
    if not out:
        item_id = item.get("id")
        if refused:
            notes.append(f"{item_id} ({coll}): not read, {'; '.join(refused)}")
        elif coll is None:
            notes.append(f"{item_id}: no collection, so no product of {source}")
        else:
            notes.append(f"{item_id} ({coll}): not a collection the catalog reads from {source}")
    return out


def _inspect_local_item(item: dict, name: str, index, reports: list[ItemReport], notes: list[str]) -> None:
    """Reports of one item read the way a local source reads it (product by its collection)."""
    from .base import item_rows
    from .local import cloud_property, sensors_for_item

    wanted = sensors_for_item(item, index)
    if not wanted:
        notes.append(f"{item.get('id')} ({item.get('collection')}): not a collection of any catalog product")
    for s in wanted:
        rows = item_rows(item, [s], name, cloud_property(s, name))
        reports.append(inspect_row(s, item, rows[0] if rows else None, name, item.get("collection")))


def inspect_items(path: Path | str, source: str | None = None) -> Inspection:
    """Parse ``path`` as ``source`` would (default: guessed, see the module docstring) and
    resolve every scene row of every item."""
    from .base import item_rows
    from .earthdata import granule_to_item
    from .local import _absolute, collection_index

    path = Path(path)
    if not path.exists():
        raise SourceError(f"{path}: no such file or folder")
    catalog = load_catalog()
    sources = load_sources()
    if source is not None and source.startswith("local:"):
        source = "local"
    if source is not None and source not in sources:
        raise SourceError(f"unknown source {source!r}; known sources: {', '.join(sorted(sources))}")
    is_json = path.is_file() and path.name.lower().endswith(JSON_SUFFIXES)
    kind = sources[source].kind if source else None
    reports: list[ItemReport] = []
    notes: list[str] = []

    if kind in {"local", "demo"} or (source is None and not is_json):
        index = collection_index(catalog.values())
        name = source or "local"
        for item in local_items(path, catalog):
            _inspect_local_item(item, name, index, reports, notes)
        return Inspection(str(path), reports, notes, _none_read(path, reports, notes, "item"))

    if not is_json:
        raise SourceError(f"{path}: source {source!r} reads JSON (a STAC item/ItemCollection/search page or UMM-G "
                          "records); use --source local for a product file or folder")
    doc = _read_json(path)
    if kind == "cmr" or (source is None and _is_umm(doc)):
        name = source or next(n for n, s in sources.items() if s.kind == "cmr")
        for record in _umm_records(doc, path):
            ref = (record.get("umm") or {}).get("CollectionReference") or {}
            matched = [(s, p) for s in catalog.values() for p in s.providers
                       if p.source == name and p.short_name and p.short_name == ref.get("ShortName")
                       and (p.version is None or ref.get("Version") in (None, p.version))]
            gid = (record.get("umm") or {}).get("GranuleUR")
            if not matched:
                notes.append(f"{gid} ({ref.get('ShortName')} {ref.get('Version') or ''}".rstrip()
                             + f"): not a collection the catalog reads from {name}")
            for s, p in matched[:1]:
                item = granule_to_item(record, p.asset_patterns)
                rows = item_rows(item, [s], name, p.cloud_cover_property, p.short_name)
                reports.append(inspect_row(s, item, rows[0] if rows else None, name, p.short_name))
        return Inspection(str(path), reports, notes, _none_read(path, reports, notes, "granule"))

    if kind == "stac-api" or source is None:
        if source is None and isinstance(doc, dict) and doc.get("type") in {"Catalog", "Collection"}:
            return inspect_items(path, "local")
        index = collection_index(catalog.values())
        for item in _stac_features(doc, path):
            name = source or guess_source(item, catalog, sources)
            if sources[name].kind != "stac-api":
                # as read_stac_file does for a local file
                _inspect_local_item(_absolute(item, path.parent), name, index, reports, notes)
                continue
            for s, p in _stac_products(item, name, catalog, notes):
                rows = item_rows(item, [s], name, p.cloud_cover_property, p.collection)
                reports.append(inspect_row(s, item, rows[0] if rows else None, name, p.collection))
        return Inspection(str(path), reports, notes, _none_read(path, reports, notes, "item"))
    raise SourceError(f"source {source!r} (kind {kind}): inspect-item reads STAC API, CMR and local sources")


__all__ = ["Inspection", "ItemReport", "catalog_roles", "emit_file_item", "guess_source",
           "inspect_items", "inspect_row", "local_items"]
