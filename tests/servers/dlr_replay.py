"""Replay recorded DLR EOC geoservice STAC items, paged by ``startIndex``/``limit`` in the POST body.

What the real API does, as the clients that work against it show (catalogs/sources.yaml,
``dlr-geoservice``): ``POST /search`` with ``collections``, ``bbox``, ``datetime``, ``limit`` and
``startIndex`` answers the ``limit`` items that follow the first ``startIndex`` matches, with
``numberMatched``; a ``limit`` above 500 is refused; cloud cover is filtered by a CQL2-JSON
``filter`` (``"filter-lang": "cql2-json"``).

:class:`StartIndexReplay` serves the recorded items *unchanged*, in their recorded order, that way:

* ``POST /search``: ``collections`` (the item's ``collection``), ``bbox`` (overlap with the item's
  ``bbox``: a bounding-box test, coarser than a geometry test, so an item inside the box but
  outside a region's exact shape comes back, as it can from the real API), ``datetime`` (an
  interval with ``..`` for an open end), ``filter`` (CQL2-JSON: ``and``/``or``/``not`` and the
  comparisons ``=``, ``<>``, ``<``, ``<=``, ``>``, ``>=`` on ``{"property": ...}``), then the slice
  ``[startIndex : startIndex + limit]``. ``limit`` must be an integer in 1..500 (400 otherwise).
* Any other body key (``intersects``, ``query``, ``token``, ...) is answered 400. That strictness is
  this test server's, so a client that sends something the evidence does not show fails the
  test; what the real API does with those keys is not known.
* The page envelope is written here, not recorded (the recordings kept only ``numberMatched``
  and ``features``): ``type``, ``features``, ``numberMatched`` (the matches *among the replayed
  items*, not the recorded archive-wide count), ``numberReturned`` and a ``self`` link, plus a
  ``next`` link (GET with ``startIndex``/``limit`` in the query string) while more remain.
* ``GET /`` answers a small landing page, also written here.
* ``page_cap`` (a test knob, not something the evidence shows the real API doing) answers at most
  that many items per page whatever ``limit`` asks, to check that a client counts what came.

``requests`` records every (method, path, JSON body); ``returned`` the item ids of each answer.
"""

from __future__ import annotations

import copy
from datetime import datetime
from typing import Any
from urllib.parse import urlencode

from . import _StacSearchHandler, _Threaded

MAX_LIMIT = 500
BODY_KEYS = {"collections", "bbox", "datetime", "limit", "startIndex", "filter", "filter-lang"}


class BadRequest(Exception):
    pass


def _time(value: str) -> datetime:
    return datetime.fromisoformat(value.replace("Z", "+00:00"))


def _in_interval(item: dict, interval: str) -> bool:
    if "/" not in interval:
        interval = f"{interval}/{interval}"
    lo, hi = interval.split("/", 1)
    when = _time(item["properties"]["datetime"])
    return (lo in ("", "..") or when >= _time(lo)) and (hi in ("", "..") or when <= _time(hi))


def _overlaps(item: dict, bbox: list) -> bool:
    if not (isinstance(bbox, list) and len(bbox) == 4 and all(isinstance(v, (int, float)) for v in bbox)):
        raise BadRequest(f"bbox must be [west, south, east, north], got {bbox!r}")
    b = item["bbox"]
    w, s, e, n = (b[0], b[1], b[3], b[4]) if len(b) == 6 else b
    return not (e < bbox[0] or w > bbox[2] or n < bbox[1] or s > bbox[3])


_COMPARE = {
    "=": lambda a, b: a == b,
    "<>": lambda a, b: a != b,
    "<": lambda a, b: a < b,
    "<=": lambda a, b: a <= b,
    ">": lambda a, b: a > b,
    ">=": lambda a, b: a >= b,
}


def _value(arg: Any, item: dict) -> Any:
    if isinstance(arg, dict) and set(arg) == {"property"}:
        return item["properties"].get(arg["property"])
    if isinstance(arg, (int, float, str)):
        return arg
    raise BadRequest(f"unsupported CQL2 argument {arg!r}")


def _cql2(expr: Any, item: dict) -> bool:
    if not isinstance(expr, dict) or "op" not in expr or not isinstance(expr.get("args"), list):
        raise BadRequest(f"not a CQL2-JSON expression: {expr!r}")
    op, args = expr["op"], expr["args"]
    if op == "and":
        return all(_cql2(a, item) for a in args)
    if op == "or":
        return any(_cql2(a, item) for a in args)
    if op == "not" and len(args) == 1:
        return not _cql2(args[0], item)
    if op in _COMPARE and len(args) == 2:
        a, b = (_value(x, item) for x in args)
        try:
            return a is not None and b is not None and _COMPARE[op](a, b)
        except TypeError:
            return False
    raise BadRequest(f"unsupported CQL2 operator {op!r}")


class _Handler(_StacSearchHandler):
    def _search(self, owner: StartIndexReplay, body: dict) -> None:
        try:
            page = owner.page(body)
        except BadRequest as e:
            self._send(400, {"code": "BadRequest", "description": str(e)})
            return
        owner.returned.append([f["id"] for f in page["features"]])
        self._send(200, page, "application/geo+json")


class StartIndexReplay(_Threaded):
    """Serve ``items`` (recorded STAC item dicts) as the module docstring describes."""

    handler = _Handler

    def __init__(self, items: list[dict[str, Any]], page_cap: int | None = None):
        self.items = items
        self.page_cap = page_cap
        self.requests: list[tuple[str, str, Any]] = []
        self.returned: list[list[str]] = []

    @property
    def searches(self) -> list[dict]:
        """The JSON bodies of the POST /search requests received, in order."""
        return [body for method, path, body in self.requests if method == "POST"]

    def landing(self) -> dict:
        return {
            "type": "Catalog", "stac_version": "1.0.0", "id": "dlr-replay",
            "description": "recorded DLR EOC items, replayed (landing page written by the test server)",
            "conformsTo": ["https://api.stacspec.org/v1.0.0/core", "https://api.stacspec.org/v1.0.0/item-search"],
            "links": [
                {"rel": "self", "href": self.url, "type": "application/json"},
                {"rel": "search", "href": f"{self.url}/search", "type": "application/geo+json", "method": "POST"},
            ],
        }

    def page(self, body: dict) -> dict:
        unknown = sorted(set(body) - BODY_KEYS)
        if unknown:
            raise BadRequest(f"body keys {unknown} are not replayed (only {sorted(BODY_KEYS)})")
        limit = body.get("limit")
        if not isinstance(limit, int) or isinstance(limit, bool) or not 1 <= limit <= MAX_LIMIT:
            raise BadRequest(f"limit must be an integer in 1..{MAX_LIMIT}, got {limit!r}")
        start = body.get("startIndex", 0)
        if not isinstance(start, int) or isinstance(start, bool) or start < 0:
            raise BadRequest(f"startIndex must be an integer >= 0, got {start!r}")
        if "filter" in body and body.get("filter-lang") != "cql2-json":
            raise BadRequest("filter needs \"filter-lang\": \"cql2-json\"")
        matches = []
        for item in self.items:
            if body.get("collections") is not None and item.get("collection") not in body["collections"]:
                continue
            if "bbox" in body and not _overlaps(item, body["bbox"]):
                continue
            if body.get("datetime") and not _in_interval(item, body["datetime"]):
                continue
            if "filter" in body and not _cql2(body["filter"], item):
                continue
            matches.append(item)
        size = min(limit, self.page_cap) if self.page_cap else limit
        features = [copy.deepcopy(f) for f in matches[start:start + size]]
        links = [{"rel": "self", "href": f"{self.url}/search", "type": "application/geo+json", "method": "POST"}]
        if start + len(features) < len(matches):
            query = urlencode({"startIndex": start + len(features), "limit": limit})
            links.append({"rel": "next", "href": f"{self.url}/search?{query}", "type": "application/geo+json"})
        return {"type": "FeatureCollection", "features": features, "numberMatched": len(matches),
                "numberReturned": len(features), "links": links}
