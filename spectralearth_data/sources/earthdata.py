"""NASA Earthdata (CMR) through earthaccess: EMIT L2A reflectance granules.

The CMR root comes from sources.yaml (``url``) or ``$SPECTRALEARTH_CMR_URL``, so tests point
earthaccess at a local server replaying recorded CMR responses. Searching CMR needs no login;
Earthdata credentials (``$EARTHDATA_TOKEN`` or ``~/.netrc``) are used only when a reader downloads
a file (:func:`~spectralearth_data.sources.signing.earthdata_headers`).

Each UMM-G granule becomes an item shaped like NASA's CMR-STAC items (the real recorded EMIT
fixture): asset keys ``data``, ``data1``, ``data2`` ... for the "GET DATA" links in UMM order
(EMIT: reflectance, uncertainty, mask), ``browse`` for the quicklook, and ``eo:cloud_cover``.
"""

from __future__ import annotations

import logging
import os
import warnings
from typing import Any

import geopandas as gpd

from ..catalog import SourceSpec
from ..errors import SourceError
from .base import RetryPolicy, SearchRequest, filter_scenes, item_rows, scenes_frame

log = logging.getLogger(__name__)

#: Override of the CMR search root (e.g. a local replay server in tests).
CMR_URL_ENV = "SPECTRALEARTH_CMR_URL"


def granule_to_item(granule: dict[str, Any]) -> dict[str, Any]:
    """A CMR-STAC-shaped STAC item dict from one UMM-JSON granule record (``{meta, umm}``)."""
    meta, umm = granule.get("meta", {}), granule.get("umm", {})
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
    assets: dict[str, dict[str, str]] = {}
    n_data = 0
    for link in umm.get("RelatedUrls") or []:
        url, kind = link.get("URL", ""), link.get("Type", "")
        if kind == "GET DATA" and url.startswith("https://"):
            key = "data" if n_data == 0 else f"data{n_data}"
            n_data += 1
            assets[key] = {"href": url, "title": link.get("Description", url.rsplit("/", 1)[-1]), "roles": ["data"]}
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

    def _query(self, short_name: str, provider: str | None, request: SearchRequest):
        from earthaccess.search import DataGranules

        q = DataGranules()
        q.session = self.retry.session()
        q.mode(self.url)
        q.short_name(short_name)
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
                    granules = self._query(p.short_name, p.provider, request).get(limit=1_000_000)
            except RequestException as e:
                raise SourceError(
                    f"source {self.name!r} ({self.url}): unreachable after {self.retry.attempts} retries: "
                    f"{str(e).splitlines()[0][:300]}"
                ) from None
            except RuntimeError as e:  # earthaccess wraps CMR error bodies in RuntimeError
                raise SourceError(f"source {self.name!r} ({self.url}): CMR answered an error: {str(e)[:300]}") from None
            for g in granules:
                item = granule_to_item(dict(g))
                new = item_rows(item, [sensor], self.name, p.cloud_cover_property, p.short_name)
                skipped += not new
                rows.extend(new)
        if skipped:
            log.warning("%s: skipped %d granules without footprint, time or data links", self.name, skipped)
        return filter_scenes(scenes_frame(rows), request)
