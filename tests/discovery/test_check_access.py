"""``spectralearth check-access`` against local servers: the sources of a catalogs/ copy
(SPECTRALEARTH_CATALOGS) point at a small STAC search server whose one item links to a file
server - open, or behind the CAS-like DLR sign-on of tests/servers/dlr_auth.py - or at a closed
port. Each source answers one line: authorised, the missing or refused credential, or
unreachable; nothing is retried."""

from __future__ import annotations

import contextlib
import json
import shutil
import socket
import struct
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import pytest
import yaml
from servers import free_port
from servers.auth import earthdata, running
from servers.dlr_auth import dlr_cas
from servers.http_range import serve
from typer.testing import CliRunner

from spectralearth_data import credentials
from spectralearth_data.cli import app
from spectralearth_data.sources.access import check_access

REPO = Path(__file__).resolve().parents[2]
RGB = REPO / "tests" / "data" / "fixtures" / "geotiff" / "RGB.byte.tif"
USER, PASSWORD = "dlr-user", "Dlr-Access-Pa55-61c0"


class _Stac(ThreadingHTTPServer):
    daemon_threads = True

    def __init__(self, href: str):
        super().__init__(("127.0.0.1", 0), _StacHandler)
        self.href = href
        self.bodies: list[dict] = []

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.server_address[1]}"


class _StacHandler(BaseHTTPRequestHandler):
    server: _Stac

    def log_message(self, *a):
        pass

    def do_GET(self):  # a CMR granule search: one UMM-G record with a data link
        self.server.bodies.append({"GET": self.path})
        umm = {"RelatedUrls": [{"Type": "GET DATA", "URL": self.server.href}]}
        data = json.dumps({"hits": 1, "items": [{"meta": {"concept-id": "G1"}, "umm": umm}]}).encode()
        self.send_response(200 if self.path.startswith("/granules.umm_json") else 404)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        self.wfile.write(data)

    def do_POST(self):
        body = json.loads(self.rfile.read(int(self.headers.get("Content-Length") or 0)) or b"{}")
        self.server.bodies.append(body)
        item = {"type": "Feature", "stac_version": "1.0.0", "id": "x", "properties": {},
                "assets": {"thumbnail": {"href": self.server.href + ".png", "roles": ["thumbnail"]},
                           "image": {"href": self.server.href, "roles": ["data"]}}}
        data = json.dumps({"type": "FeatureCollection", "features": [item]}).encode()
        self.send_response(200 if self.path == "/search" else 404)
        self.send_header("Content-Type", "application/geo+json")
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        self.wfile.write(data)


@contextlib.contextmanager
def stac(href: str):
    with running(_Stac(href)) as srv:
        yield srv


@contextlib.contextmanager
def resetting():
    """A port that accepts each connection and resets it at once, counting the attempts."""
    sock = socket.socket()
    sock.bind(("127.0.0.1", 0))
    sock.listen(8)
    seen = {"n": 0}
    stop = threading.Event()

    def loop():
        sock.settimeout(0.1)
        while not stop.is_set():
            try:
                conn, _ = sock.accept()
            except OSError:
                continue
            seen["n"] += 1
            conn.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
            conn.close()

    t = threading.Thread(target=loop, daemon=True)
    t.start()
    try:
        yield f"http://127.0.0.1:{sock.getsockname()[1]}", seen
    finally:
        stop.set()
        t.join(timeout=5)
        sock.close()


@pytest.fixture()
def catalogs(tmp_path, monkeypatch):
    """A catalogs/ copy made current; ``point(name, url)`` sets a source's API root. No DLR login."""
    root = tmp_path / "catalogs"
    shutil.copytree(REPO / "catalogs", root)
    monkeypatch.setenv("SPECTRALEARTH_CATALOGS", str(root))
    for name in ("DLR_USERNAME", "DLR_PASSWORD"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("NETRC", str(tmp_path / "no-netrc"))
    credentials.forget_dlr_access()

    def point(**urls: str) -> None:
        doc = yaml.safe_load((root / "sources.yaml").read_text())
        for s in doc["sources"]:
            if s["name"] in urls:
                s["url"] = urls[s["name"]]
        (root / "sources.yaml").write_text(yaml.safe_dump(doc))

    yield point
    credentials.forget_dlr_access()


@pytest.fixture()
def www(tmp_path):
    root = tmp_path / "www"
    root.mkdir()
    shutil.copy(RGB, root / "a.tif")
    return root


def test_an_open_source_is_reachable_and_authorised(catalogs, www):
    with serve(www) as files, stac(f"{files.url}/a.tif") as api:
        catalogs(**{"earth-search": api.url})
        [got] = check_access(["earth-search"])
        assert api.bodies == [{"limit": 1, "collections": [api.bodies[0]["collections"][0]]}]  # one search
        assert files.range_requests["a.tif"] == 1  # one header read, of the data asset
    assert got.status == "ok" and got.line() == (f"earth-search: ok: reachable and authorised "
                                                 f"({files.url}/a.tif read, no credential needed)")


def test_dlr_missing_refused_and_authorised_logins(catalogs, www, monkeypatch):
    with dlr_cas(www, user=USER, password=PASSWORD) as (data, login), stac(f"{data.url}/a.tif") as api:
        catalogs(**{"dlr-geoservice": api.url})
        [missing] = check_access(["dlr-geoservice"])
        assert missing.status == "missing" and "set DLR_USERNAME and DLR_PASSWORD" in missing.detail
        assert login.posts == []  # nothing to send

        monkeypatch.setenv("DLR_USERNAME", USER)
        monkeypatch.setenv("DLR_PASSWORD", "Not-The-Pa55word-9")
        [refused] = check_access(["dlr-geoservice"])
        assert refused.status == "refused" and "$DLR_USERNAME/$DLR_PASSWORD" in refused.detail
        assert "Not-The-Pa55word-9" not in refused.line() and "\n" not in refused.line()

        monkeypatch.setenv("DLR_PASSWORD", PASSWORD)
        [ok] = check_access(["dlr-geoservice"])
        assert ok.status == "ok" and "cas login from $DLR_USERNAME/$DLR_PASSWORD" in ok.detail
        assert login.logins == 1
    assert PASSWORD not in ok.line() and not any(s in ok.line() for s in data.sessions)


def test_earthdata_missing_refused_and_authorised(catalogs, www, monkeypatch, tmp_path):
    token = "eyJ0eXAiOiJKV1QiLCJhbGciOiJSUzI1NiJ9.eyJ1aWQiOiJjaGVjay1hY2Nlc3MifQ.dGVzdA"
    for name in ("EARTHDATA_TOKEN", "EARTHDATA_USERNAME", "EARTHDATA_PASSWORD"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("HOME", str(tmp_path / "home"))
    with earthdata(www, token=token, user="u", password="p") as (data, login), \
            stac(f"{data.url}/a.tif") as cmr:
        monkeypatch.setattr(credentials, "EARTHDATA_LOGIN_HOST", login.netloc)
        catalogs(**{"earthdata-cmr": cmr.url})
        [missing] = check_access(["earthdata-cmr"])
        assert missing.status == "missing" and "set EARTHDATA_TOKEN" in missing.detail
        assert "short_name=EMITL2ARFL" in cmr.bodies[0]["GET"] and "page_size=1" in cmr.bodies[0]["GET"]
        monkeypatch.setenv("EARTHDATA_TOKEN", "not-" + token)
        [refused] = check_access(["earthdata-cmr"])
        assert refused.status == "refused" and "$EARTHDATA_TOKEN: HTTP 401" in refused.detail
        assert token not in refused.line()
        monkeypatch.setenv("EARTHDATA_TOKEN", token)
        [ok] = check_access(["earthdata-cmr"])
    assert ok.status == "ok" and ok.detail.endswith("read with $EARTHDATA_TOKEN)") and token not in ok.line()


def test_an_unreachable_host_answers_at_once_without_retrying(catalogs):
    closed = f"http://127.0.0.1:{free_port()}"
    with resetting() as (reset_url, attempts):
        catalogs(**{"planetary-computer": closed, "earthdata-cmr": reset_url})
        result = CliRunner().invoke(app, ["check-access", "--source", "planetary-computer",
                                          "--source", "earthdata-cmr"])
        assert attempts["n"] == 1  # the reset connection was not tried again
    lines = result.output.strip().splitlines()
    assert result.exit_code == 1, result.output
    port = closed.rsplit(":", 1)[1]
    assert lines == [
        f"planetary-computer: unreachable: 127.0.0.1:{port} (connection refused; not retried)",
        f"earthdata-cmr: unreachable: {reset_url.split('//')[1]} (connection reset; not retried)",
    ]


def test_every_configured_source_gets_one_line_and_an_unknown_one_is_an_error(catalogs):
    closed = f"http://127.0.0.1:{free_port()}"
    catalogs(**{n: closed for n in ("planetary-computer", "earth-search", "dlr-geoservice", "earthdata-cmr")})
    result = CliRunner().invoke(app, ["check-access"])
    names = [line.split(":", 1)[0] for line in result.output.strip().splitlines()]
    assert names == ["planetary-computer", "earth-search", "dlr-geoservice", "earthdata-cmr", "local", "demo"]
    bad = CliRunner().invoke(app, ["check-access", "--source", "nope"])
    assert bad.exit_code != 0 and "unknown source 'nope'" in str(bad.exception or bad.output)
