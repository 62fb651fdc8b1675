"""Planetary Computer SAS tokens at read time, against local servers: a file server that accepts
a signature only until it "expires" (then 403), and a SAS token API in place of the real one
(PC_SDK_SAS_URL) to check the planetary_computer library's own token cache is bypassed."""

from __future__ import annotations

import functools
import http.server
import json
import shutil
import threading
from datetime import UTC, datetime, timedelta
from pathlib import Path

import numpy as np
import pytest
import rasterio
from affine import Affine
from odc.geo.geobox import GeoBox
from servers.auth import expiring_sas

from spectralearth_data import credentials
from spectralearth_data.credentials import ReadAuth, SasSigner, SasToken
from spectralearth_data.engine.readers.cog import keep_open, read_onto
from spectralearth_data.errors import InputDataError, SourceError

FIXTURES = Path(__file__).resolve().parents[1] / "data" / "fixtures"
RGB = FIXTURES / "geotiff" / "RGB.byte.tif"  # EPSG:32618, 791 x 718, 3 bands
PC_KEY = "0f1e2d3c4b5a69788796a5b4c3d2e1f0"


class Clock:
    def __init__(self):
        self.now = datetime(2026, 1, 1, tzinfo=UTC)

    def __call__(self):
        return self.now


def _geobox(row: int) -> GeoBox:
    """64 x 64 pixels of RGB.byte.tif starting at (col 100, ``row``): the aligned read path."""
    with rasterio.open(RGB) as ds:
        t = ds.transform
    return GeoBox((64, 64), Affine(t.a, 0, t.c + t.a * 100, 0, t.e, t.f + t.e * row), "EPSG:32618")


def _local(row: int) -> np.ndarray:
    with rasterio.open(RGB) as ds:
        return ds.read(window=rasterio.windows.Window(100, row, 64, 64))


@pytest.fixture()
def sas(tmp_path, monkeypatch):
    """(server, signer, clock, issued): the signer issues a new signature per token request and
    the server accepts it until the test revokes it; installed for ``planetary-computer``."""
    www = tmp_path / "www"
    www.mkdir()
    shutil.copy(RGB, www / "rgb.tif")
    clock, issued = Clock(), []
    with expiring_sas(www) as srv:
        def provider(account, container):
            sig = f"tok{len(issued) + 1}"
            issued.append((account, container, sig))
            srv.valid.add(sig)
            return SasToken(f"sv=2024-08-04&sr=c&sp=rl&se=x&sig={sig}", clock.now + timedelta(minutes=45))

        def locate(href):
            return ("acct", "cont") if href.startswith(srv.url) else None

        signer = SasSigner(provider, margin=timedelta(minutes=5), clock=clock, locate=locate)
        monkeypatch.setitem(credentials.AUTHS, "planetary-computer",
                            ReadAuth(sign=signer.sign, resign=functools.partial(signer.sign, fresh=True)))
        yield srv, signer, clock, issued


def test_every_open_signs_again_and_refreshes_within_the_margin(sas):
    srv, _signer, clock, issued = sas
    href = f"{srv.url}/rgb.tif"
    np.testing.assert_array_equal(read_onto(href, _geobox(0), dtype="uint8", nodata=0, source="planetary-computer"), _local(0))
    clock.now += timedelta(minutes=30)  # 15 minutes left: the cached token is still used
    read_onto(href, _geobox(64), dtype="uint8", nodata=0, source="planetary-computer")
    assert [s for *_, s in issued] == ["tok1"]
    clock.now += timedelta(minutes=11)  # 4 minutes left < 5 minute margin: a new token before the open
    srv.valid.discard("tok1")
    read_onto(href, _geobox(128), dtype="uint8", nodata=0, source="planetary-computer")
    assert [s for *_, s in issued] == ["tok1", "tok2"] and srv.refused == 0


def test_a_refused_signature_is_renewed_once_and_the_raster_reopened(sas):
    """The server stops accepting the token before our clock says so (revoked, clock skew): the
    403 triggers one re-sign with a new token and a reopen."""
    srv, _signer, _clock, issued = sas
    href = f"{srv.url}/rgb.tif"
    read_onto(href, _geobox(0), dtype="uint8", nodata=0, source="planetary-computer")
    srv.valid.clear()
    got = read_onto(href, _geobox(64), dtype="uint8", nodata=0, source="planetary-computer")
    np.testing.assert_array_equal(got, _local(64))
    assert [s for *_, s in issued] == ["tok1", "tok2"] and srv.refused >= 1


def test_a_long_held_dataset_reopens_when_its_token_expires(sas):
    """Inside keep_open (a tiling task) the raster stays open; when its token expires mid-task
    the next read of new blocks gets 403, and the dataset is reopened with a new token."""
    srv, _signer, _clock, issued = sas
    href = f"{srv.url}/rgb.tif"
    with keep_open():
        read_onto(href, _geobox(0), dtype="uint8", nodata=0, source="planetary-computer")
        srv.valid.clear()  # expired on the server while the dataset is held
        got = read_onto(href, _geobox(600), dtype="uint8", nodata=0, source="planetary-computer")
        again = read_onto(href, _geobox(300), dtype="uint8", nodata=0, source="planetary-computer")
    np.testing.assert_array_equal(got, _local(600))
    np.testing.assert_array_equal(again, _local(300))
    assert [s for *_, s in issued] == ["tok1", "tok2"]


def test_a_signature_refused_again_after_renewal_is_an_error_without_the_signature(sas):
    srv, _signer, _clock, issued = sas
    class Never(set):
        def add(self, sig):  # the server accepts no token at all
            pass

    srv.valid = Never()
    href = f"{srv.url}/rgb.tif"
    with pytest.raises(InputDataError) as err:
        read_onto(href, _geobox(0), dtype="uint8", nodata=0, source="planetary-computer")
    assert len(issued) == 2  # signed, refused, re-signed once, refused: no loop
    msg = str(err.value)
    assert href in msg and "sig=" not in msg and "tok" not in msg, msg


def test_unsigned_reads_are_not_retried_on_403(tmp_path):
    """A 403 on an href nothing signs is reported at once (there is no token to renew)."""
    from servers.http_range import serve

    (tmp_path / "w").mkdir()
    shutil.copy(RGB, tmp_path / "w" / "rgb.tif")
    with serve(tmp_path / "w") as srv:
        srv.faults["rgb.tif"] = 403
        with pytest.raises(InputDataError, match="rgb.tif"):
            read_onto(f"{srv.url}/rgb.tif", _geobox(0), dtype="uint8", nodata=0, source="earth-search")
        assert srv.requests["rgb.tif"] >= 1
    assert credentials.resign_href("earth-search", f"{srv.url}/rgb.tif") is None


# -- the planetary_computer library's token cache ---------------------------------------------------


class _TokenApi(http.server.ThreadingHTTPServer):
    daemon_threads = True

    def __init__(self):
        super().__init__(("127.0.0.1", 0), _TokenHandler)
        self.calls: list[tuple[str, str | None]] = []
        self.status = 200


class _TokenHandler(http.server.BaseHTTPRequestHandler):
    server: _TokenApi

    def log_message(self, *args):
        pass

    def do_GET(self):
        srv = self.server
        srv.calls.append((self.path, self.headers.get("Ocp-Apim-Subscription-Key")))
        if srv.status != 200:
            self.send_error(srv.status)
            return
        expiry = (datetime.now(UTC) + timedelta(minutes=45)).strftime("%Y-%m-%dT%H:%M:%SZ")
        body = json.dumps({"msft:expiry": expiry, "token": f"sv=2024&sig=fresh{len(srv.calls)}"}).encode()
        self.send_response(200)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)


@pytest.fixture()
def token_api(monkeypatch):
    """A local SAS token API the planetary_computer library is pointed at (PC_SDK_SAS_URL)."""
    from planetary_computer import sas
    from planetary_computer.settings import Settings

    srv = _TokenApi()
    t = threading.Thread(target=srv.serve_forever, daemon=True)
    t.start()
    monkeypatch.setenv("PC_SDK_SAS_URL", f"http://127.0.0.1:{srv.server_address[1]}/token")
    monkeypatch.setenv("PC_SDK_SUBSCRIPTION_KEY", PC_KEY)
    Settings.get.cache_clear()
    saved = dict(sas.TOKEN_CACHE)
    sas.TOKEN_CACHE.clear()
    try:
        yield srv
    finally:
        sas.TOKEN_CACHE.clear()
        sas.TOKEN_CACHE.update(saved)
        Settings.get.cache_clear()
        srv.shutdown()
        srv.server_close()
        t.join(timeout=5)


def test_the_library_cache_does_not_hand_back_a_token_inside_our_margin(token_api):
    """planetary_computer.sas.get_token returns its cached token until under 60 s remain; with it
    alone a refresh at our 5-minute margin would get the same, nearly expired token back."""
    from planetary_computer import sas

    url = f"{sas.Settings.get().sas_url}/sentinel2l2a01/sentinel2-l2"
    sas.TOKEN_CACHE[url] = sas.SASToken(token="sv=2024&sig=stale", expiry=datetime.now(UTC) + timedelta(minutes=2))
    assert sas.get_token("sentinel2l2a01", "sentinel2-l2").token == "sv=2024&sig=stale"  # the library alone
    blob = "https://sentinel2l2a01.blob.core.windows.net/sentinel2-l2/01/C/CV/B04.tif"
    signer = SasSigner()  # the real provider, against the local token API
    assert signer.sign(blob) == f"{blob}?sv=2024&sig=fresh1"
    assert token_api.calls == [("/token/sentinel2l2a01/sentinel2-l2", PC_KEY)]  # the key is sent
    assert signer.sign(blob).endswith("sig=fresh1")  # and then cached by us for 45 minutes
    assert signer.sign(blob, fresh=True).endswith("sig=fresh2")


def test_a_container_that_needs_an_account_says_to_set_the_subscription_key(token_api):
    token_api.status = 401
    with pytest.raises(SourceError) as err:
        credentials.planetary_computer_token("sentinel1euwestrtc", "sentinel1-grd-rtc")
    msg = str(err.value)
    assert "PC_SDK_SUBSCRIPTION_KEY" in msg and "msft:requires_account" in msg and "HTTP 401" in msg
    assert PC_KEY not in msg


def test_pc_blob_hrefs_are_signed_by_host_whatever_the_source(monkeypatch):
    calls = []
    monkeypatch.setattr(credentials, "_sas_signer", SasSigner(
        lambda a, c: calls.append((a, c)) or SasToken("sv=1&sig=x", datetime.now(UTC) + timedelta(hours=1))))
    rtc = "https://sentinel1euwestrtc.blob.core.windows.net/sentinel1-grd-rtc/GRD/2024/x/vv.tif"
    for source in ("local:/copied/catalog.json", "earth-search", "demo", None):
        assert credentials.auth_for(source, rtc) == "planetary-computer"
        assert credentials.sign_href(source, rtc) == f"{rtc}?sv=1&sig=x"
    assert credentials.resign_href("local:/copied/catalog.json", rtc) == f"{rtc}?sv=1&sig=x"
    assert calls == [("sentinel1euwestrtc", "sentinel1-grd-rtc")] * 2  # cached, then renewed once
    assert credentials.sign_href("local:/c.json", "https://example.org/a.tif") == "https://example.org/a.tif"
