"""STAC APIs through pystac-client: Planetary Computer, Earth Search, the DLR geoservice.

One POST /search per collection, paged by the server's ``next`` links (``limit`` = the source's
``page_size``), restricted by ``intersects`` and ``datetime``. Cloud cover and the provider's extra
``query`` go to the server only where sources.yaml says it honours ``query`` and the API
advertises the query conformance class; the same filters are always re-applied on the client, so a server that ignores them cannot widen the result.
Transient failures (429, 5xx, connection errors, timeouts) are retried by the HTTP adapter with
backoff and jitter, honouring ``Retry-After``; when the budget is spent a :class:`SourceError`
names the source.
"""

from __future__ import annotations

import logging
import random
import time
from collections import defaultdict

import geopandas as gpd
import shapely.geometry

from ..catalog import SensorSpec, SourceSpec
from ..errors import SourceError
from .base import RetryPolicy, SearchRequest, filter_scenes, item_rows, matches_query, scenes_frame

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
        """Collection id -> [(product, provider query)] (Landsat SR and LST share one collection)."""
        groups: dict[str | None, list[tuple[SensorSpec, dict]]] = defaultdict(list)
        for s in sensors:
            p = s.provider(self.name)
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
                        f"source {self.name!r} ({self.url}): responses cut off {attempt} times: {_short(e)}"
                    ) from None
                time.sleep(min(self.retry.backoff_s * 2 ** (attempt - 1) + random.uniform(0, self.retry.jitter_s),
                               self.retry.max_backoff_s))
        raise AssertionError("unreachable")

    def _search_once(self, request: SearchRequest) -> gpd.GeoDataFrame:
        import pystac
        from pystac_client.exceptions import APIError
        from requests.exceptions import RequestException

        rows: list[dict] = []
        skipped = 0
        try:
            client = self._client()
            server_query = self.spec.supports_query and _conforms_to_query(client)
            for collection, members in self._groups(request.sensors).items():
                cloud_prop = members[0][0].provider(self.name).cloud_cover_property
                params: dict = {
                    "collections": [collection],
                    "intersects": shapely.geometry.mapping(request.region.shape),
                    "limit": self.spec.page_size,
                }
                if request.datetime_range:
                    params["datetime"] = request.datetime_range
                shared = members[0][1] if all(q == members[0][1] for _, q in members) else {}
                if server_query:
                    query = dict(shared)
                    if request.max_cloud is not None and cloud_prop:
                        query[cloud_prop] = {"lte": request.max_cloud}
                    if query:
                        params["query"] = query
                for item in client.search(**params).items_as_dicts():
                    props = item.get("properties") or {}
                    wanted = [s for s, q in members if matches_query(props, q)]
                    new = item_rows(item, wanted, self.name, cloud_prop, collection) if wanted else []
                    skipped += bool(wanted) and not new
                    rows.extend(new)
        except (APIError, pystac.STACError) as err:
            e = _as_api_error(err)
            if "Connection broken" in str(e):  # pystac-client flattens requests' ChunkedEncodingError
                raise _BrokenBody(_short(e)) from None
            if isinstance(e.__cause__, RequestException) or "Max retries exceeded" in str(e):
                raise SourceError(
                    f"source {self.name!r} ({self.url}): unreachable or failing after {self.retry.attempts} "
                    f"retries: {_short(e)}"
                ) from None
            raise SourceError(f"source {self.name!r} ({self.url}): the API answered an error: {_short(e)}") from None
        except RequestException as e:
            raise SourceError(
                f"source {self.name!r} ({self.url}): unreachable or failing after {self.retry.attempts} retries: "
                f"{_short(e)}"
            ) from None
        if skipped:
            log.warning("%s: skipped %d items without footprint, time or assets", self.name, skipped)
        return filter_scenes(scenes_frame(rows), request)


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
    return text[:300]
