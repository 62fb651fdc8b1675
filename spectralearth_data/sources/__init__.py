"""Scene discovery: every source returns the same scene GeoDataFrame (SCENE_COLUMNS).

``search(source, region, ...)`` picks the source by name from catalogs/sources.yaml
(planetary-computer, earth-search, dlr-geoservice, earthdata-cmr, demo) or takes ``local:PATH``.
Hrefs in the result are unsigned; read-time credentials (:func:`sign_href`, chosen by the
source's ``auth``) live in :mod:`spectralearth_data.credentials` and are re-exported here.
"""

from __future__ import annotations

import logging
from datetime import date, datetime
from pathlib import Path

import geopandas as gpd

from ..catalog import Region, SensorSpec, load_catalog, load_region, load_sources
from ..credentials import SasSigner, SasToken, earthdata_headers, sign_href, unsigned_href
from ..errors import CatalogError, SourceError, SpectralEarthError
from ..schema import SCENE_COLUMNS
from ..tables import read_table, write_table
from .base import RetryPolicy, SceneSource, SearchRequest, scenes_frame

__all__ = [
    "RetryPolicy", "SasSigner", "SasToken", "SceneSource", "SearchRequest", "earthdata_headers",
    "explain_no_scenes", "make_source", "read_scenes", "search", "sign_href", "unsigned_href", "write_scenes",
]

DateLike = str | date | datetime | None

log = logging.getLogger(__name__)


def make_source(source: str, *, demo_dir: Path | str | None = None, retry: RetryPolicy | None = None,
                url: str | None = None) -> SceneSource:
    """The source object for a name in catalogs/sources.yaml or ``local:PATH``.

    ``url`` overrides the API root of a STAC or CMR source (e.g. a local test server).
    """
    from .demo import DemoSource
    from .local import LocalSource

    if source.startswith("local:"):
        path = source.split(":", 1)[1]
        if not path:
            raise SourceError("source 'local:': give a path, e.g. local:./catalog.json")
        return LocalSource(Path(path))
    specs = load_sources()
    spec = specs.get(source)
    if spec is None:
        known = ", ".join(sorted(specs))
        raise SourceError(f"unknown source {source!r}; known sources: {known}, or local:PATH")
    if spec.kind == "stac-api":
        from .stac_api import StacApiSource

        return StacApiSource(spec, retry=retry, url=url)
    if spec.kind == "cmr":
        from .earthdata import EarthdataSource

        return EarthdataSource(spec, retry=retry, url=url)
    if spec.kind == "demo":
        return DemoSource(demo_dir, name=spec.name)
    raise SourceError(f"source {source!r} (kind {spec.kind}): give local:PATH to read a local catalog")


def _products(source: str, sensors: list[str] | None) -> tuple[SensorSpec, ...]:
    catalog = load_catalog()
    names = list(sensors) if sensors else sorted(catalog)
    unknown = [n for n in names if n not in catalog]
    if unknown:
        raise CatalogError(f"unknown product(s) {unknown}; known products: {', '.join(sorted(catalog))}")
    specs = [catalog[n] for n in names]
    if source.startswith("local:") or source in {"local", "demo"}:
        return tuple(specs)
    served = [s for s in specs if any(p.source == source for p in s.providers)]
    missing = [s.name for s in specs if s not in served]
    if sensors and missing:
        raise SourceError(f"source {source!r} does not serve product(s) {missing} (see providers in catalogs/sensors)")
    refused = [s for s in served if s.provider(source).unsupported]
    if sensors and refused:
        s = refused[0]
        raise SourceError(f"source {source!r} cannot serve product {s.name!r}: {s.provider(source).unsupported}")
    for s in refused:
        log.info("source %s: not searching %s (%s)", source, s.name, s.provider(source).unsupported)
    return tuple(s for s in served if s not in refused)


def search(source: str, region: Region | str, start: DateLike = None, end: DateLike = None,
           sensors: list[str] | None = None, max_cloud: float | None = None, *,
           demo_dir: Path | str | None = None, retry: RetryPolicy | None = None,
           url: str | None = None) -> gpd.GeoDataFrame:
    """Scenes of ``sensors`` (default: every product the source serves) over ``region`` between
    ``start`` and ``end`` (inclusive; bare dates cover whole days) with at most ``max_cloud`` %
    cloud (unknown cloud cover passes). Returns a GeoDataFrame with SCENE_COLUMNS."""
    from .base import to_utc

    reg = region if isinstance(region, Region) else load_region(region)
    if max_cloud is not None and not 0 <= max_cloud <= 100:
        raise SourceError(f"max_cloud must be a percentage in [0, 100], got {max_cloud}")
    t0, t1 = to_utc(start), to_utc(end, end=True)
    if t0 and t1 and t0 > t1:
        raise SourceError(f"start {start} is after end {end}")
    products = _products(source, sensors)
    src = make_source(source, demo_dir=demo_dir, retry=retry, url=url)
    if not products:
        return scenes_frame([])
    request = SearchRequest(region=reg, sensors=products, start=t0, end=t1, max_cloud=max_cloud)
    return src.search(request)


def _bbox(bounds) -> str:
    return "(" + ", ".join(f"{v:.4g}" for v in bounds) + ")"


def _local_coverage(src: SceneSource):
    """(lon/lat bounds, first, last acquisition) of every item of a local or demo catalogue, or
    None where the source cannot tell without a search (a remote API) or holds nothing usable."""
    import shapely

    from .base import parse_datetime, parse_footprint
    from .demo import DemoSource
    from .local import LocalSource, read_stac_file

    try:
        if isinstance(src, LocalSource):
            items = src.items()
        elif isinstance(src, DemoSource) and (src.folder / "catalog.json").exists():
            items = read_stac_file(src.folder / "catalog.json")
        else:
            return None
    except Exception:  # noqa: BLE001 - only an explanation; the search itself already read them
        return None
    shapes = [g for g in (parse_footprint(i.get("geometry")) for i in items) if g is not None]
    times = [t for t in (parse_datetime(i.get("properties") or {}) for i in items) if t is not None]
    if not shapes:
        return None
    return shapely.union_all(shapes), (min(times) if times else None), (max(times) if times else None)


def explain_no_scenes(source: str, region: Region, start: DateLike = None, end: DateLike = None,
                      sensors: list[str] | None = None, max_cloud: float | None = None, *,
                      demo_dir: Path | str | None = None) -> str:
    """One line saying why a search found nothing: the region does not overlap the catalogue's
    coverage (with a hint when its coordinates look like lat/lon swapped), or the period or cloud
    limit leaves nothing."""
    import shapely

    shape = region.shape
    bounds = shape.bounds
    swapped = shapely.transform(shape, lambda xy: xy[:, ::-1])
    what = f"no {', '.join(sensors)} scenes" if sensors else "no scenes"
    period = f" between {start or '...'} and {end or '...'}" if start or end else ""
    head = f"{what} from {source} over region {region.name!r} (lon/lat bbox {_bbox(bounds)}){period}"
    try:
        cov = _local_coverage(make_source(source, demo_dir=demo_dir))
    except SpectralEarthError:
        cov = None
    if cov is not None:
        extent, first, last = cov
        if not extent.intersects(shape):
            hint = ""
            if extent.intersects(swapped):
                hint = "; its coordinates look like lat/lon swapped (GeoJSON is lon, lat)"
            return (f"{head}: the region does not overlap the catalogue's coverage "
                    f"(lon/lat bbox {_bbox(extent.bounds)}){hint}")
        when = f" ({first:%Y-%m-%d} to {last:%Y-%m-%d})" if first is not None and last is not None else ""
        cloud = f" or with at most {max_cloud:g} % cloud" if max_cloud is not None else ""
        return f"{head}: the catalogue covers the region, but no scene of it falls in the period{when}{cloud}"
    hint = ""
    if max(abs(bounds[0]), abs(bounds[2])) <= 90:
        hint = "; check that its coordinates are lon, lat (GeoJSON order), not lat, lon"
    return (f"{head}: the region does not overlap the catalogue's coverage for that period"
            f"{' and cloud limit' if max_cloud is not None else ''}{hint}")


def write_scenes(scenes: gpd.GeoDataFrame, path: Path | str) -> Path:
    """Write a scene table as GeoParquet (temp file, then rename: a crash never leaves half a file)."""
    return write_table(scenes, path)


def read_scenes(path: Path | str) -> gpd.GeoDataFrame:
    """Read a scene table written by :func:`write_scenes`; checks the SCENE_COLUMNS contract."""
    return read_table(path, SCENE_COLUMNS, "scene table", "spectralearth search")