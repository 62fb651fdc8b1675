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


# -- pieces shared with servers.dlr_auth -----------------------------------------------------------


def _cookies(header: str) -> dict[str, str]:
    """The name=value pairs of a ``Cookie`` header."""
    return dict(c.strip().split("=", 1) for c in header.split(";") if "=" in c)


def _redirect(handler: http.server.BaseHTTPRequestHandler, where: str, cookie: str | None = None) -> None:
    """An empty 302 to ``where``, setting ``cookie`` when given."""
    handler.send_response(302)
    if cookie:
        handler.send_header("Set-Cookie", cookie)
    handler.send_header("Location", where)
    handler.send_header("Content-Length", "0")
    handler.end_headers()


def _ask_basic(handler: http.server.BaseHTTPRequestHandler, realm: str) -> None:
    """An empty 401 that asks for HTTP Basic credentials."""
    handler.send_response(401)
    handler.send_header("WWW-Authenticate", f'Basic realm="{realm}"')
    handler.send_header("Content-Length", "0")
    handler.end_headers()


def _noted(handler: http.server.BaseHTTPRequestHandler, header: str, seen: Counter[str]):
    """Count the request's ``header`` (when present) in ``seen``; return (server, split path, header value)."""
    srv = handler.server
    value = handler.headers.get(header, "")
    with srv.lock:
        if value:
            seen[value] += 1
    return srv, urlsplit(handler.path), value


class _LoginServer(http.server.ThreadingHTTPServer):
    """A login server on a free local port that hands out one-time codes (see :meth:`_take`)."""

    daemon_threads = True

    def __init__(self, handler: type[http.server.BaseHTTPRequestHandler], user: str, password: str):
        super().__init__(("127.0.0.1", 0), handler)
        self.user, self.password = user, password
        self.logins = 0
        self.refused = 0
        self.lock = threading.Lock()

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.server_address[1]}"

    def _take(self, pool: set[str], code: str) -> bool:
        """Remove ``code`` from ``pool``; whether it was there (each code works once)."""
        with self.lock:
            if code in pool:
                pool.discard(code)
                return True
            return False


class _QuietHandler(http.server.BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"

    def log_message(self, *args) -> None:
        pass


@contextlib.contextmanager
def _login_pair(data, handler: type[_Handler], login: _LoginServer) -> Iterator[tuple]:
    """Serve ``login`` and ``data`` (with ``handler``, pointed at ``login``) until the block ends."""
    data.RequestHandlerClass = handler
    data.login = login
    with running(login), running(data):
        yield data, login


# -- Earthdata Login -------------------------------------------------------------------------------


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
        srv, parts, auth = _noted(self, "Authorization", self.server.seen_auth)
        if parts.path == "/urs_redirect":
            q = parse_qs(parts.query)
            code, state = q.get("code", [""])[0], q.get("state", ["/"])[0]
            if srv.login is None or not srv.login.redeem(code):
                self.send_error(401, "bad code")
                return
            cookie = secrets.token_hex(8)
            with srv.lock:
                srv.sessions.add(cookie)
            _redirect(self, state, f"daac_session={cookie}; Path=/; HttpOnly")
            return
        cookies = _cookies(self.headers.get("Cookie", ""))
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
        _redirect(self, f"{srv.login.url}/oauth/authorize?client_id=daac&response_type=code"
                        f"&redirect_uri={back}&state={quote(parts.path, safe='')}")


class EarthdataLoginServer(_LoginServer):
    """The Earthdata Login side: Basic auth, then a redirect back with a one-time code."""

    def __init__(self, user: str, password: str):
        super().__init__(_LoginHandler, user, password)
        self.codes: set[str] = set()
        self.seen_auth: Counter[str] = Counter()

    @property
    def netloc(self) -> str:
        return f"127.0.0.1:{self.server_address[1]}"

    def redeem(self, code: str) -> bool:
        return self._take(self.codes, code)


class _LoginHandler(_QuietHandler):
    server: EarthdataLoginServer

    def do_GET(self) -> None:
        srv, parts, auth = _noted(self, "Authorization", self.server.seen_auth)
        if parts.path != "/oauth/authorize":
            self.send_error(404)
            return
        want = "Basic " + base64.b64encode(f"{srv.user}:{srv.password}".encode()).decode()
        if auth != want:
            with srv.lock:
                srv.refused += 1
            _ask_basic(self, "Please enter your Earthdata Login credentials")
            return
        q = parse_qs(parts.query)
        code = secrets.token_hex(8)
        with srv.lock:
            srv.codes.add(code)
            srv.logins += 1
        back = q["redirect_uri"][0]
        state = quote(q.get("state", ["/"])[0], safe="/")
        _redirect(self, f"{back}?code={code}&state={state}")


@contextlib.contextmanager
def earthdata(root: Path, *, token: str, user: str, password: str) -> Iterator[tuple[EarthdataDataServer, EarthdataLoginServer]]:
    """A (data server, login server) pair serving ``root`` behind Earthdata-style login."""
    with _login_pair(EarthdataDataServer(root, token), _DataHandler, EarthdataLoginServer(user, password)) as pair:
        yield pair


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
    with running(srv):
        yield srv


@contextlib.contextmanager
def running(srv: http.server.HTTPServer) -> Iterator[http.server.HTTPServer]:
    """Serve an already built server (e.g. a RangeServer subclass with its own handler) until the block ends."""
    t = threading.Thread(target=srv.serve_forever, daemon=True)
    t.start()
    try:
        yield srv
    finally:
        srv.shutdown()
        srv.server_close()
        t.join(timeout=5)


__all__ = ["EarthdataDataServer", "EarthdataLoginServer", "ExpiringSasServer", "earthdata", "expiring_sas", "running",
           "serve"]
