"""Replay recorded STAC API search pages with Earth Search's POST ``next``-token paging.

Earth Search (stac-server) pages a ``POST /search`` with a ``rel=next`` link whose ``body`` is
``{"next": "<datetime>,<id>,<collection>"}`` and ``merge: false``: the client posts that body
alone to get the next page. ``rustac serve`` pages differently and ignores ``query``/``filter``,
so a test that wants the real pages back exactly uses :class:`StacPageReplay`:

* ``GET /`` answers a minimal landing page (core + item-search + query conformance, a POST
  ``search`` link). It is written here, not recorded: clients need one to open the API.
* the first ``POST /search`` without a ``next`` key gets page 1; a POST whose body is exactly
  page *n*'s next body gets page *n+1*; any other body gets 400, so a client that pages wrongly
  (a GET, a merged body, a lost token) fails the test.
* the pages are served unchanged except that link hrefs pointing at the recorded API root are
  rewritten to this server, and the last page's ``next`` link is dropped (the recording ends).

``requests`` records every (method, path, JSON body) received.
"""

from __future__ import annotations

import copy
from typing import Any

from . import _StacSearchHandler, _Threaded

CONFORMS = [
    "https://api.stacspec.org/v1.0.0/core",
    "https://api.stacspec.org/v1.0.0/item-search",
    "https://api.stacspec.org/v1.0.0/item-search#query",
]


class _Handler(_StacSearchHandler):
    landing_paths = ("", "/conformance")

    def _search(self, owner: StacPageReplay, body: dict) -> None:
        page = owner.page_for(body)
        if page is None:
            self._send(400, {"code": "BadRequest", "description": f"no recorded page for body {body}"})
            return
        self._send(200, page, "application/geo+json")


class StacPageReplay(_Threaded):
    """Serve ``pages`` (recorded ``POST /search`` FeatureCollections, in order) recorded from the
    API at ``recorded_root`` (see the module docstring)."""

    handler = _Handler

    def __init__(self, pages: list[dict[str, Any]], recorded_root: str):
        self.pages = pages
        self.recorded_root = recorded_root.rstrip("/")
        self.requests: list[tuple[str, str, Any]] = []

    def landing(self) -> dict:
        return {
            "type": "Catalog", "stac_version": "1.0.0", "id": "replay", "description": "recorded search pages",
            "conformsTo": CONFORMS,
            "links": [
                {"rel": "self", "href": self.url, "type": "application/json"},
                {"rel": "root", "href": self.url, "type": "application/json"},
                {"rel": "search", "href": f"{self.url}/search", "type": "application/geo+json", "method": "POST"},
                {"rel": "search", "href": f"{self.url}/search", "type": "application/geo+json", "method": "GET"},
            ],
        }

    @staticmethod
    def next_body(page: dict) -> dict | None:
        for link in page.get("links") or []:
            if link.get("rel") == "next":
                return link.get("body")
        return None

    def page_for(self, body: dict) -> dict | None:
        if "next" not in body:
            n = 0
        else:
            n = next((i + 1 for i, p in enumerate(self.pages[:-1]) if self.next_body(p) == body), None)
            if n is None:
                return None
        page = copy.deepcopy(self.pages[n])
        links = []
        for link in page.get("links") or []:
            if link.get("rel") == "next" and n == len(self.pages) - 1:
                continue
            if isinstance(link.get("href"), str) and link["href"].startswith(self.recorded_root):
                link["href"] = self.url + link["href"][len(self.recorded_root):]
            links.append(link)
        page["links"] = links
        return page
