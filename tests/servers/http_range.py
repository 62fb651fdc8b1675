"""A local HTTP file server with byte-range requests and fault injection, for reader tests.

Serves one folder like a static object store (GET/HEAD, ``Range: bytes=a-b``, 206 replies,
``Accept-Ranges``), counts requests and bytes per path, and can misbehave on purpose:

* ``faults[path] = "truncate"``: announce the full length but send only the first third and close;
* ``faults[path] = 500`` (or any status): answer that status;
* ``faults[path] = "drop-ranges"``: ignore Range and send the whole file (a server without ranges).

``chaos = Chaos(rates={...}, seed=...)`` adds seeded random faults on every path (or the paths
``only`` selects): ``500``/``503``, ``429`` with ``Retry-After``, ``"slow"`` (a delayed answer),
``"reset"`` (the connection is reset before any reply) and ``"truncate"``; ``Chaos.injected``
counts what was done, and ``max_faults`` bounds the total.

Use :func:`serve` as a context manager; it polls until the server answers instead of sleeping.
"""

from __future__ import annotations

import contextlib
import http.server
import os
import random
import re
import socket
import struct
import threading
import time
import urllib.request
from collections import Counter
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path

_RANGE = re.compile(r"bytes=(\d*)-(\d*)$")


#: Fault kinds :class:`Chaos` can inject.
CHAOS_KINDS = (500, 503, 429, "slow", "reset", "truncate")


@dataclass
class Chaos:
    """Seeded random faults: ``rates[kind]`` is the chance that a request gets ``kind``.

    ``retry_after`` is sent with 429 (seconds), ``delay_s`` is how late a ``"slow"`` answer
    comes, ``only(path)`` selects the paths that may fail, ``max_faults`` caps the total
    (None = no cap). Thread-safe; ``injected`` counts faults by kind.
    """

    rates: dict[object, float]
    seed: int = 0
    retry_after: int = 1
    delay_s: float = 0.3
    max_faults: int | None = None
    only: Callable[[str], bool] | None = None
    injected: Counter = field(default_factory=Counter)

    def __post_init__(self):
        unknown = set(self.rates) - set(CHAOS_KINDS)
        if unknown:
            raise ValueError(f"unknown fault kinds {unknown}; known: {CHAOS_KINDS}")
        self._rng = random.Random(self.seed)
        self._lock = threading.Lock()

    @property
    def total(self) -> int:
        return sum(self.injected.values())

    def draw(self, path: str) -> object | None:
        """The fault for this request, or None."""
        if self.only is not None and not self.only(path):
            return None
        with self._lock:
            if self.max_faults is not None and self.total >= self.max_faults:
                return None
            u = self._rng.random()
            for kind, rate in self.rates.items():
                if u < rate:
                    self.injected[kind] += 1
                    return kind
                u -= rate
        return None


class RangeServer(http.server.ThreadingHTTPServer):
    daemon_threads = True

    def __init__(self, root: Path):
        super().__init__(("127.0.0.1", 0), _Handler)
        self.root = Path(root)
        self.faults: dict[str, object] = {}
        self.chaos: Chaos | None = None
        self.queries: list[str] = []  # query strings seen (e.g. read-time signatures)
        self.authorization: Counter[str] = Counter()  # Authorization headers seen (read-time tokens)
        self.requests: Counter[str] = Counter()
        self.range_requests: Counter[str] = Counter()
        self.bytes_sent: Counter[str] = Counter()
        self.lock = threading.Lock()

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.server_address[1]}"


class _Handler(http.server.BaseHTTPRequestHandler):
    server: RangeServer
    protocol_version = "HTTP/1.1"

    def log_message(self, *args) -> None:  # keep test output quiet
        pass

    def _target(self) -> tuple[str, Path | None]:
        rel = self.path.split("?", 1)[0].lstrip("/")
        p = (self.server.root / rel).resolve()
        if self.server.root.resolve() not in p.parents or not p.is_file():
            return rel, None
        return rel, p

    def do_HEAD(self) -> None:
        self._serve(body=False)

    def do_GET(self) -> None:
        self._serve(body=True)

    def _serve(self, body: bool) -> None:
        rel, path = self._target()
        with self.server.lock:
            self.server.requests[rel] += 1
            if "?" in self.path:
                self.server.queries.append(self.path.split("?", 1)[1])
            if self.headers.get("Authorization"):
                self.server.authorization[self.headers["Authorization"]] += 1
        fault = self.server.faults.get(rel)
        if fault is None and self.server.chaos is not None and path is not None:
            fault = self.server.chaos.draw(rel)
            if fault == "slow":
                time.sleep(self.server.chaos.delay_s)
                fault = None
            elif fault == "reset":
                self._reset()
                return
            elif fault == 429:
                self._too_many(self.server.chaos.retry_after)
                return
        if isinstance(fault, int):
            self.send_error(fault)
            return
        if path is None:
            self.send_error(404)
            return
        size = path.stat().st_size
        start, end = 0, size - 1
        rng = self.headers.get("Range")
        partial = False
        if rng and fault != "drop-ranges":
            m = _RANGE.match(rng.strip())
            if not m:
                self.send_error(416)
                return
            a, b = m.groups()
            if a == "":
                start, end = max(0, size - int(b)), size - 1
            else:
                start, end = int(a), min(int(b) if b else size - 1, size - 1)
            if start >= size:
                self.send_response(416)
                self.send_header("Content-Range", f"bytes */{size}")
                self.send_header("Content-Length", "0")
                self.end_headers()
                return
            partial = True
            with self.server.lock:
                self.server.range_requests[rel] += 1
        length = end - start + 1
        self.send_response(206 if partial else 200)
        self.send_header("Accept-Ranges", "bytes")
        self.send_header("Content-Type", "application/octet-stream")
        self.send_header("Content-Length", str(length))
        if partial:
            self.send_header("Content-Range", f"bytes {start}-{end}/{size}")
        self.end_headers()
        if not body:
            return
        with open(path, "rb") as fh:
            fh.seek(start)
            data = fh.read(length)
        if fault == "truncate":
            data = data[: max(1, len(data) // 3)]
        self.wfile.write(data)
        with self.server.lock:
            self.server.bytes_sent[rel] += len(data)
        if fault == "truncate":
            self.close_connection = True

    def _reset(self) -> None:
        """Abort the connection with a TCP RST (SO_LINGER 0), before any reply."""
        self.connection.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
        self.close_connection = True
        self.connection.close()

    def _too_many(self, retry_after: int) -> None:
        body = b"slow down"
        self.send_response(429)
        self.send_header("Retry-After", str(retry_after))
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)


@contextlib.contextmanager
def serve(root: Path) -> Iterator[RangeServer]:
    """Serve ``root`` on a free localhost port for the duration of the block."""
    srv = RangeServer(root)
    t = threading.Thread(target=srv.serve_forever, daemon=True)
    t.start()
    try:
        for _ in range(200):  # poll readiness (no fixed sleep)
            try:
                urllib.request.urlopen(urllib.request.Request(srv.url + "/", method="HEAD"), timeout=1)
            except urllib.error.HTTPError:
                break  # it answered (404 for the folder itself)
            except OSError:
                continue
            break
        yield srv
    finally:
        srv.shutdown()
        srv.server_close()
        t.join(timeout=5)


if __name__ == "__main__":  # manual use: python tests/servers/http_range.py FOLDER
    import sys
    import time

    with serve(Path(sys.argv[1] if len(sys.argv) > 1 else os.getcwd())) as s:
        print(s.url, flush=True)
        while True:
            time.sleep(3600)
