"""NASA Earthdata (CMR) through earthaccess: EMIT L2A reflectance granules.

The CMR root comes from sources.yaml (``url``) or ``$SPECTRALEARTH_CMR_URL``, so tests point
earthaccess at a local server replaying recorded CMR responses. Searching CMR needs no login;
Earthdata Login (``$EARTHDATA_TOKEN``, ``earthaccess.login()``, ``~/.netrc`` or
``$EARTHDATA_USERNAME``/``$EARTHDATA_PASSWORD``) is used only when a reader downloads a file
(:func:`~spectralearth_data.credentials.earthdata_logins`, for hrefs whose ``auth`` is ``earthdata``).

Each UMM-G granule becomes a STAC-like item. Its "GET DATA" links are keyed by **file name**, not
by position, through the provider's ``asset_patterns`` in the sensor catalog (EMIT: ``data`` = RFL,
``mask`` = MASK, ``uncertainty`` = RFLUNCERT): CMR lists them RFL, MASK, RFLUNCERT in the recorded
response, while CMR-STAC calls the same files data, data2, data1. A link no pattern matches keeps
its file name as key. ``browse`` is the quicklook; ``eo:cloud_cover`` the granule's CloudCover.
"""

from __future__ import annotations

import fnmatch
import logging
import os
import warnings
from collections.abc import Mapping
from typing import Any

import geopandas as gpd

from ..catalog import SourceSpec
from ..errors import SourceError, shorten
from .base import RetryPolicy, SearchRequest, filter_scenes, item_rows, scenes_frame, unreachable_message

log = logging.getLogger(__name__)

#: Override of the CMR search root (e.g. a local replay server in tests).
CMR_URL_ENV = "SPECTRALEARTH_CMR_URL"


def _file_name(url: str) -> str:
    return url.split("?", 1)[0].rstrip("/").rsplit("/", 1)[-1]


def data_link_key(url: str, asset_patterns: Mapping[str, str]) -> str | None:
    """Our asset key for a data link: the first ``asset_patterns`` glob matching its file name."""
    name = _file_name(url)
    return next((key for key, pattern in asset_patterns.items() if fnmatch.fnmatchcase(name, pattern)), None)


def granule_to_item(granule: dict[str, Any], asset_patterns: Mapping[str, str] | None = None) -> dict[str, Any]:
    """A STAC-like item dict from one UMM-JSON granule record (``{meta, umm}``; ``meta`` optional).

    ``asset_patterns`` (our asset key -> file-name glob, from the catalog) names the "GET DATA"
    links; the order CMR lists them in does not matter.
    """
    patterns = dict(asset_patterns or {})
    meta, umm = granule.get("meta") or {}, granule.get("umm") or {}
    concept = meta.get("concept-id")
    temporal = (umm.get("TemporalExtent") or {}).get("RangeDateTime") or {}
    props: dict[str, Any] = {
        "datetime": temporal.get("BeginningDateTime"),
        "start_datetime": temporal.get("BeginningDateTime"),
        "end_datetime": temporal.get("EndingDateTime"),
        "cmr:concept_id": concept,
    }
    if umm.get("CloudCover") is not None:
        props["eo:cloud_cover"] = umm["CloudCover"]
    assets: dict[str, dict[str, Any]] = {}
    for link in umm.get("RelatedUrls") or []:
        url, kind = link.get("URL", ""), link.get("Type", "")
        if kind == "GET DATA" and url.startswith("https://"):
            key = data_link_key(url, patterns) or _file_name(url)
            if key in assets:
                log.warning("granule %s: %s and %s both match asset %r; the second keeps its file name",
                            umm.get("GranuleUR"), _file_name(assets[key]["href"]), _file_name(url), key)
                key = _file_name(url)
            assets[key] = {"href": url, "title": link.get("Description", _file_name(url)), "roles": ["data"]}
        elif kind == "GET RELATED VISUALIZATION" and url.startswith("https://") and "browse" not in assets:
            assets["browse"] = {"href": url, "roles": ["overview"]}
    geometry = None
    try:
        from earthaccess.results import DataGranule

        with warnings.catch_warnings():  # earthaccess warns about its own DataGranule.size()
            warnings.simplefilter("ignore", FutureWarning)
            geometry = DataGranule(granule).__geo_interface__
    except (ValueError, KeyError, TypeError):
        geometry = None
    collection_ref = umm.get("CollectionReference") or {}
    return {
        "type": "Feature",
        "stac_version": "1.0.0",
        "id": umm.get("GranuleUR") or concept,
        "geometry": geometry,
        "properties": props,
        "assets": assets,
        "collection": collection_ref.get("ShortName"),
    }


class EarthdataSource:
    """NASA CMR (``kind: cmr``) searched with earthaccess."""

    def __init__(self, spec: SourceSpec, retry: RetryPolicy | None = None, url: str | None = None):
        self.spec = spec
        self.name = spec.name
        self.retry = retry or RetryPolicy()
        base = url or os.environ.get(CMR_URL_ENV) or spec.url
        if not base:
            raise SourceError(f"source {self.name!r}: no CMR url in sources.yaml or ${CMR_URL_ENV}")
        self.url = base.rstrip("/") + "/"

    def _query(self, short_name: str, provider: str | None, request: SearchRequest, version: str | None = None):
        from earthaccess.search import DataGranules

        q = DataGranules()
        q.session = self.retry.session()
        q.mode(self.url)
        q.short_name(short_name)
        if version:
            q.version(version)  # pinned: another version's granules are another product
        if provider:
            q.provider(provider)
        if request.start or request.end:
            q.temporal(request.start, request.end)
        minx, miny, maxx, maxy = request.region.shape.bounds
        q.bounding_box(minx, miny, maxx, maxy)
        if request.max_cloud is not None:
            q.cloud_cover(0, request.max_cloud)
        return q

    def search(self, request: SearchRequest) -> gpd.GeoDataFrame:
        from requests.exceptions import RequestException

        rows: list[dict] = []
        skipped = 0
        for sensor in request.sensors:
            p = sensor.provider(self.name)
            if not p.short_name:
                raise SourceError(f"source {self.name!r}: product {sensor.name!r} has no CMR short_name")
            try:
                with warnings.catch_warnings():  # earthaccess warns about its own DataGranule.size()
                    warnings.simplefilter("ignore", FutureWarning)
                    granules = self._query(p.short_name, p.provider, request, p.version).get(limit=1_000_000)
            except RequestException as e:
                raise SourceError(unreachable_message(self.name, self.url, e, self.retry.attempts),
                                  retryable=False) from None
            except RuntimeError as e:  # earthaccess wraps CMR error bodies in RuntimeError
                raise SourceError(shorten(f"source {self.name!r} ({self.url}): CMR answered an error: {e}")) from None
            for g in granules:
                item = granule_to_item(dict(g), p.asset_patterns)
                new = item_rows(item, [sensor], self.name, p.cloud_cover_property, p.short_name)
                skipped += not new
                rows.extend(new)
        if skipped:
            log.warning("%s: skipped %d granules without footprint, time or data links", self.name, skipped)
        return filter_scenes(scenes_frame(rows), request)
