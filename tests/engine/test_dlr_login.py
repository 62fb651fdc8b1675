"""DLR download logins at read time (``auth: dlr``), through the real COG reader (GDAL /vsicurl),
against local servers: one that takes HTTP Basic auth (what GDAL sends from ~/.netrc), and one
behind a CAS-like single sign-on whose session cookies are handed to GDAL (tests/servers/dlr_auth.py).

A login comes from ~/.netrc ($NETRC) or $DLR_USERNAME/$DLR_PASSWORD; the first method that serves
the file is used; without a login, or when every one is refused, the error is one line naming what
to set; neither the password nor a session cookie reaches an error or a log record."""

from __future__ import annotations

import logging
import shutil
from pathlib import Path

import numpy as np
import pytest
import rasterio
from affine import Affine
from odc.geo.geobox import GeoBox
from servers.dlr_auth import dlr_basic, dlr_cas

from spectralearth_data import credentials
from spectralearth_data.credentials import AccessMissing, AccessRefused, DLR_HOWTO
from spectralearth_data.engine.readers.cog import read_onto

FIXTURES = Path(__file__).resolve().parents[1] / "data" / "fixtures"
RGB = FIXTURES / "geotiff" / "RGB.byte.tif"  # EPSG:32618, 791 x 718, 3 bands
USER, PASSWORD = "dlr-user", "Dlr-Pa55word-93b1f"
SOURCE = "dlr-geoservice"  # auth: dlr in catalogs/sources.yaml


def _geobox() -> GeoBox:
    with rasterio.open(RGB) as ds:
        t = ds.transform
    return GeoBox((64, 64), Affine(t.a, 0, t.c + t.a * 100, 0, t.e, t.f + t.e * 50), "EPSG:32618")


def _want() -> np.ndarray:
    with rasterio.open(RGB) as ds:
        return ds.read(window=rasterio.windows.Window(100, 50, 64, 64))


def _read(href: str) -> np.ndarray:
    return read_onto(href, _geobox(), dtype="uint8", nodata=0, source=SOURCE)


@pytest.fixture()
def www(tmp_path, monkeypatch):
    """A folder with the COG, and no DLR login anywhere (no variables, no netrc)."""
    for name in (credentials.DLR_USERNAME_ENV, credentials.DLR_PASSWORD_ENV):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("NETRC", str(tmp_path / "no-such-netrc"))
    monkeypatch.setenv("HOME", str(tmp_path / "home"))
    credentials.forget_dlr_access()
    root = tmp_path / "www"
    root.mkdir()
    shutil.copy(RGB, root / "ENMAP01-SPECTRAL_IMAGE_COG.tif")
    yield root
    credentials.forget_dlr_access()


@pytest.fixture()
def logs():
    """Every log record of this test, at DEBUG, as text (rasterio, GDAL, urllib3, ours)."""
    records: list[str] = []

    class Keep(logging.Handler):
        def emit(self, record):
            records.append(record.getMessage())

    root = logging.getLogger()
    handler, old = Keep(logging.DEBUG), root.level
    root.addHandler(handler)
    root.setLevel(logging.DEBUG)
    yield records
    root.removeHandler(handler)
    root.setLevel(old)


def _netrc(tmp_path, monkeypatch, user=USER, password=PASSWORD) -> None:
    path = tmp_path / "netrc"
    path.write_text(f"machine 127.0.0.1 login {user} password {password}\n")
    path.chmod(0o600)
    monkeypatch.setenv("NETRC", str(path))


def test_a_netrc_login_reads_through_gdal_with_basic_auth(www, tmp_path, monkeypatch, logs):
    _netrc(tmp_path, monkeypatch)
    with dlr_basic(www, user=USER, password=PASSWORD) as srv:
        href = f"{srv.url}/ENMAP01-SPECTRAL_IMAGE_COG.tif"
        np.testing.assert_array_equal(_read(href), _want())
        assert srv.range_requests["ENMAP01-SPECTRAL_IMAGE_COG.tif"] >= 1  # GDAL itself read ranges
        access = credentials.dlr_access(href)
        assert (access.method, access.login) == ("basic", f"{tmp_path / 'netrc'} (machine 127.0.0.1)")
        assert PASSWORD not in repr(access)
    assert not any(PASSWORD in r for r in logs)


def test_the_cas_sign_on_hands_its_session_cookie_to_gdal(www, monkeypatch, logs):
    monkeypatch.setenv("DLR_USERNAME", USER)
    monkeypatch.setenv("DLR_PASSWORD", PASSWORD)
    with dlr_cas(www, user=USER, password=PASSWORD) as (data, login):
        href = f"{data.url}/ENMAP01-SPECTRAL_IMAGE_COG.tif"
        np.testing.assert_array_equal(_read(href), _want())
        assert data.refused_authorization == 1  # Basic was tried first, and refused
        assert login.logins == 1  # one login for every read of the host
        np.testing.assert_array_equal(_read(href), _want())
        assert login.logins == 1
        # only the login form's own fields were posted, never the hand-off form's
        assert login.posts[-1].keys() == {"username", "password", "execution", "_eventId"}
        # GDAL read with the session cookie: every cookie header the data server saw after
        # the login carries it, and the file was served in ranges
        session = next(iter(data.sessions))
        assert any(f"dlr_session={session}" in c for c in data.cookies_seen)
        assert data.range_requests["ENMAP01-SPECTRAL_IMAGE_COG.tif"] >= 2
        assert credentials.dlr_access(href).method == "cas"
    text = "\n".join(logs)
    assert PASSWORD not in text and session not in text


def test_without_a_login_the_error_is_one_line_naming_what_to_set(www):
    with dlr_basic(www, user=USER, password=PASSWORD) as srv:
        with pytest.raises(AccessMissing) as err:
            _read(f"{srv.url}/ENMAP01-SPECTRAL_IMAGE_COG.tif")
        assert srv.requests["(refused)"] == 0  # nothing sent: no login to send
    msg = str(err.value)
    assert "\n" not in msg and msg.endswith(DLR_HOWTO)
    assert "DLR_USERNAME and DLR_PASSWORD" in msg and "machine download.geoservice.dlr.de" in msg


def test_a_refused_login_names_what_was_tried_without_the_secret(www, monkeypatch, logs):
    monkeypatch.setenv("DLR_USERNAME", USER)
    monkeypatch.setenv("DLR_PASSWORD", "Wrong-Pa55word-77")
    with dlr_cas(www, user=USER, password=PASSWORD) as (data, login):
        with pytest.raises(AccessRefused) as err:
            _read(f"{data.url}/ENMAP01-SPECTRAL_IMAGE_COG.tif")
        assert login.refused == 1 and not data.sessions
    msg = str(err.value)
    assert "\n" not in msg and "$DLR_USERNAME/$DLR_PASSWORD" in msg and "Basic: HTTP 403" in msg
    assert "Wrong-Pa55word-77" not in msg and PASSWORD not in msg
    assert not any("Wrong-Pa55word-77" in r for r in logs)


def test_redact_takes_out_the_dlr_secrets_obtained_at_read_time(www, monkeypatch):
    monkeypatch.setenv("DLR_USERNAME", USER)
    monkeypatch.setenv("DLR_PASSWORD", PASSWORD)
    with dlr_cas(www, user=USER, password=PASSWORD) as (data, _):
        options = credentials.gdal_options(f"{data.url}/ENMAP01-SPECTRAL_IMAGE_COG.tif", SOURCE)
    cookie = options["GDAL_HTTP_COOKIE"]
    assert "dlr_session=" in cookie
    shown = credentials.redact(f"GDAL_HTTP_COOKIE={cookie} password {PASSWORD}")
    assert cookie.split("dlr_session=")[1].split(";")[0] not in shown and PASSWORD not in shown
    assert PASSWORD in credentials.env_secrets()  # DLR_PASSWORD is a secret variable


@pytest.mark.parametrize("way", ["basic", "cas"])
def test_requests_based_reads_use_the_same_dlr_login(www, monkeypatch, way):
    """open_http (readers that need a Python file object) sends the login as HTTP headers."""
    from spectralearth_data.engine.readers.httpfile import open_http

    monkeypatch.setenv("DLR_USERNAME", USER)
    monkeypatch.setenv("DLR_PASSWORD", PASSWORD)
    servers = dlr_basic(www, user=USER, password=PASSWORD) if way == "basic" else dlr_cas(www, user=USER, password=PASSWORD)
    with servers as srv:
        data = srv if way == "basic" else srv[0]
        with open_http(f"{data.url}/ENMAP01-SPECTRAL_IMAGE_COG.tif", SOURCE) as fh:
            assert fh.read() == RGB.read_bytes()
        assert credentials.dlr_access(f"{data.url}/x.tif").method == way


def test_an_expired_sign_on_session_logs_in_again_once(www, monkeypatch):
    monkeypatch.setenv("DLR_USERNAME", USER)
    monkeypatch.setenv("DLR_PASSWORD", PASSWORD)
    shutil.copy(www / "ENMAP01-SPECTRAL_IMAGE_COG.tif", www / "ENMAP02-SPECTRAL_IMAGE_COG.tif")
    with dlr_cas(www, user=USER, password=PASSWORD) as (data, login):
        np.testing.assert_array_equal(_read(f"{data.url}/ENMAP01-SPECTRAL_IMAGE_COG.tif"), _want())
        data.sessions.clear()  # the server forgets the session: its cookie now leads to the login page
        np.testing.assert_array_equal(_read(f"{data.url}/ENMAP02-SPECTRAL_IMAGE_COG.tif"), _want())
        assert login.logins == 2
