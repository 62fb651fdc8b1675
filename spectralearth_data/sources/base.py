"""What every source shares: the request, the scene table, and pure item parsers.

A source turns a :class:`SearchRequest` into the scene GeoDataFrame of DESIGN.md ("Scenes and the
plan", columns :data:`~spectralearth_data.schema.SCENE_COLUMNS`). The parsers here are pure
functions over STAC item dicts, so they are tested on recorded real items; the sources only fetch.
Hrefs are stored *unsigned*: any signature found in a query string is dropped on the way in
(:func:`~spectralearth_data.credentials.unsigned_href`, re-exported here for the parsers).
"""

from __future__ import annotations

import functools
import json
import logging
import math
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, time
from typing import Any, Protocol

import geopandas as gpd
import numpy as np
import pandas as pd
import shapely
import shapely.geometry
from shapely.geometry.base import BaseGeometry

from ..catalog import Region, SensorSpec
from ..credentials import unsigned_href
from ..errors import SourceError, connection_failure, shorten
from ..grid import split_antimeridian
from ..schema import SCENE_COLUMNS, stac_epsg

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class SearchRequest:
    """One search: which products, where, when, how cloudy at most."""

    region: Region
    sensors: tuple[SensorSpec, ...]
    start: datetime | None = None  # inclusive, UTC
    end: datetime | None = None  # inclusive, UTC
    max_cloud: float | None = None  # percent; scenes with unknown cloud cover are kept

    @property
    def datetime_range(self) -> str | None:
        """The STAC ``datetime`` parameter (open ends as ``..``), or None when unbounded."""
        if self.start is None and self.end is None:
            return None
        fmt = lambda t: t.strftime("%Y-%m-%dT%H:%M:%SZ") if t else ".."
        return f"{fmt(self.start)}/{fmt(self.end)}"


@dataclass
class RetryPolicy:
    """Retry budget for transient HTTP failures (429, 5xx, dropped connections, timeouts).

    A host name that does not resolve or a refused connection is not transient: it fails on the
    first attempt (:func:`~spectralearth_data.errors.connection_failure`).

    The wait before retry ``n`` is ``backoff_s * 2**(n-1)`` plus up to ``jitter_s`` of random
    jitter, capped at ``max_backoff_s``; a ``Retry-After`` header on 429/503 replaces it.
    """

    attempts: int = 5
    backoff_s: float = 0.5
    jitter_s: float = 0.25
    max_backoff_s: float = 30.0
    timeout_s: tuple[float, float] = (10.0, 60.0)  # connect, read
    status: tuple[int, ...] = field(default=(429, 500, 502, 503, 504))

    def urllib3_retry(self):
        """The :class:`urllib3.util.Retry` implementing this policy (used by requests sessions)."""
        return _policy_retry_class()(
            total=self.attempts,
            backoff_factor=self.backoff_s,
            backoff_jitter=self.jitter_s,
            backoff_max=self.max_backoff_s,
            status_forcelist=self.status,
            allowed_methods=None,  # STAC POST /search and CMR GET are both safe to repeat
            respect_retry_after_header=True,
            raise_on_status=True,
        )

    def session(self):
        """A :class:`requests.Session` that retries with this policy."""
        import requests
        from requests.adapters import HTTPAdapter

        s = requests.Session()
        adapter = HTTPAdapter(max_retries=self.urllib3_retry())
        s.mount("http://", adapter)
        s.mount("https://", adapter)
        return s


@functools.cache
def _policy_retry_class():
    """A :class:`urllib3.util.Retry` that does not retry failures waiting cannot fix."""
    from urllib3.exceptions import MaxRetryError
    from urllib3.util import Retry

    class PolicyRetry(Retry):
        def increment(self, method=None, url=None, response=None, error=None, _pool=None, _stacktrace=None):
            if error is not None and connection_failure(error) is not None:
                raise MaxRetryError(_pool, url, error) from error
            return super().increment(method, url, response, error, _pool, _stacktrace)

    return PolicyRetry


def unreachable_message(name: str, url: str | None, exc: BaseException, attempts: int) -> str:
    """One line for a source that could not be reached: the host and the cause, first; a permanent
    failure says it was not retried, a transient one how many retries were spent."""
    hit = connection_failure(exc)
    if hit is not None:
        host, cause = hit
        return shorten(f"source {name!r} ({url}): unreachable: cannot connect to {host}: {cause}; not retried")
    return shorten(f"source {name!r} ({url}): unreachable or failing after {attempts} retries: "
                   f"{describe_http_failure(exc)}")


def describe_http_failure(exc: BaseException) -> str:
    """``host:port: cause`` from the urllib3 ``MaxRetryError`` behind ``exc`` (requests and
    pystac-client put the cause last, after the pool and the URL), else the first line of ``exc``."""
    from urllib3.exceptions import MaxRetryError

    e: BaseException | None = exc
    for _ in range(16):
        if e is None:
            break
        found = e if isinstance(e, MaxRetryError) else next(
            (a for a in getattr(e, "args", ()) if isinstance(a, MaxRetryError)), None)
        if found is not None:
            pool = found.pool
            where = f"{getattr(pool, 'host', '?')}:{getattr(pool, 'port', '?')}" if pool is not None else "the host"
            reason = found.reason
            cause = f"{type(reason).__name__}: {reason}" if reason is not None else "retries exhausted"
            return f"{where}: {cause}"
        e = e.__cause__ or e.__context__
    text = str(exc).strip()
    return text.splitlines()[0] if text else type(exc).__name__


class SceneSource(Protocol):
    """A place scenes are found. ``search`` returns a GeoDataFrame with SCENE_COLUMNS."""

    name: str

    def search(self, request: SearchRequest) -> gpd.GeoDataFrame: ...


# -- parsing -------------------------------------------------------------------------------------


def parse_footprint(geom: dict[str, Any] | None) -> BaseGeometry | None:
    """A valid lon/lat (multi)polygon from a GeoJSON geometry, or None when there is none.

    Empty parts (PC Sentinel-1 GRD items carry ``[]`` polygons) are dropped, invalid rings are
    repaired, and footprints that wrap across the antimeridian are split into two parts.
    """
    if not isinstance(geom, dict) or geom.get("type") not in {"Polygon", "MultiPolygon"}:
        return None
    coords = geom.get("coordinates") or []
    if geom["type"] == "MultiPolygon":
        coords = [p for p in coords if p and p[0]]
        if not coords:
            return None
        geom = {"type": "MultiPolygon", "coordinates": coords}
    elif not coords or not coords[0]:
        return None
    try:
        shp = shapely.geometry.shape(geom)
    except (ValueError, TypeError, shapely.errors.GEOSException):
        return None
    if not shp.is_valid:
        shp = shapely.make_valid(shp)
        polys = [g for g in getattr(shp, "geoms", [shp]) if g.geom_type in {"Polygon", "MultiPolygon"}]
        shp = shapely.union_all(polys) if polys else shapely.Polygon()
    shp = split_antimeridian(shp)
    if shp.is_empty or shp.area <= 0:
        return None
    return shp


def parse_datetime(props: dict[str, Any]) -> pd.Timestamp | None:
    """The acquisition time (``datetime``, else ``start_datetime``) as a UTC timestamp."""
    value = props.get("datetime") or props.get("start_datetime")
    if not value:
        return None
    try:
        return pd.Timestamp(value).tz_convert("UTC") if pd.Timestamp(value).tzinfo else pd.Timestamp(value, tz="UTC")
    except (ValueError, TypeError):
        return None


def parse_epsg(props: dict[str, Any], assets: dict[str, Any] | None = None) -> int | None:
    """Native EPSG from the item properties (``proj:epsg``, else ``proj:code``; see
    :func:`~spectralearth_data.schema.stac_epsg`), else the one code every asset that states one
    agrees on (DLR DESIS items state it only on the ``image`` asset); None otherwise."""
    epsg = stac_epsg(props)
    if epsg is not None:
        return epsg
    found = {stac_epsg(a) for a in (assets or {}).values() if isinstance(a, dict)} - {None}
    return found.pop() if len(found) == 1 else None


def parse_cloud(props: dict[str, Any], prop: str | None) -> float:
    value = props.get(prop) if prop else None
    try:
        return float(value) if value is not None else math.nan
    except (TypeError, ValueError):
        return math.nan


def clean_item(item: dict[str, Any]) -> dict[str, Any]:
    """A copy of a STAC item with unsigned hrefs and without links (readers need assets/props)."""
    out = {k: v for k, v in item.items() if k != "links"}
    out["assets"] = {k: {**a, "href": unsigned_href(a["href"])} for k, a in (item.get("assets") or {}).items()
                     if isinstance(a, dict) and a.get("href")}
    return out


def item_rows(item: dict[str, Any], sensors: list[SensorSpec], source: str, cloud_property: str | None,
              collection: str | None = None) -> list[dict[str, Any]]:
    """Scene rows (one per product in ``sensors``) for one STAC item; [] when it is unusable.

    An item without a polygon footprint, a time, or any asset cannot be co-located or read, so it
    yields no row (the caller counts and reports skipped items).
    """
    props = item.get("properties") or {}
    geometry = parse_footprint(item.get("geometry"))
    when = parse_datetime(props)
    cleaned = clean_item(item)
    assets = {k: a["href"] for k, a in cleaned["assets"].items()}
    if geometry is None or when is None or not assets or not item.get("id"):
        return []
    common = {
        "scene_id": str(item["id"]),
        "datetime": when,
        "geometry": geometry,
        "cloud_cover": parse_cloud(props, cloud_property),
        "assets": json.dumps(assets, sort_keys=True),
        "source": source,
        "collection": collection or item.get("collection"),
        "epsg": parse_epsg(props, item.get("assets")),
        "properties": json.dumps(props, sort_keys=True, default=str),
        "item": json.dumps(cleaned, sort_keys=True, default=str),
    }
    return [{**common, "sensor": s.name} for s in sensors]


def scenes_frame(rows: list[dict[str, Any]]) -> gpd.GeoDataFrame:
    """The scene GeoDataFrame (SCENE_COLUMNS, EPSG:4326), sorted and free of duplicate rows."""
    df = pd.DataFrame(rows, columns=list(SCENE_COLUMNS))
    df["datetime"] = pd.to_datetime(df["datetime"], utc=True)
    df["cloud_cover"] = df["cloud_cover"].astype(float)
    df["epsg"] = df["epsg"].astype("Int64")
    for col in ("scene_id", "sensor", "assets", "source", "collection", "properties", "item"):
        df[col] = df[col].astype(object)
    gdf = gpd.GeoDataFrame(df, geometry=gpd.GeoSeries(df["geometry"].tolist(), crs="EPSG:4326"), crs="EPSG:4326")
    gdf = gdf.drop_duplicates(subset=["sensor", "scene_id"]).sort_values(["datetime", "sensor", "scene_id"])
    return gdf.reset_index(drop=True)[list(SCENE_COLUMNS)]


# -- client-side filters -------------------------------------------------------------------------

_OPS = {
    "eq": lambda v, x: v == x,
    "neq": lambda v, x: v != x,
    "lt": lambda v, x: v is not None and v < x,
    "lte": lambda v, x: v is not None and v <= x,
    "gt": lambda v, x: v is not None and v > x,
    "gte": lambda v, x: v is not None and v >= x,
    "in": lambda v, x: v in x,
}


def matches_query(props: dict[str, Any], query: dict[str, Any]) -> bool:
    """Evaluate a STAC API ``query`` object (``{prop: {op: value}}``) on item properties."""
    for prop, cond in query.items():
        for op, value in (cond or {}).items():
            fn = _OPS.get(op)
            if fn is None:
                raise SourceError(f"query on {prop!r}: unsupported operator {op!r} (use {sorted(_OPS)})")
            try:
                if not fn(props.get(prop), value):
                    return False
            except TypeError:
                return False
    return True


def filter_scenes(scenes: gpd.GeoDataFrame, request: SearchRequest) -> gpd.GeoDataFrame:
    """Keep scenes that intersect the region, fall in the period and pass the cloud limit.

    Applied to every source's result, so sources whose servers ignore ``query`` or ``intersects``
    (a static catalog, ``rustac serve``) return the same set as those that honour them.
    """
    if scenes.empty:
        return scenes
    keep = np.asarray(shapely.intersects(scenes.geometry.values, split_antimeridian(request.region.shape)))
    if request.start is not None:
        keep &= (scenes["datetime"] >= pd.Timestamp(request.start)).to_numpy()
    if request.end is not None:
        keep &= (scenes["datetime"] <= pd.Timestamp(request.end)).to_numpy()
    if request.max_cloud is not None:
        cc = scenes["cloud_cover"].to_numpy()
        keep &= np.isnan(cc) | (cc <= request.max_cloud)
    return scenes[keep].reset_index(drop=True)


def to_utc(value: str | date | datetime | None, end: bool = False) -> datetime | None:
    """Parse a period bound; a bare date means the start (or, for ``end``, the end) of that day."""
    if value is None or value == "":
        return None
    if isinstance(value, str):
        try:
            parsed = datetime.fromisoformat(value)
        except ValueError:
            raise SourceError(f"date {value!r}: not an ISO date (use YYYY-MM-DD)") from None
        bare = len(value) <= 10
        value = parsed
    else:
        bare = not isinstance(value, datetime)
    if bare or not isinstance(value, datetime):
        d = value.date() if isinstance(value, datetime) else value
        moment = datetime.combine(d, time.max if end else time.min)
    else:
        moment = value
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=UTC)
    return moment.astimezone(UTC)
