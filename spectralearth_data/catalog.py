"""Typed access to the facts in ``catalogs/``: sensors, sources and regions.

Sensor facts live only in ``catalogs/sensors/<name>.yaml``; this module turns them into frozen
pydantic models once, at the edge. A malformed file raises :class:`CatalogError` naming the file
and the field (``catalogs/sensors/enmap.yaml: bands.3.wavelength_nm: ...``).

Large band tables (hyperspectral products) may live in a CSV next to the YAML
(``band_table: ../band_tables/enmap.csv``) with columns ``name, wavelength_nm, fwhm_nm`` and
optionally ``usable``; per-band numeric defaults come from the product's ``band_defaults``.
"""

from __future__ import annotations

import csv
import functools
import importlib.resources
import json
import os
from pathlib import Path
from typing import Any, Literal

import yaml
from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator, model_validator

from .errors import CatalogError, PixelGridError, describe_validation
from .grid import pixels_per_cell
from .masks import MaskFlag

#: Environment variable that points at another catalogs/ folder (e.g. in a container image).
CATALOG_ENV = "SPECTRALEARTH_CATALOGS"

#: The cell size the per-product ``patch_px`` values refer to (DESIGN.md, "The grid").
DEFAULT_CELL_M = 3840


def _packaged_catalogs() -> Path:
    """The catalog shipped in an installed wheel (package data ``spectralearth_data/catalogs``),
    else the top-level ``catalogs/`` of a source checkout (an editable install maps no data)."""
    shipped = importlib.resources.files(__package__) / "catalogs"
    if shipped.is_dir():
        return Path(str(shipped))
    return Path(__file__).resolve().parent.parent / "catalogs"


def catalog_root() -> Path:
    """The ``catalogs/`` folder: ``$SPECTRALEARTH_CATALOGS``, else the one shipped with the package."""
    env = os.environ.get(CATALOG_ENV)
    root = Path(env) if env else _packaged_catalogs()
    if not (root / "sensors").is_dir():
        raise CatalogError(f"{root}: no sensors/ folder; set {CATALOG_ENV} to a catalogs/ folder")
    return root


class _Frozen(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")


DType = Literal["uint8", "uint16", "int16", "int32", "float32", "float64"]
ProductKind = Literal["hsi", "multispectral", "thermal", "sar"]


class BandSpec(_Frozen):
    """One band of a product, with physical-unit conversion ``value = dn * scale + offset``."""

    name: str = Field(description="Canonical band name, unique within the product (e.g. B04, band_057)")
    asset: str | None = Field(
        None,
        description="Asset key holding this band when each band is its own asset (COG per band); "
        "None when the band is a layer of the product's cube asset",
    )
    index: int | None = Field(None, ge=0, description="0-based band index inside a cube asset")
    common_name: str | None = Field(None, description="STAC eo common name (red, nir, swir16, vv ...)")
    wavelength_nm: float | None = Field(None, gt=0, description="Centre wavelength in nm (None for SAR)")
    fwhm_nm: float | None = Field(None, gt=0, description="Full width at half maximum in nm")
    wavelength_source: str | None = Field(None, description="Where the wavelength/FWHM values come from")
    polarisation: str | None = Field(None, description="SAR polarisation (VV, VH, HH, HV)")
    gsd_m: float | None = Field(
        None, gt=0, description="Native GSD of this band's asset when it differs from the product's gsd_m"
    )
    unit: str = Field("reflectance", description="Physical unit after scale/offset")
    dtype: DType = Field(description="Native data type in the source and in the store")
    scale: float = Field(1.0, description="Multiply the stored number by this ...")
    offset: float = Field(0.0, description="... then add this to get the physical value")
    nodata: float | None = Field(None, description="Native fill value (None: no fill value)")
    valid_range: tuple[float, float] = Field(description="Valid native (stored) values, inclusive")
    usable: bool = Field(True, description="False for bands dropped from the model input")

    @model_validator(mode="after")
    def _check(self) -> BandSpec:
        lo, hi = self.valid_range
        if lo > hi:
            raise ValueError(f"valid_range {self.valid_range} has min > max")
        if (self.wavelength_nm is None) != (self.fwhm_nm is None):
            raise ValueError("wavelength_nm and fwhm_nm must be given together")
        return self


class QAClass(_Frozen):
    """One QA value, bit or layer and the mask flags it sets."""

    value: int | None = Field(None, description="Class value (kind=classes)")
    bit: int | None = Field(None, ge=0, le=31, description="Bit position (kind=bits)")
    layer: str | None = Field(
        None, description="Layer name (kind=layers): the asset key of a single-band layer, or the "
        "name of band ``band`` of the QA asset"
    )
    band: int | None = Field(
        None, ge=1, description="1-based band of the QA asset holding this layer (kind=layers, all layers "
        "in one multi-band raster, e.g. DESIS QL_QUALITY-2); None: the layer is its own asset"
    )
    meaning: str = Field(description="What the provider documents for it")
    flags: tuple[str, ...] = Field((), description="Our mask flags it sets (see masks.MaskFlag)")
    classes: dict[int, tuple[str, ...]] | None = Field(
        None, description="kind=layers: the layer holds class values, not 0/1 (EnMAP QL_QUALITY_CLASSES, "
        "QL_PIXELMASK): value -> our flags; values not listed set none. None: any value > 0 sets ``flags``"
    )
    per_band: bool = Field(
        False, description="kind=layers: the layer has one band per spectral band of the data cube, in cube "
        "order (EnMAP QL_PIXELMASK); a pixel gets the flags of any *usable* band's value"
    )

    @field_validator("flags")
    @classmethod
    def _known_flags(cls, v: tuple[str, ...]) -> tuple[str, ...]:
        for name in v:
            MaskFlag.from_name(name)
        return v

    @field_validator("classes")
    @classmethod
    def _known_class_flags(cls, v: dict[int, tuple[str, ...]] | None) -> dict[int, tuple[str, ...]] | None:
        for names in (v or {}).values():
            for name in names:
                MaskFlag.from_name(name)
        return v

    @model_validator(mode="after")
    def _classes_or_flags(self) -> QAClass:
        if self.classes is not None and self.flags:
            raise ValueError("give either 'flags' (set where the layer is > 0) or 'classes' (value -> flags), not both")
        return self

    @property
    def mask_bits(self) -> int:
        bits = 0
        for name in self.flags:
            bits |= int(MaskFlag.from_name(name))
        return bits

    def class_bits(self) -> dict[int, int]:
        """``classes`` as value -> uint8 flag bits (values that set no flag left out)."""
        out = {}
        for value, names in (self.classes or {}).items():
            bits = 0
            for name in names:
                bits |= int(MaskFlag.from_name(name))
            if bits:
                out[int(value)] = bits
        return out

    @property
    def sets_flags(self) -> bool:
        """True when some value of this entry sets a mask flag (so the layer must be read)."""
        return bool(self.mask_bits or self.class_bits())


class QASpec(_Frozen):
    """How the product's QA/cloud-mask asset maps onto :class:`MaskFlag` bits."""

    asset: str = Field(description="Asset key of the QA layer (or the mask group for EMIT)")
    kind: Literal["classes", "bits", "layers"] = Field(
        description="classes: one value per pixel (S2 SCL); bits: bit flags (Landsat QA_PIXEL); "
        "layers: one 0/1 layer per condition (EMIT mask, EnMAP quality layers, the bands of DESIS "
        "QL_QUALITY-2)"
    )
    dtype: DType = Field("uint8", description="Native dtype of the QA layer")
    resampling: Literal["nearest"] = "nearest"
    entries: tuple[QAClass, ...] = Field(description="The documented values/bits/layers")
    reference: str = Field(description="Document that defines the QA values")

    @model_validator(mode="after")
    def _check_entries(self) -> QASpec:
        key = {"classes": "value", "bits": "bit", "layers": "layer"}[self.kind]
        for i, e in enumerate(self.entries):
            if getattr(e, key) is None:
                raise ValueError(f"entries.{i}: kind={self.kind} needs '{key}'")
        banded = [e.band is not None for e in self.entries]
        if any(banded):
            if self.kind != "layers":
                raise ValueError(f"entries: 'band' is for kind=layers, not kind={self.kind}")
            if not all(banded):
                i = banded.index(False)
                raise ValueError(f"entries.{i}: give every layer a 'band' of {self.asset!r}, or none")
            bands = [e.band for e in self.entries if e.band is not None]
            dupes = sorted({b for b in bands if bands.count(b) > 1})
            if dupes:
                raise ValueError(f"entries: band(s) {dupes} given to more than one layer")
        for i, e in enumerate(self.entries):
            if (e.classes is not None or e.per_band) and self.kind != "layers":
                raise ValueError(f"entries.{i}: 'classes'/'per_band' are for kind=layers, not kind={self.kind}")
            if e.per_band and e.band is not None:
                raise ValueError(f"entries.{i}: a per_band layer is its own asset; it cannot also be band {e.band}")
        return self

    @property
    def banded(self) -> bool:
        """True when the layers are bands of the one QA asset (``entries[i].band``), False when each
        layer is its own single-band asset."""
        return bool(self.entries) and self.entries[0].band is not None


class LicenceSpec(_Frozen):
    id: str = Field(description="Short licence id (e.g. CC-BY-4.0, copernicus-open, public-domain)")
    redistributable: bool = Field(description="May patches be shipped in a public export?")
    attribution: str = Field(description="Attribution line required by the licence")
    url: str | None = None


class ProviderSpec(_Frozen):
    """Where a product is found: a source name from sources.yaml plus its collection."""

    source: str = Field(description="A name in catalogs/sources.yaml")
    collection: str | None = Field(None, description="STAC collection id")
    short_name: str | None = Field(None, description="CMR short name (Earthdata)")
    provider: str | None = Field(None, description="CMR provider id, e.g. LPCLOUD")
    version: str | None = Field(
        None, description="CMR collection version, searched as text (EMITL2ARFL: \"001\")"
    )
    asset_map: dict[str, str] = Field(
        default_factory=dict,
        description="Our band/QA asset name -> this provider's asset key, where they differ",
    )
    asset_patterns: dict[str, str] = Field(
        default_factory=dict,
        description="Our asset name -> glob on the file name of the href (fnmatch, case-sensitive): "
        "how a provider's unnamed or positional links (CMR 'GET DATA' URLs, CMR-STAC data1/data2) "
        "are recognised",
    )
    query: dict[str, Any] = Field(default_factory=dict, description="Extra STAC query filters")
    cloud_cover_property: str | None = Field("eo:cloud_cover", description="Cloud-cover property")
    offset_applied_property: str | None = Field(
        None,
        description="Item property that, when true, says the band offset is already in the pixels: the "
        "offset listed in the item's raster:bands must not be applied again (Earth Search "
        "sentinel-2-l2a: earthsearch:boa_offset_applied)",
    )
    unsupported: str | None = Field(
        None,
        description="Why this provider's collection cannot be read as this product; searching it for the "
        "product is refused with this reason, and its scenes are not tiled",
    )
    notes: str | None = None

    @model_validator(mode="after")
    def _has_id(self) -> ProviderSpec:
        if self.collection is None and self.short_name is None and self.source not in {"local", "demo"}:
            raise ValueError("a provider needs 'collection' or 'short_name'")
        return self


class OffsetRule(_Frozen):
    """A scene-dependent band offset: ``offset_from`` when the item property ``property`` is at
    least ``threshold`` (compared as text, e.g. ``"05.10" >= "04.00"``), else ``offset_before``.

    Sentinel-2 L2A from processing baseline 04.00 on stores ``DN = 10000 * rho + 1000``;
    older products have no offset, and Planetary Computer items carry no ``raster:bands``.
    """

    property: str = Field(description="Item property that decides (e.g. s2:processing_baseline)")
    threshold: str = Field(description="First property value the newer offset applies to")
    offset_before: float = Field(description="Offset for items older than the threshold")
    offset_from: float = Field(description="Offset for items at or after the threshold")
    note: str | None = None

    def offset_for(self, properties: dict[str, Any]) -> float:
        """The offset for a scene with these STAC properties (newer rule when the value is missing)."""
        value = properties.get(self.property)
        if value is None:
            return self.offset_from
        return self.offset_from if str(value) >= self.threshold else self.offset_before


class SensorSpec(_Frozen):
    """Everything the pipeline knows about one product (one file in catalogs/sensors/)."""

    name: str = Field(description="Product name used everywhere: enmap, emit, desis, s2, landsat, lst, s1")
    title: str
    kind: ProductKind
    platform: str = Field(description="Satellite(s)/instrument")
    gsd_m: float = Field(gt=0, description="Native ground sampling distance in metres")
    patch_px: int = Field(gt=0, description="Patch size in pixels for the default 3840 m cell")
    data_asset: str | None = Field(
        None, description="Asset key of the cube when all bands are in one asset (HSI)"
    )
    bands: tuple[BandSpec, ...]
    qa: QASpec | None = Field(None, description="QA/cloud mask; None where the product has none (S1)")
    licence: LicenceSpec
    providers: tuple[ProviderSpec, ...]
    offset_rule: OffsetRule | None = Field(
        None, description="Scene-dependent offset overriding the bands' offset (S2 processing baseline)"
    )
    time_window_days: float = Field(30, gt=0, description="Default co-location window (+/- days)")
    references: tuple[str, ...] = ()

    @model_validator(mode="after")
    def _check(self) -> SensorSpec:
        names = [b.name for b in self.bands]
        dupes = sorted({n for n in names if names.count(n) > 1})
        if dupes:
            raise ValueError(f"bands: duplicate band names {dupes}")
        try:
            fits = pixels_per_cell(DEFAULT_CELL_M, self.gsd_m) == self.patch_px
        except PixelGridError:
            fits = False
        if not fits:
            raise ValueError(
                f"patch_px: {self.patch_px} px x {self.gsd_m} m != the default cell of {DEFAULT_CELL_M} m"
            )
        if self.kind == "hsi":
            wl = [b.wavelength_nm for b in self.bands]
            if any(w is None for w in wl):
                raise ValueError("bands: every hyperspectral band needs wavelength_nm and fwhm_nm")
            if any(b <= a for a, b in zip(wl, wl[1:])):  # type: ignore[operator]
                raise ValueError("bands: wavelengths must be strictly increasing")
        return self

    @property
    def usable_bands(self) -> tuple[BandSpec, ...]:
        return tuple(b for b in self.bands if b.usable)

    def patch_px_for(self, cell_m: float) -> int:
        """Patch size in pixels for a cell of ``cell_m`` metres (must be a multiple of the GSD;
        :func:`spectralearth_data.grid.pixels_per_cell`)."""
        try:
            return pixels_per_cell(cell_m, self.gsd_m)
        except PixelGridError:
            raise CatalogError(f"cell size {cell_m} m is not a multiple of {self.name}'s {self.gsd_m} m GSD") from None

    def provider(self, source: str) -> ProviderSpec:
        """The default provider of ``source`` (the first one listed for it)."""
        for p in self.providers:
            if p.source == source:
                return p
        have = ", ".join(p.source for p in self.providers)
        raise CatalogError(f"sensor {self.name!r} has no provider for source {source!r} (has: {have})")

    def provider_for(self, source: str, collection: str | None) -> ProviderSpec | None:
        """The provider a scene came from: ``source`` with ``collection`` (the item's), else the
        one provider of any source that lists ``collection``, else ``source``'s default; None
        when the product has none of these."""
        mine = [p for p in self.providers if p.source == source]
        exact = [p for p in mine if collection is not None and p.collection == collection]
        if exact:
            return exact[0]
        if collection is not None:
            listed = [p for p in self.providers if p.collection == collection]
            if listed and len({(p.offset_applied_property, p.unsupported is None) for p in listed}) == 1:
                return listed[0]
        return mine[0] if mine else None

    @property
    def offset_applied_properties(self) -> tuple[str, ...]:
        """Item properties any provider of this product uses to say its offset is already applied."""
        return tuple(dict.fromkeys(p.offset_applied_property for p in self.providers if p.offset_applied_property))


class SourceSpec(_Frozen):
    """One entry of catalogs/sources.yaml."""

    name: str
    kind: Literal["stac-api", "cmr", "local", "demo"]
    url: str | None = Field(None, description="API root (STAC) or CMR search root")
    auth: Literal["none", "planetary-computer", "earthdata", "dlr"] = "none"
    hosts: tuple[str, ...] = Field(
        (), description="Hosts (fnmatch patterns; a leading '!' excludes) whose hrefs need this source's auth "
        "whichever source listed them (e.g. Planetary Computer blobs copied into a local: catalogue)")
    supports_query: bool = Field(False, description="Server-side query/filter (else client side)")
    page_size: int = Field(100, gt=0)
    max_page_size: int | None = Field(
        None, gt=0, description="The largest page (`limit`) the server accepts; page_size may not exceed it")
    paging: Literal["next-link", "start-index"] = Field(
        "next-link", description="How pages follow each other: the server's rel=next links (STAC API), or "
        "`startIndex` (items already read) in the POST body, until a page comes back short")
    spatial: Literal["intersects", "bbox"] = Field(
        "intersects", description="What the search sends for the region: its geometry (`intersects`) or its "
        "lon/lat bounding box (`bbox`); the exact region is always applied again on the client")
    cloud_filter: Literal["query", "cql2-json", "none"] = Field(
        "query", description="How cloud cover goes to the server: the STAC `query` extension (only with "
        "supports_query and the API's query conformance), a CQL2-JSON `filter`, or not at all; it is always "
        "applied again on the client")
    max_pages: int | None = Field(
        None, gt=0, description="At most this many pages per collection and search; a search that needs "
        "more fails with the count so far and how to narrow it (None: no bound)")
    max_concurrency: int = Field(4, gt=0, description="Named concurrency limit for this provider")
    description: str = ""

    @model_validator(mode="after")
    def _page_within_cap(self) -> SourceSpec:
        if self.max_page_size is not None and self.page_size > self.max_page_size:
            raise ValueError(f"page_size {self.page_size} is above this server's max_page_size {self.max_page_size}")
        if self.kind != "stac-api" and (self.paging != "next-link" or self.spatial != "intersects"
                                         or self.cloud_filter != "query"):
            raise ValueError(f"paging/spatial/cloud_filter are for kind stac-api, not kind {self.kind}")
        return self

    @property
    def limit(self) -> int:
        """The ``limit`` sent: page_size, never above max_page_size."""
        return min(self.page_size, self.max_page_size) if self.max_page_size else self.page_size


class Region(_Frozen):
    """A named region: a polygon in EPSG:4326 read from catalogs/regions/<name>.geojson."""

    name: str
    title: str
    geometry: dict[str, Any] = Field(description="GeoJSON geometry (Polygon or MultiPolygon), EPSG:4326")
    path: str
    start: str | None = Field(None, description="Suggested period start (ISO date)")
    end: str | None = Field(None, description="Suggested period end (ISO date)")
    description: str = ""

    @property
    def shape(self):  # -> shapely geometry
        import shapely.geometry

        return shapely.geometry.shape(self.geometry)


# -- loading -------------------------------------------------------------------------------------


def _read_yaml(path: Path) -> dict[str, Any]:
    try:
        data = yaml.safe_load(path.read_text())
    except FileNotFoundError:
        raise CatalogError(f"{path}: file not found") from None
    except yaml.YAMLError as e:
        mark = getattr(e, "problem_mark", None)
        where = f" line {mark.line + 1}" if mark is not None else ""
        raise CatalogError(f"{path}:{where} not valid YAML ({getattr(e, 'problem', e)})") from None
    if not isinstance(data, dict):
        raise CatalogError(f"{path}: expected a mapping at the top level")
    return data


def _read_band_table(path: Path, defaults: dict[str, Any], yaml_path: Path) -> list[dict[str, Any]]:
    try:
        rows = list(csv.DictReader(path.open()))
    except FileNotFoundError:
        raise CatalogError(f"{yaml_path}: band_table: file not found: {path}") from None
    bands = []
    for i, row in enumerate(rows):
        try:
            band = dict(defaults)
            band["name"] = row["name"]
            band["index"] = i
            band["wavelength_nm"] = float(row["wavelength_nm"])
            band["fwhm_nm"] = float(row["fwhm_nm"])
            if row.get("usable", "") != "":
                band["usable"] = row["usable"].strip().lower() in {"1", "true", "yes"}
        except (KeyError, ValueError) as e:
            raise CatalogError(f"{path}: row {i + 2}: bad or missing column ({e})") from None
        bands.append(band)
    return bands


def parse_sensor(path: Path) -> SensorSpec:
    """Read and validate one sensor YAML file."""
    path = Path(path)
    data = _read_yaml(path)
    defaults = data.pop("band_defaults", {}) or {}
    table = data.pop("band_table", None)
    bands = list(data.get("bands") or [])
    if table is not None:
        if bands:
            raise CatalogError(f"{path}: bands: give either 'bands' or 'band_table', not both")
        bands = _read_band_table((path.parent / table).resolve(), defaults, path)
    else:
        bands = [{**defaults, **b} if isinstance(b, dict) else b for b in bands]
    data["bands"] = bands
    try:
        spec = SensorSpec.model_validate(data)
    except ValidationError as e:
        raise CatalogError(describe_validation(e, str(path))) from None
    if spec.name != path.stem:
        raise CatalogError(f"{path}: name: {spec.name!r} must match the file name {path.stem!r}")
    return spec


def load_sensor(name: str, root: Path | None = None) -> SensorSpec:
    """The :class:`SensorSpec` of product ``name`` (e.g. ``"enmap"``)."""
    root = root or catalog_root()
    path = root / "sensors" / f"{name}.yaml"
    if not path.exists():
        known = ", ".join(sensor_names(root))
        raise CatalogError(f"unknown product {name!r}; known products: {known}")
    return parse_sensor(path)


def sensor_names(root: Path | None = None) -> list[str]:
    root = root or catalog_root()
    return sorted(p.stem for p in (root / "sensors").glob("*.yaml"))


def sensor_spec(name: str, root: Path | None = None) -> SensorSpec:
    """:func:`load_sensor`, parsed once per process and catalog folder (the one cache of sensor
    specs): a tiling task asks for the same few products many times, and one parse (YAML + band
    table) costs ~80 ms."""
    return _sensor_spec(str(root or catalog_root()), name)


@functools.lru_cache(maxsize=64)
def _sensor_spec(root: str, name: str) -> SensorSpec:
    return load_sensor(name, Path(root))


def load_catalog(root: Path | None = None) -> dict[str, SensorSpec]:
    """All products, keyed by name (each validated once per process, see :func:`sensor_spec`)."""
    root = root or catalog_root()
    return {n: sensor_spec(n, root) for n in sensor_names(root)}


def load_sources(root: Path | None = None) -> dict[str, SourceSpec]:
    """The sources in catalogs/sources.yaml, keyed by name."""
    path = (root or catalog_root()) / "sources.yaml"
    data = _read_yaml(path)
    items = data.get("sources")
    if not isinstance(items, list):
        raise CatalogError(f"{path}: sources: expected a list of sources")
    out: dict[str, SourceSpec] = {}
    for i, item in enumerate(items):
        try:
            spec = SourceSpec.model_validate(item)
        except ValidationError as e:
            raise CatalogError(describe_validation(e, str(path), loc_prefix=f"sources.{i}.")) from None
        out[spec.name] = spec
    return out


def parse_region(path: Path, name: str | None = None, feature: str | None = None) -> Region:
    """Read a region GeoJSON file (a Feature, a FeatureCollection, or a geometry).

    A FeatureCollection of several features is the union of their polygons, or, with ``feature``,
    the one feature whose ``name`` property (or ``id``) is ``feature``.
    """
    import shapely
    import shapely.geometry

    path = Path(path)
    try:
        doc = json.loads(path.read_text())
    except FileNotFoundError:
        raise CatalogError(f"{path}: region file not found") from None
    except json.JSONDecodeError as e:
        raise CatalogError(f"{path}: not valid JSON (line {e.lineno}: {e.msg})") from None
    if not isinstance(doc, dict) or "type" not in doc:
        raise CatalogError(f"{path}: type: missing; expected a GeoJSON Feature or FeatureCollection")
    props: dict[str, Any] = {}
    where = "geometry"
    if doc["type"] == "FeatureCollection":
        feats = [f for f in (doc.get("features") or []) if isinstance(f, dict)]
        if not feats:
            raise CatalogError(f"{path}: features: empty; expected at least one feature")
        if feature is not None:
            picked = [f for f in feats if feature in {(f.get("properties") or {}).get("name"), f.get("id")}]
            if not picked:
                raise CatalogError(f"{path}: no feature named {feature!r}; {_feature_names(feats)}")
            feats = picked[:1]
        if len(feats) == 1:
            doc = feats[0]
        else:
            shapes = [_region_shape(path, f.get("geometry"), f"features.{k}.geometry") for k, f in enumerate(feats)]
            geom = json.loads(json.dumps(shapely.geometry.mapping(shapely.union_all(shapes))))
            props = {k: v for k, v in (doc.get("properties") or {}).items() if k != "name"}
            doc = {"type": "Feature", "properties": {"name": doc.get("name"), **props}, "geometry": geom}
    elif feature is not None:
        names = {(doc.get("properties") or {}).get("name"), doc.get("id")}
        if feature not in names:
            raise CatalogError(f"{path}: no feature named {feature!r}; {_feature_names([doc])}")
    if doc.get("type") == "Feature":
        props = doc.get("properties") or {}
        geom = doc.get("geometry")
    else:
        geom = doc
    _region_shape(path, geom, where)
    try:
        return Region(
            name=name or props.get("name") or path.stem,
            title=props.get("title") or props.get("name") or path.stem,
            geometry=geom,
            path=str(path),
            start=props.get("start"),
            end=props.get("end"),
            description=props.get("description", ""),
        )
    except ValidationError as e:
        raise CatalogError(describe_validation(e, str(path))) from None


def _feature_names(feats: list[dict[str, Any]]) -> str:
    names = [str((f.get("properties") or {}).get("name") or f.get("id")) for f in feats
             if (f.get("properties") or {}).get("name") or f.get("id")]
    return f"features: {', '.join(names)}" if names else "no feature has a name property"


def _region_shape(path: Path, geom: Any, where: str):
    """The shapely polygon of a region geometry, or a CatalogError naming the file and field."""
    import shapely.geometry

    if not isinstance(geom, dict) or geom.get("type") not in {"Polygon", "MultiPolygon"}:
        got = geom.get("type") if isinstance(geom, dict) else geom
        raise CatalogError(f"{path}: {where}.type: expected Polygon or MultiPolygon, got {got!r}")
    try:
        shp = shapely.geometry.shape(geom)
    except Exception as e:  # shapely raises several types for malformed coordinates
        raise CatalogError(f"{path}: {where}.coordinates: malformed ({e})") from None
    if shp.is_empty or not shp.is_valid:
        raise CatalogError(f"{path}: {where}: empty or invalid polygon")
    minx, miny, maxx, maxy = shp.bounds
    if minx < -180 or maxx > 180 or miny < -90 or maxy > 90:
        raise CatalogError(f"{path}: {where}.coordinates: outside lon/lat range (EPSG:4326 expected)")
    return shp


def load_region(name_or_path: str | Path, root: Path | None = None, feature: str | None = None) -> Region:
    """A region by catalog name (``demo``) or by path to a GeoJSON file; ``feature`` picks one
    feature of a file with several (see :func:`parse_region`)."""
    p = Path(name_or_path)
    if p.suffix.lower() in {".geojson", ".json"} or p.exists():
        return parse_region(p, feature=feature)
    root = root or catalog_root()
    path = root / "regions" / f"{name_or_path}.geojson"
    if not path.exists():
        known = ", ".join(region_names(root))
        raise CatalogError(f"unknown region {str(name_or_path)!r}; known regions: {known} (or give a .geojson path)")
    return parse_region(path, name=str(name_or_path), feature=feature)


def region_names(root: Path | None = None) -> list[str]:
    root = root or catalog_root()
    return sorted(p.stem for p in (root / "regions").glob("*.geojson"))
