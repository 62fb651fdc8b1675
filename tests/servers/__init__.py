"""Real local servers for tests (reusable by every test area).

* :func:`stac_api_server` - a STAC API process (``rustac serve``, in-memory backend) on localhost
  loaded with STAC files; it pages with ``next`` links but ignores ``query``/``filter``.
* :class:`CmrReplayServer` - a CMR-compatible ``/search/granules.umm_json`` endpoint replaying
  recorded UMM-JSON granule records, filtered by short_name/provider/temporal/bounding_box/
  cloud_cover and paged with ``CMR-Search-After`` like the real CMR.
* :class:`FaultProxy` - an HTTP proxy in front of any server that answers a scripted list of
  failures first (500, 429 with Retry-After, ...) or always fails, and records every request.

Import from a test with ``from tests.servers import ...`` (tests/conftest puts the repo root on
sys.path). Servers bind 127.0.0.1 on a free port and are polled until ready (no fixed sleeps).
"""

from __future__ import annotations

import contextlib
import json
import shutil
import socket
import struct
import subprocess
import threading
import time
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any
from urllib.parse import parse_qsl, urlsplit

import requests

REPO = Path(__file__).resolve().parents[2]


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def wait_until_ready(url: str, timeout_s: float = 20.0, proc: subprocess.Popen | None = None) -> None:
    """Poll ``url`` until it answers 200 (raise if ``proc`` dies or time runs out)."""
    deadline = time.monotonic() + timeout_s
    last: Exception | None = None
    while time.monotonic() < deadline:
        if proc is not None and proc.poll() is not None:
            raise RuntimeError(f"server process exited with {proc.returncode} before {url} was ready")
        try:
            if requests.get(url, timeout=1).status_code == 200:
                return
        except requests.RequestException as e:
            last = e
        time.sleep(0.05)
    raise RuntimeError(f"{url} not ready after {timeout_s} s ({last})")


def _rustac() -> str:
    exe = shutil.which("rustac") or str(Path(__import__("sys").executable).parent / "rustac")
    if not Path(exe).exists():
        raise RuntimeError("rustac not installed (pip install rustac)")
    return exe


@contextlib.contextmanager
def stac_api_server(hrefs: Sequence[Path | str]) -> Iterator[str]:
    """Run ``rustac serve`` with the given item/collection files; yields the API root URL."""
    port = free_port()
    addr = f"127.0.0.1:{port}"
    cmd = [_rustac(), "serve", "--create-collections", "-a", addr, *map(str, hrefs)]
    proc = subprocess.Popen(cmd, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    try:
        wait_until_ready(f"http://{addr}/", proc=proc)
        yield f"http://{addr}"
    finally:
        proc.terminate()
        try:
            proc.wait(timeout=5)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()


class _Threaded:
    """Start/stop a ThreadingHTTPServer in a daemon thread; usable as a context manager."""

    handler: type[BaseHTTPRequestHandler]

    def __enter__(self):
        self.httpd = ThreadingHTTPServer(("127.0.0.1", 0), self.handler)
        self.httpd.owner = self  # type: ignore[attr-defined]
        self.port = self.httpd.server_address[1]
        self.url = f"http://127.0.0.1:{self.port}"
        self.thread = threading.Thread(target=self.httpd.serve_forever, daemon=True)
        self.thread.start()
        return self

    def __exit__(self, *exc):
        self.httpd.shutdown()
        self.httpd.server_close()
        self.thread.join(timeout=5)


class _StacSearchHandler(BaseHTTPRequestHandler):
    """The handler of a STAC search replay (a :class:`_Threaded` owner with ``requests`` and
    ``landing()``): ``GET`` of a path in ``landing_paths`` answers the landing page (404 for any
    other), ``POST /search`` with a JSON object body goes to :meth:`_search` (400 for any other
    POST). Every request is recorded in ``owner.requests`` as (method, path, JSON body)."""

    landing_paths: tuple[str, ...] = ("",)

    def log_message(self, *a):
        pass

    def do_GET(self):
        owner = self.server.owner  # type: ignore[attr-defined]
        owner.requests.append(("GET", self.path, None))
        if self.path.rstrip("/") in self.landing_paths:
            self._send(200, owner.landing())
        else:
            self._send(404, {"code": "NotFound", "description": self.path})

    def do_POST(self):
        owner = self.server.owner  # type: ignore[attr-defined]
        length = int(self.headers.get("Content-Length") or 0)
        try:
            body = json.loads(self.rfile.read(length) or b"{}")
        except json.JSONDecodeError:
            body = None
        owner.requests.append(("POST", self.path, body))
        if self.path.split("?")[0].rstrip("/") != "/search" or not isinstance(body, dict):
            self._send(400, {"code": "BadRequest", "description": "POST /search with a JSON body"})
            return
        self._search(owner, body)

    def _search(self, owner: Any, body: dict) -> None:
        raise NotImplementedError

    def _send(self, code: int, doc: dict, ctype: str = "application/json"):
        data = json.dumps(doc).encode()
        self.send_response(code)
        self.send_header("Content-Type", ctype)
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        self.wfile.write(data)


# -- CMR replay -----------------------------------------------------------------------------------


def _overlaps(bbox: tuple[float, float, float, float], granule: dict[str, Any]) -> bool:
    geom = granule["umm"]["SpatialExtent"]["HorizontalSpatialDomain"]["Geometry"]
    pts = [(p["Longitude"], p["Latitude"]) for poly in geom.get("GPolygons", []) for p in poly["Boundary"]["Points"]]
    if not pts:
        return False
    xs, ys = zip(*pts)
    return not (max(xs) < bbox[0] or min(xs) > bbox[2] or max(ys) < bbox[1] or min(ys) > bbox[3])


class _CmrHandler(BaseHTTPRequestHandler):
    def log_message(self, *a):  # keep test output quiet
        pass

    def do_GET(self):
        owner: CmrReplayServer = self.server.owner  # type: ignore[attr-defined]
        parts = urlsplit(self.path)
        owner.requests.append(self.path)
        if not parts.path.endswith("/granules.umm_json"):
            self._send(404, {"errors": [f"unknown path {parts.path}"]})
            return
        params = parse_qsl(parts.query)
        hits = [g for g in owner.granules if owner.matches(g, params)]
        size = int(dict(params).get("page_size", 10))
        start = int(self.headers.get("cmr-search-after") or 0)
        page = hits[start:start + size]
        headers = {"CMR-Hits": str(len(hits))}
        if start + size < len(hits):
            headers["CMR-Search-After"] = str(start + size)
        self._send(200, {"hits": len(hits), "took": 1, "items": page}, headers)

    def _send(self, code: int, body: dict, headers: dict[str, str] | None = None):
        data = json.dumps(body).encode()
        self.send_response(code)
        self.send_header("Content-Type", "application/vnd.nasa.cmr.umm_results+json")
        self.send_header("Content-Length", str(len(data)))
        for k, v in (headers or {}).items():
            self.send_header(k, v)
        self.end_headers()
        self.wfile.write(data)


class CmrReplayServer(_Threaded):
    """Replays UMM-JSON granule records at ``{url}/search/granules.umm_json``.

    Filters like CMR: ``short_name``, ``version``, ``provider``, ``temporal[]=start,end``,
    ``bounding_box[]=w,s,e,n``, ``cloud_cover=min,max``; pages with ``page_size`` and the
    ``CMR-Search-After`` header. ``requests`` records every request path. The records are served
    as given, in the order given, inside CMR's ``{"hits", "took", "items"}`` envelope. A record
    without a ``meta`` block (recordings that kept only ``umm``) belongs to ``provider``.
    """

    handler = _CmrHandler

    def __init__(self, granules: list[dict[str, Any]], provider: str = "LPCLOUD"):
        self.granules = granules
        self.provider = provider
        self.requests: list[str] = []

    @property
    def search_url(self) -> str:
        return f"{self.url}/search/"

    def matches(self, g: dict[str, Any], params: list[tuple[str, str]]) -> bool:
        umm = g["umm"]
        owner_provider = self.provider
        for key, value in params:
            key = key.rstrip("[]")
            if key == "short_name" and umm["CollectionReference"]["ShortName"] != value:
                return False
            if key == "version" and umm["CollectionReference"].get("Version") != value:
                return False
            if key == "provider" and (g.get("meta") or {}).get("provider-id", owner_provider) != value:
                return False
            if key == "temporal":
                lo, _, hi = value.partition(",")
                t = umm["TemporalExtent"]["RangeDateTime"]["BeginningDateTime"]
                if (lo and t < lo) or (hi and t > hi):
                    return False
            if key == "bounding_box" and not _overlaps(tuple(map(float, value.split(","))), g):
                return False
            if key == "cloud_cover":
                lo, _, hi = value.partition(",")
                cc = umm.get("CloudCover")
                if cc is None or (lo and cc < float(lo)) or (hi and cc > float(hi)):
                    return False
        return True


# -- fault injection ------------------------------------------------------------------------------


@dataclass
class Recorded:
    method: str
    path: str
    body: bytes
    status: int


class _ProxyHandler(BaseHTTPRequestHandler):
    def log_message(self, *a):
        pass

    def do_GET(self):
        self._handle("GET")

    def do_POST(self):
        self._handle("POST")

    def _handle(self, method: str):
        owner: FaultProxy = self.server.owner  # type: ignore[attr-defined]
        length = int(self.headers.get("Content-Length") or 0)
        body = self.rfile.read(length) if length else b""
        fault = owner.next_fault()
        kind = owner.chaos.draw(self.path) if fault is None and owner.chaos is not None else None
        if kind == "reset":
            owner.log.append(Recorded(method, self.path, body, 0))
            self.connection.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
            self.close_connection = True
            self.connection.close()
            return
        if kind == "slow":
            time.sleep(owner.chaos.delay_s)
        elif kind == 429:
            fault = (429, {"Retry-After": str(owner.chaos.retry_after)})
        elif isinstance(kind, int):
            fault = (kind, {})
        if fault is not None:
            status, headers = fault
            owner.log.append(Recorded(method, self.path, body, status))
            data = json.dumps({"code": "InjectedFault", "description": f"injected HTTP {status}"}).encode()
            self.send_response(status)
            for k, v in headers.items():
                self.send_header(k, v)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(data)))
            self.end_headers()
            self.wfile.write(data)
            return
        headers = {k: v for k, v in self.headers.items() if k.lower() not in {"host", "content-length", "accept-encoding"}}
        r = requests.request(method, owner.upstream + self.path, data=body or None, headers=headers, timeout=30)
        owner.log.append(Recorded(method, self.path, body, r.status_code))
        data = r.content.replace(owner.upstream.encode(), owner.url.encode())
        self.send_response(r.status_code)
        for k, v in r.headers.items():
            if k.lower() not in {"content-length", "transfer-encoding", "content-encoding", "connection"}:
                self.send_header(k, v)
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        if kind == "truncate":  # announce the whole body, send a third, hang up
            self.wfile.write(data[: max(1, len(data) // 3)])
            self.close_connection = True
            return
        self.wfile.write(data)


@dataclass
class FaultProxy(_Threaded):
    """Forward to ``upstream`` after answering the scripted ``faults`` first.

    ``faults`` is a list of ``status`` or ``(status, headers)``; ``always`` (a status) makes every
    request fail. Upstream URLs in bodies are rewritten to the proxy's, so paging links stay on it.
    ``chaos`` (a :class:`tests.servers.http_range.Chaos`) adds seeded random faults once the
    scripted ones are used up: 5xx, 429 with Retry-After, slow answers, resets, truncated bodies.
    """

    upstream: str
    faults: list[Any] = field(default_factory=list)
    always: int | None = None
    chaos: Any = None
    log: list[Recorded] = field(default_factory=list)
    handler = _ProxyHandler

    def __post_init__(self):
        self._lock = threading.Lock()
        self.upstream = self.upstream.rstrip("/")

    def next_fault(self) -> tuple[int, dict[str, str]] | None:
        with self._lock:
            if self.always is not None:
                return self.always, {}
            if not self.faults:
                return None
            f = self.faults.pop(0)
        return (f, {}) if isinstance(f, int) else (f[0], dict(f[1]))
