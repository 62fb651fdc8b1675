"""STAC APIs: Planetary Computer, Earth Search, the DLR geoservice.

One POST /search per collection (and per region bounding box, where the source sends ``bbox``),
``limit`` = the source's ``page_size`` (never above its ``max_page_size``), restricted by
``intersects`` or ``bbox`` and ``datetime``. How pages follow each other is the source's ``paging``
in sources.yaml: the server's ``next`` links (through pystac-client), or ``startIndex`` in the POST
body (the DLR geoservice), counted on the client until ``numberMatched`` items or a short page
have arrived. A search that would need more than the source's ``max_pages`` pages fails with a
:class:`SourceError` that says how far it got and how to narrow it; it never stops silently.
Cloud cover and the provider's extra ``query`` go to the server only as the source's
``cloud_filter`` says (``query`` where sources.yaml says it honours it and the API advertises the
query conformance class; a CQL2-JSON ``filter``); the same filters and the exact region are always
re-applied on the client, so a server that ignores them (or a bounding box wider than the region)
cannot widen the result.
Transient failures (429, 5xx, dropped connections, timeouts) are retried by the HTTP adapter with
backoff and jitter, honouring ``Retry-After``; a host name that does not resolve or a refused
connection fails at once. Either way the :class:`SourceError` names the source, the host and the
cause on one line, and is marked ``retryable=False`` so a flow does not retry it again.
"""

from __future__ import annotations

import functools
import logging
import random
import time
from collections import defaultdict

import geopandas as gpd
import shapely.geometry

from ..catalog import SensorSpec, SourceSpec
from ..errors import SourceError, shorten
from ..grid import split_antimeridian
from .base import (
    RetryPolicy,
    SearchRequest,
    filter_scenes,
    item_rows,
    matches_query,
    scenes_frame,
    unreachable_message,
)

log = logging.getLogger(__name__)


class StacApiSource:
    """A STAC API named in catalogs/sources.yaml (``kind: stac-api``)."""

    def __init__(self, spec: SourceSpec, retry: RetryPolicy | None = None, url: str | None = None):
        self.spec = spec
        self.name = spec.name
        self.url = url or spec.url
        self.retry = retry or RetryPolicy()
        if not self.url:
            raise SourceError(f"source {self.name!r}: no url in sources.yaml")

    def _client(self):
        from pystac_client import Client
        from pystac_client.stac_api_io import StacApiIO

        io = StacApiIO(max_retries=self.retry.urllib3_retry(), timeout=self.retry.timeout_s)
        return Client.open(self.url, stac_io=io)

    def _groups(self, sensors: tuple[SensorSpec, ...]) -> dict[str | None, list[tuple[SensorSpec, dict]]]:
        """Collection id -> [(product, provider query)] (Landsat SR and LST share one collection),
        from each product's default provider here; one the catalog marks ``unsupported`` is refused."""
        groups: dict[str | None, list[tuple[SensorSpec, dict]]] = defaultdict(list)
        for s in sensors:
            p = s.provider(self.name)
            if p.unsupported:
                raise SourceError(f"source {self.name!r} cannot serve product {s.name!r}: {p.unsupported}")
            groups[p.collection].append((s, dict(p.query)))
        return groups

    def search(self, request: SearchRequest) -> gpd.GeoDataFrame:
        """Scenes for ``request``. A body cut off mid-transfer (read after the HTTP adapter's
        retries are over) reruns the whole search, within the same retry budget."""
        for attempt in range(1, self.retry.attempts + 1):
            try:
                return self._search_once(request)
            except _BrokenBody as e:
                if attempt == self.retry.attempts:
                    raise SourceError(
                        f"source {self.name!r} ({self.url}): responses cut off {attempt} times: {_short(e)}",
                        retryable=False) from None
                time.sleep(min(self.retry.backoff_s * 2 ** (attempt - 1) + random.uniform(0, self.retry.jitter_s),
                               self.retry.max_backoff_s))
        raise AssertionError("unreachable")

    def _search_once(self, request: SearchRequest) -> gpd.GeoDataFrame:
        import pystac
        from pystac_client.exceptions import APIError
        from requests.exceptions import ChunkedEncodingError, RequestException

        rows: list[dict] = []
        skipped = other = 0
        try:
            groups = self._groups(request.sensors)
            if self.spec.paging == "start-index":
                pages = functools.partial(self._start_index_pages, self.retry.session())
                server_query = False
            else:
                client = self._client()
                pages = functools.partial(self._next_link_pages, client)
                server_query = self.spec.cloud_filter == "query" and self.spec.supports_query \
                    and _conforms_to_query(client)
            for collection, members in groups.items():
                cloud_prop = members[0][0].provider(self.name).cloud_cover_property
                shared = members[0][1] if all(q == members[0][1] for _, q in members) else {}
                for params in self._params(request, collection, cloud_prop, shared, server_query):
                    for page in pages(params):
                        for item in page:
                            if item.get("collection") not in (None, collection):
                                other += 1  # a server that ignores `collections` (a replay, rustac) or mixes them
                                continue
                            props = item.get("properties") or {}
                            wanted = [s for s, q in members if matches_query(props, q)]
                            new = item_rows(item, wanted, self.name, cloud_prop, collection) if wanted else []
                            skipped += bool(wanted) and not new
                            rows.extend(new)
        except (APIError, pystac.STACError) as err:
            e = _as_api_error(err)
            if "Connection broken" in str(e):  # pystac-client flattens requests' ChunkedEncodingError
                raise _BrokenBody(_short(e)) from None
            if isinstance(e.__cause__ or e.__context__, RequestException) or "Max retries exceeded" in str(e):
                raise SourceError(unreachable_message(self.name, self.url, e, self.retry.attempts),
                                  retryable=False) from None
            raise SourceError(f"source {self.name!r} ({self.url}): the API answered an error: {_short(e)}") from None
        except ChunkedEncodingError as e:
            raise _BrokenBody(_short(e)) from None
        except RequestException as e:
            raise SourceError(unreachable_message(self.name, self.url, e, self.retry.attempts),
                              retryable=False) from None
        if skipped:
            log.warning("%s: skipped %d items without footprint, time or assets", self.name, skipped)
        if other:
            log.info("%s: dropped %d items of collections that were not asked for", self.name, other)
        return filter_scenes(scenes_frame(rows), request)

    def _params(self, request: SearchRequest, collection: str | None, cloud_prop: str | None, shared: dict,
                server_query: bool) -> list[dict]:
        """The search bodies for one collection: one per region bounding box (``spatial: bbox``),
        else one with the region geometry."""
        base: dict = {"collections": [collection], "limit": self.spec.limit}
        if request.datetime_range:
            base["datetime"] = request.datetime_range
        if server_query:
            query = dict(shared)
            if request.max_cloud is not None and cloud_prop:
                query[cloud_prop] = {"lte": request.max_cloud}
            if query:
                base["query"] = query
        if self.spec.cloud_filter == "cql2-json" and request.max_cloud is not None and cloud_prop:
            # The shape a client that works against the DLR geoservice sends (sources.yaml evidence):
            # an `and` of >= and <= on the cloud property.
            base["filter-lang"] = "cql2-json"
            base["filter"] = {"op": "and", "args": [
                {"op": ">=", "args": [{"property": cloud_prop}, 0]},
                {"op": "<=", "args": [{"property": cloud_prop}, request.max_cloud]},
            ]}
        if self.spec.spatial == "bbox":
            return [{**base, "bbox": b} for b in region_bboxes(request.region.shape)]
        return [{**base, "intersects": shapely.geometry.mapping(request.region.shape)}]

    def _next_link_pages(self, client, params: dict):
        """Pages (lists of item dicts) through pystac-client, which follows the ``next`` links."""
        body = dict(params)
        if "filter-lang" in body:
            body["filter_lang"] = body.pop("filter-lang")
        read = pages = 0
        for page in client.search(**body).pages_as_dicts():
            if self.spec.max_pages is not None and pages >= self.spec.max_pages:
                raise self._too_many_pages(params, pages, read, _matched(page))
            pages += 1
            features = page.get("features") or []
            read += len(features)
            yield features

    def _start_index_pages(self, session, params: dict):
        """Pages (lists of item dicts) of ``POST /search`` with ``startIndex`` = the items read so far.

        It ends once ``numberMatched`` items have come, or, where the server gives no count, at a
        page shorter than ``limit``. A page that brings nothing new (a server that ignores
        ``startIndex``) is an error, so a wrong paging setting cannot loop."""
        url = f"{(self.url or '').rstrip('/')}/search"
        limit = params["limit"]
        start = pages = 0
        matched: int | None = None
        seen: set = set()
        while True:
            if self.spec.max_pages is not None and pages >= self.spec.max_pages:
                raise self._too_many_pages(params, pages, start, matched)
            body = {**params, "startIndex": start}
            r = session.post(url, json=body, headers={"Accept": "application/geo+json"},
                             timeout=self.retry.timeout_s)
            if r.status_code >= 400:
                raise SourceError(
                    f"source {self.name!r} ({self.url}): the API answered HTTP {r.status_code} to POST /search "
                    f"(collection {params['collections'][0]}, startIndex {start}): {_short_text(r.text)}")
            try:
                doc = r.json()
            except ValueError:
                doc = None
            if not isinstance(doc, dict) or not isinstance(doc.get("features"), list):
                raise SourceError(f"source {self.name!r} ({self.url}): POST /search (startIndex {start}) did not "
                                  f"answer a FeatureCollection: {_short_text(r.text)}")
            pages += 1
            features = doc["features"]
            if isinstance(doc.get("numberMatched"), int):
                matched = doc["numberMatched"]
            ids = {f.get("id") for f in features if isinstance(f, dict)}
            if features and ids <= seen:
                raise SourceError(
                    f"source {self.name!r} ({self.url}): the page at startIndex {start} repeats items already "
                    "read: this server does not page by startIndex (see `paging` in catalogs/sources.yaml)")
            seen |= ids
            yield features
            start += len(features)
            if matched is not None:
                if start >= matched:
                    return
                if not features:
                    log.warning("%s: %s: no items at startIndex %d although numberMatched is %d; stopping",
                                self.name, params["collections"][0], start, matched)
                    return
            elif len(features) < limit:
                return

    def _too_many_pages(self, params: dict, pages: int, read: int, matched: int | None) -> SourceError:
        total = f"{matched} match" if matched is not None else f"more than {read} match"
        return SourceError(
            f"source {self.name!r} ({self.url}): collection {params['collections'][0]}: read {read} items in "
            f"{pages} page{'s' * (pages != 1)} of up to {params['limit']} (max_pages {self.spec.max_pages}), but "
            f"{total} the search; "
            f"narrow it (a smaller region, a shorter --start/--end period, a lower --max-cloud) or raise "
            f"max_pages for {self.name} in catalogs/sources.yaml")


def region_bboxes(region) -> list[list[float]]:
    """The lon/lat bounding boxes to search for ``region``: one, or two (one per side) for a region
    that crosses the antimeridian, so neither spans the whole globe."""
    shape = split_antimeridian(region)
    parts = list(getattr(shape, "geoms", [shape]))
    minx, _, maxx, _ = shape.bounds
    if len(parts) > 1 and maxx - minx > 180.0:
        sides = [[p for p in parts if p.centroid.x < 0], [p for p in parts if p.centroid.x >= 0]]
        return [list(shapely.union_all(side).bounds) for side in sides if side]
    return [list(shape.bounds)]


def _matched(page: dict) -> int | None:
    """``numberMatched`` of a STAC API page (or the older ``context.matched``), when it has one."""
    value = page.get("numberMatched", (page.get("context") or {}).get("matched"))
    return value if isinstance(value, int) else None


def _short_text(text: str) -> str:
    return shorten(text or "") or "(empty body)"


class _BrokenBody(Exception):
    """A response body ended before its Content-Length (a transient network failure)."""


def _as_api_error(e: Exception) -> Exception:
    """The pystac-client APIError behind a pystac STACError ("does not resolve to a STAC
    object" hides the network failure of a root/landing-page fetch); ``e`` itself otherwise."""
    from pystac_client.exceptions import APIError

    cause: BaseException | None = e
    while cause is not None and not isinstance(cause, APIError):
        cause = cause.__cause__ or cause.__context__
    return cause if isinstance(cause, APIError) else e


def _conforms_to_query(client) -> bool:
    """Does the API advertise the STAC API ``query`` extension? (Only then is ``query`` sent.)"""
    from pystac_client.conformance import ConformanceClasses

    return bool(client.conforms_to(ConformanceClasses.QUERY))


def _short(e: Exception) -> str:
    text = str(e).strip().splitlines()[0] if str(e).strip() else type(e).__name__
    return shorten(text)
