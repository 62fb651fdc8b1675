"""Local servers that let a read in the two ways published clients say DLR's file server does.

* :func:`dlr_basic` - a file server that serves a request carrying the right HTTP Basic
  ``Authorization`` (401 with ``WWW-Authenticate: Basic`` otherwise): what GDAL sends from a
  ``~/.netrc`` entry.
* :func:`dlr_cas` - a file server behind a CAS-like single sign-on. A request without the session
  cookie is redirected (302) to the login server's ``/cas/login?service=<callback>``; a request
  with an ``Authorization`` header is refused with 403 (no ``WWW-Authenticate``). The login page
  carries two forms: a hand-off form without a password (whose fields must not be sent with the
  login) and the login form (hidden one-time ``execution``, ``_eventId``, ``username``,
  ``password``); the page sets an ``XSRF-TOKEN`` cookie that must come back as ``X-XSRF-TOKEN``.
  A correct POST redirects to the callback with a one-time ``ticket``; the data server turns it
  into a ``dlr_session`` cookie and redirects to the file, and then serves it for that cookie.

Both record what they saw (Authorization headers, cookies, login posts), so tests can check
where each secret went and how many requests were made.
"""

from __future__ import annotations

import base64
import contextlib
import secrets
from collections import Counter
from collections.abc import Iterator
from pathlib import Path
from urllib.parse import parse_qs, quote, urlsplit

from servers.auth import _ask_basic, _cookies, _login_pair, _LoginServer, _noted, _QuietHandler, _redirect, running
from servers.http_range import RangeServer, _Handler


# -- Basic -----------------------------------------------------------------------------------------


class BasicFileServer(RangeServer):
    def __init__(self, root: Path, user: str, password: str):
        super().__init__(root)
        self.want = "Basic " + base64.b64encode(f"{user}:{password}".encode()).decode()
        self.refused = 0


class _BasicHandler(_Handler):
    server: BasicFileServer

    def _serve(self, body: bool) -> None:
        if self.headers.get("Authorization", "") != self.server.want:
            with self.server.lock:
                self.server.refused += 1
                self.server.requests["(refused)"] += 1
            _ask_basic(self, "download")
            return
        super()._serve(body)


@contextlib.contextmanager
def dlr_basic(root: Path, *, user: str, password: str) -> Iterator[BasicFileServer]:
    srv = BasicFileServer(root, user, password)
    srv.RequestHandlerClass = _BasicHandler
    with running(srv):
        yield srv


# -- CAS single sign-on ----------------------------------------------------------------------------


class CasDataServer(RangeServer):
    def __init__(self, root: Path):
        super().__init__(root)
        self.login: CasLoginServer | None = None
        self.sessions: set[str] = set()
        self.cookies_seen: Counter[str] = Counter()
        self.redirects_to_login = 0
        self.refused_authorization = 0


class _CasDataHandler(_Handler):
    server: CasDataServer

    def _serve(self, body: bool) -> None:
        srv, parts, cookie = _noted(self, "Cookie", self.server.cookies_seen)
        if parts.path == "/cas-callback":
            q = parse_qs(parts.query)
            ticket, back = q.get("ticket", [""])[0], q.get("back", ["/"])[0]
            assert srv.login is not None
            if not srv.login.redeem(ticket):
                self.send_error(401, "bad ticket")
                return
            session = secrets.token_hex(12)
            with srv.lock:
                srv.sessions.add(session)
            _redirect(self, back, f"dlr_session={session}; Path=/; HttpOnly")
            return
        if self.headers.get("Authorization"):
            with srv.lock:
                srv.refused_authorization += 1
            self.send_error(403, "Forbidden")
            return
        if _cookies(cookie).get("dlr_session") in srv.sessions:
            super()._serve(body)
            return
        assert srv.login is not None
        with srv.lock:
            srv.redirects_to_login += 1
        service = quote(f"{srv.url}/cas-callback?back={quote(parts.path, safe='')}", safe="")
        _redirect(self, f"{srv.login.url}/cas/login?service={service}")


class CasLoginServer(_LoginServer):
    def __init__(self, user: str, password: str):
        super().__init__(_CasLoginHandler, user, password)
        self.executions: set[str] = set()
        self.xsrf: set[str] = set()
        self.tickets: set[str] = set()
        self.posts: list[dict[str, str]] = []  # the fields of every login post (password blanked)

    def redeem(self, ticket: str) -> bool:
        return self._take(self.tickets, ticket)


_PAGE = """<!DOCTYPE html><html><head><title>EOC Single Sign-On</title></head><body>
<h1>Login</h1>
<form id="delegate" method="post" action="/cas/clientredirect">
  <input type="hidden" name="client_name" value="eolab"><input type="hidden" name="_eventId" value="delegate">
</form>
<form id="fm1" method="post" action="">
  <input type="text" name="username" autocomplete="off">
  <input type="password" name="password">
  <input type="hidden" name="execution" value="{execution}">
  <input type="hidden" name="_eventId" value="submit">
  <input type="submit" name="submit" value="LOGIN">
</form>{message}
</body></html>"""


class _CasLoginHandler(_QuietHandler):
    server: CasLoginServer

    def _page(self, status: int, message: str = "") -> None:
        execution = secrets.token_hex(16)
        xsrf = secrets.token_hex(8)
        with self.server.lock:
            self.server.executions.add(execution)
            self.server.xsrf.add(xsrf)
        data = _PAGE.format(execution=execution, message=message).encode()
        self.send_response(status)
        self.send_header("Content-Type", "text/html;charset=UTF-8")
        self.send_header("Set-Cookie", f"XSRF-TOKEN={xsrf}; Path=/")
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        self.wfile.write(data)

    def do_GET(self) -> None:
        if urlsplit(self.path).path != "/cas/login":
            self.send_error(404)
            return
        self._page(200)

    def do_POST(self) -> None:
        srv = self.server
        parts = urlsplit(self.path)
        length = int(self.headers.get("Content-Length") or 0)
        fields = {k: v[0] for k, v in parse_qs(self.rfile.read(length).decode(), keep_blank_values=True).items()}
        with srv.lock:
            srv.posts.append({k: ("***" if k == "password" else v) for k, v in fields.items()})
        service = parse_qs(parts.query).get("service", [""])[0]
        xsrf = _cookies(self.headers.get("Cookie", "")).get("XSRF-TOKEN")
        with srv.lock:
            fresh = fields.get("execution") in srv.executions
            srv.executions.discard(fields.get("execution", ""))
            xsrf_ok = xsrf in srv.xsrf and self.headers.get("X-XSRF-TOKEN") == xsrf
        ok = (parts.path == "/cas/login" and service and fresh and xsrf_ok and fields.get("_eventId") == "submit"
              and fields.get("username") == srv.user and fields.get("password") == srv.password)
        if not ok:
            with srv.lock:
                srv.refused += 1
            self._page(401, "<p>Authentication attempt has failed.</p>")
            return
        ticket = "ST-" + secrets.token_hex(10)
        with srv.lock:
            srv.tickets.add(ticket)
            srv.logins += 1
        sep = "&" if "?" in service else "?"
        _redirect(self, f"{service}{sep}ticket={ticket}", f"TGC={secrets.token_hex(10)}; Path=/cas")


@contextlib.contextmanager
def dlr_cas(root: Path, *, user: str, password: str) -> Iterator[tuple[CasDataServer, CasLoginServer]]:
    """A (data server, login server) pair serving ``root`` behind the CAS-like sign-on."""
    with _login_pair(CasDataServer(root), _CasDataHandler, CasLoginServer(user, password)) as pair:
        yield pair


__all__ = ["BasicFileServer", "CasDataServer", "CasLoginServer", "dlr_basic", "dlr_cas"]
