"""Local HTTP servers that authenticate like the real providers, for credential tests.

* :func:`earthdata` - a data server and a login server that behave like an Earthdata Login
  protected DAAC: a request without a session cookie or bearer token is redirected (302) to the
  login server's ``/oauth/authorize``; the login server wants HTTP Basic auth with the right
  login/password (401 with ``WWW-Authenticate: Basic`` otherwise) and redirects back to the data
  server's ``/urs_redirect`` with a one-time code; the data server turns the code into a session
  cookie and redirects to the file. A valid ``Authorization: Bearer`` token is served at once.
* :func:`expiring_sas` - a file server that accepts a SAS query (``sig=...``) only while that
  signature is in ``valid``; a signature removed from it has "expired" and gets 403.

Both serve files with byte ranges (:mod:`servers.http_range`) and record the Authorization
headers and queries they saw, so tests can check where each credential went.
"""

from __future__ import annotations

import base64
import contextlib
import http.server
import secrets
import threading
from collections import Counter
from collections.abc import Iterator
from pathlib import Path
from urllib.parse import parse_qs, quote, urlsplit

from servers.http_range import RangeServer, _Handler, serve


class EarthdataDataServer(RangeServer):
    """The DAAC side: files behind Earthdata Login (see the module docstring)."""

    def __init__(self, root: Path, token: str):
        super().__init__(root)
        self.token = token
        self.login: EarthdataLoginServer | None = None
        self.sessions: set[str] = set()
        self.seen_auth: Counter[str] = Counter()  # every Authorization header, any path
        self.redirects_to_login = 0


class _DataHandler(_Handler):
    server: EarthdataDataServer

    def _serve(self, body: bool) -> None:
        srv = self.server
        parts = urlsplit(self.path)
        auth = self.headers.get("Authorization", "")
        with srv.lock:
            if auth:
                srv.seen_auth[auth] += 1
        if parts.path == "/urs_redirect":
            q = parse_qs(parts.query)
            code, state = q.get("code", [""])[0], q.get("state", ["/"])[0]
            if srv.login is None or not srv.login.redeem(code):
                self.send_error(401, "bad code")
                return
            cookie = secrets.token_hex(8)
            with srv.lock:
                srv.sessions.add(cookie)
            self.send_response(302)
            self.send_header("Set-Cookie", f"daac_session={cookie}; Path=/; HttpOnly")
            self.send_header("Location", state)
            self.send_header("Content-Length", "0")
            self.end_headers()
            return
        cookies = dict(c.strip().split("=", 1) for c in self.headers.get("Cookie", "").split(";") if "=" in c)
        if auth == f"Bearer {srv.token}" or cookies.get("daac_session") in srv.sessions:
            super()._serve(body)
            return
        if auth.startswith("Bearer "):
            self.send_error(401, "invalid token")
            return
        assert srv.login is not None
        with srv.lock:
            srv.redirects_to_login += 1
        back = quote(f"{srv.url}/urs_redirect", safe="")
        self.send_response(302)
        self.send_header("Location", f"{srv.login.url}/oauth/authorize?client_id=daac&response_type=code"
                                     f"&redirect_uri={back}&state={quote(parts.path, safe='')}")
        self.send_header("Content-Length", "0")
        self.end_headers()


class EarthdataLoginServer(http.server.ThreadingHTTPServer):
    """The Earthdata Login side: Basic auth, then a redirect back with a one-time code."""

    daemon_threads = True

    def __init__(self, user: str, password: str):
        super().__init__(("127.0.0.1", 0), _LoginHandler)
        self.user, self.password = user, password
        self.codes: set[str] = set()
        self.seen_auth: Counter[str] = Counter()
        self.logins = 0
        self.refused = 0
        self.lock = threading.Lock()

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.server_address[1]}"

    @property
    def netloc(self) -> str:
        return f"127.0.0.1:{self.server_address[1]}"

    def redeem(self, code: str) -> bool:
        with self.lock:
            if code in self.codes:
                self.codes.discard(code)
                return True
            return False


class _LoginHandler(http.server.BaseHTTPRequestHandler):
    server: EarthdataLoginServer
    protocol_version = "HTTP/1.1"

    def log_message(self, *args) -> None:
        pass

    def do_GET(self) -> None:
        srv = self.server
        parts = urlsplit(self.path)
        auth = self.headers.get("Authorization", "")
        with srv.lock:
            if auth:
                srv.seen_auth[auth] += 1
        if parts.path != "/oauth/authorize":
            self.send_error(404)
            return
        want = "Basic " + base64.b64encode(f"{srv.user}:{srv.password}".encode()).decode()
        if auth != want:
            with srv.lock:
                srv.refused += 1
            self.send_response(401)
            self.send_header("WWW-Authenticate", 'Basic realm="Please enter your Earthdata Login credentials"')
            self.send_header("Content-Length", "0")
            self.end_headers()
            return
        q = parse_qs(parts.query)
        code = secrets.token_hex(8)
        with srv.lock:
            srv.codes.add(code)
            srv.logins += 1
        back = q["redirect_uri"][0]
        state = quote(q.get("state", ["/"])[0], safe="/")
        self.send_response(302)
        self.send_header("Location", f"{back}?code={code}&state={state}")
        self.send_header("Content-Length", "0")
        self.end_headers()


@contextlib.contextmanager
def earthdata(root: Path, *, token: str, user: str, password: str) -> Iterator[tuple[EarthdataDataServer, EarthdataLoginServer]]:
    """A (data server, login server) pair serving ``root`` behind Earthdata-style login."""
    login = EarthdataLoginServer(user, password)
    t = threading.Thread(target=login.serve_forever, daemon=True)
    t.start()
    data = EarthdataDataServer(root, token)
    data.RequestHandlerClass = _DataHandler
    data.login = login
    try:
        with _running(data):
            yield data, login
    finally:
        login.shutdown()
        login.server_close()
        t.join(timeout=5)


class ExpiringSasServer(RangeServer):
    """Files readable with a SAS query whose ``sig`` is in ``valid`` (403 for any other)."""

    def __init__(self, root: Path):
        super().__init__(root)
        self.valid: set[str] = set()
        self.refused = 0


class _SasHandler(_Handler):
    server: ExpiringSasServer

    def _serve(self, body: bool) -> None:
        q = parse_qs(urlsplit(self.path).query)
        sig = q.get("sig", [""])[0]
        if sig not in self.server.valid:
            with self.server.lock:
                self.server.refused += 1
                if "?" in self.path:
                    self.server.queries.append(self.path.split("?", 1)[1])
            self.send_error(403, "Server failed to authenticate the request")
            return
        super()._serve(body)


@contextlib.contextmanager
def expiring_sas(root: Path) -> Iterator[ExpiringSasServer]:
    srv = ExpiringSasServer(root)
    srv.RequestHandlerClass = _SasHandler
    with _running(srv):
        yield srv


@contextlib.contextmanager
def _running(srv: RangeServer) -> Iterator[RangeServer]:
    """Serve an already built RangeServer (a subclass with its own handler) until the block ends."""
    t = threading.Thread(target=srv.serve_forever, daemon=True)
    t.start()
    try:
        yield srv
    finally:
        srv.shutdown()
        srv.server_close()
        t.join(timeout=5)


__all__ = ["EarthdataDataServer", "EarthdataLoginServer", "ExpiringSasServer", "earthdata", "expiring_sas", "serve"]
