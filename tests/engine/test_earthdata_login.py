"""Earthdata Login at read time against local servers that log in like a DAAC: a data server that
redirects to a login server wanting Basic auth (which redirects back with a code the data server
turns into a cookie), and that also takes a bearer token (tests/servers/auth.py).

Every set-up a user may have is used - $EARTHDATA_TOKEN, earthaccess's login, ~/.netrc ($NETRC),
$EARTHDATA_USERNAME/$EARTHDATA_PASSWORD - the first one the server accepts wins, a password only
ever goes to the login host, and a failure says what to set without showing any secret."""

from __future__ import annotations

import base64
from pathlib import Path

import h5py
import numpy as np
import pytest
from servers.auth import earthdata

from spectralearth_data import credentials
from spectralearth_data.engine.readers import SceneRef, read_scene
from spectralearth_data.engine.readers.httpfile import LoginRefused, open_http
from spectralearth_data.errors import InputDataError

from .test_emit import emit_to_serve

TOKEN = "eyJ0eXAiOiJKV1QiLCJhbGciOiJSUzI1NiJ9.eyJ1aWQiOiJlZGwtdGVzdCJ9.ZWFydGhkYXRhLXRlc3Q"
USER, PASSWORD = "edl-user", "s3cr3t-Edl-Pa55word"
BASIC = "Basic " + base64.b64encode(f"{USER}:{PASSWORD}".encode()).decode()
SOURCE = "earthdata-cmr"  # auth: earthdata in catalogs/sources.yaml


@pytest.fixture()
def clean_env(monkeypatch, tmp_path):
    """No Earthdata set-up at all: no variables, an empty home, no earthaccess login."""
    for name in ("EARTHDATA_TOKEN", "EARTHDATA_USERNAME", "EARTHDATA_PASSWORD"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("NETRC", str(tmp_path / "no-such-netrc"))
    monkeypatch.setenv("HOME", str(tmp_path / "home"))
    import earthaccess

    monkeypatch.setattr(earthaccess, "_auth", earthaccess.Auth())  # what earthaccess.__auth__ returns


@pytest.fixture()
def daac(tmp_path, monkeypatch, clean_env):
    """(data server, login server, file name, file bytes) with the login host pointed at the
    local login server."""
    www = tmp_path / "www"
    www.mkdir()
    with h5py.File(www / "granule.h5", "w") as f:
        f["x"] = np.arange(3_000_000, dtype=np.float32).reshape(1000, 3000)  # 12 MB: several ranges
    with earthdata(www, token=TOKEN, user=USER, password=PASSWORD) as (data, login):
        monkeypatch.setattr(credentials, "EARTHDATA_LOGIN_HOST", login.netloc)
        yield data, login, "granule.h5"


def _netrc(tmp_path, monkeypatch, user=USER, password=PASSWORD) -> Path:
    path = tmp_path / "netrc"
    path.write_text(f"machine 127.0.0.1\n  login {user}\n  password {password}\n")
    path.chmod(0o600)
    monkeypatch.setenv("NETRC", str(path))
    return path


def _read_all(data, name) -> np.ndarray:
    with open_http(f"{data.url}/{name}", SOURCE) as fh, h5py.File(fh, "r") as f:
        return f["x"][:]


def _assert_password_only_at_login(data, login):
    assert BASIC not in data.seen_auth and not any(a.startswith("Basic") for a in data.seen_auth)
    assert login.seen_auth[BASIC] >= 1


def test_bearer_token_from_the_environment(daac, monkeypatch):
    data, login, name = daac
    monkeypatch.setenv("EARTHDATA_TOKEN", TOKEN)
    got = _read_all(data, name)
    assert got.shape == (1000, 3000) and got[999, 2999] == 2_999_999
    assert data.seen_auth[f"Bearer {TOKEN}"] > 1 and data.range_requests[name] > 1
    assert login.seen_auth == {} and data.redirects_to_login == 0
    assert credentials.request_headers(SOURCE, f"{data.url}/{name}") == {"Authorization": f"Bearer {TOKEN}"}


def test_netrc_logs_in_on_the_redirect_and_the_cookie_serves_every_range(daac, tmp_path, monkeypatch):
    data, login, name = daac
    _netrc(tmp_path, monkeypatch)
    got = _read_all(data, name)
    assert got[500, 1500] == 500 * 3000 + 1500
    assert login.logins == 1 and data.range_requests[name] > 1  # one login, then the cookie
    _assert_password_only_at_login(data, login)
    assert credentials.request_headers(SOURCE, f"{data.url}/{name}") == {}  # a password is never a header


def test_username_and_password_variables(daac, monkeypatch):
    data, login, name = daac
    monkeypatch.setenv("EARTHDATA_USERNAME", USER)
    monkeypatch.setenv("EARTHDATA_PASSWORD", PASSWORD)
    assert _read_all(data, name)[0, 1] == 1
    assert login.logins == 1
    _assert_password_only_at_login(data, login)


def test_earthaccess_login_in_this_process_is_used(daac, monkeypatch):
    """earthaccess's "environment" strategy with a token (Auth.login: what earthaccess.login()
    runs before it builds its Store, which would call urs.earthdata.nasa.gov), then the variable
    gone: the token of earthaccess's session is sent."""
    import earthaccess

    data, login, name = daac
    monkeypatch.setenv("EARTHDATA_TOKEN", TOKEN)
    earthaccess.__auth__.login(strategy="environment")
    monkeypatch.delenv("EARTHDATA_TOKEN")
    assert [lg.name for lg in credentials.earthdata_logins()] == ["earthaccess.login()"]
    assert _read_all(data, name)[0, 2] == 2
    assert data.seen_auth[f"Bearer {TOKEN}"] > 0 and login.seen_auth == {}


def test_earthaccess_netrc_style_login_sends_basic_to_the_login_host(daac, monkeypatch):
    """A login that left a username/password in earthaccess's Auth (strategy "netrc"/"environment"
    with a password) is used like a netrc entry."""
    import earthaccess

    data, login, name = daac
    auth = earthaccess.__auth__
    monkeypatch.setattr(auth, "authenticated", True)
    monkeypatch.setattr(auth, "username", USER)
    monkeypatch.setattr(auth, "password", PASSWORD)
    assert _read_all(data, name)[0, 3] == 3
    _assert_password_only_at_login(data, login)


def test_the_first_set_up_that_works_is_used(daac, tmp_path, monkeypatch):
    """A stale token first (refused), then a wrong netrc password (refused by the login host),
    then the right username/password: the read succeeds with the last one."""
    data, login, name = daac
    monkeypatch.setenv("EARTHDATA_TOKEN", "expired-token-0000")
    _netrc(tmp_path, monkeypatch, password="wrong-password-1234")
    monkeypatch.setenv("EARTHDATA_USERNAME", USER)
    monkeypatch.setenv("EARTHDATA_PASSWORD", PASSWORD)
    assert [lg.name.split(" ")[0] for lg in credentials.earthdata_logins()] == [
        "$EARTHDATA_TOKEN", str(tmp_path / "netrc"), "$EARTHDATA_USERNAME/$EARTHDATA_PASSWORD"]
    assert _read_all(data, name)[1, 0] == 3000
    assert login.refused == 1 and login.logins == 1
    assert not any(a.startswith("Basic") for a in data.seen_auth)


def test_no_working_login_names_what_was_tried_and_what_to_set(daac, tmp_path, monkeypatch):
    data, login, name = daac
    with pytest.raises(LoginRefused) as err:
        open_http(f"{data.url}/{name}", SOURCE)
    msg = str(err.value)
    assert "no login: HTTP 401" in msg and "EARTHDATA_TOKEN" in msg and "~/.netrc" in msg
    assert "EARTHDATA_USERNAME" in msg and "earthaccess.login()" in msg
    # with wrong credentials: each is named by where it came from, no secret shown
    monkeypatch.setenv("EARTHDATA_TOKEN", "stale-token-5678")
    _netrc(tmp_path, monkeypatch, password="wrong-password-1234")
    with pytest.raises(InputDataError) as err:
        open_http(f"{data.url}/{name}?token=abc123secret", SOURCE)
    msg = str(err.value)
    assert "$EARTHDATA_TOKEN: HTTP 401" in msg and f"{tmp_path / 'netrc'} (machine 127.0.0.1): HTTP 401" in msg
    for secret in ("stale-token-5678", "wrong-password-1234", "abc123secret", USER):
        assert secret not in msg, msg


def test_emit_scene_read_through_the_login_redirect_equals_a_local_read(tmp_path, monkeypatch, clean_env):
    """The EMIT reader end to end (reflectance and mask files) logging in with ~/.netrc."""
    www, _, local, spec, gb, want = emit_to_serve(tmp_path, 1)
    _netrc(tmp_path, monkeypatch)
    with earthdata(www, token=TOKEN, user=USER, password=PASSWORD) as (data, login):
        monkeypatch.setattr(credentials, "EARTHDATA_LOGIN_HOST", login.netloc)
        remote = {k: f"{data.url}/{Path(v).name}" for k, v in local.items()}
        got = read_scene(spec, SceneRef("E", SOURCE, remote, {}), gb)
        assert login.logins >= 1
        _assert_password_only_at_login(data, login)
    np.testing.assert_array_equal(got.data, want.data)
    np.testing.assert_array_equal(got.mask, want.mask)


def test_lp_daac_hrefs_need_earthdata_whatever_the_source(clean_env, monkeypatch):
    """An EMIT item copied into a local: catalogue still logs in: the LP DAAC host is claimed by
    earthdata-cmr's `hosts` in sources.yaml."""
    href = "https://data.lpdaac.earthdatacloud.nasa.gov/lp-prod-protected/EMITL2ARFL.001/x.nc"
    monkeypatch.setenv("EARTHDATA_TOKEN", TOKEN)
    assert credentials.auth_for("local:/data/catalog.json", href) == "earthdata"
    assert credentials.request_headers("local:/data/catalog.json", href) == {"Authorization": f"Bearer {TOKEN}"}
    assert [lg.name for lg in credentials.read_logins(None, href)] == ["$EARTHDATA_TOKEN"]
    assert credentials.read_logins(None, "https://example.org/x.nc") == []


def test_earthdata_login_repr_and_redaction_show_no_secret():
    login = credentials.EarthdataLogin("x", token=TOKEN, basic=(USER, PASSWORD))
    assert TOKEN not in repr(login) and PASSWORD not in repr(login)
    env = {"EARTHDATA_PASSWORD": PASSWORD, "EARTHDATA_TOKEN": TOKEN, "EARTHDATA_USERNAME": USER,
           "PC_SDK_SUBSCRIPTION_KEY": "0f1e2d3c4b5a69788796a5b4c3d2e1f0"}
    assert sorted(credentials.env_secrets(env)) == sorted([PASSWORD, TOKEN, "0f1e2d3c4b5a69788796a5b4c3d2e1f0"])


def test_debug_logs_of_a_login_read_hold_no_secret(daac, tmp_path, monkeypatch, caplog):
    import logging

    data, login, name = daac
    monkeypatch.setenv("EARTHDATA_TOKEN", "stale-token-5678")  # refused first: its name is logged, not it
    monkeypatch.setenv("EARTHDATA_USERNAME", USER)
    monkeypatch.setenv("EARTHDATA_PASSWORD", PASSWORD)
    with caplog.at_level(logging.DEBUG):
        _read_all(data, name)
    text = "\n".join(r.getMessage() for r in caplog.records)
    assert "GET" in text  # urllib3 did log the requests
    for secret in ("stale-token-5678", PASSWORD, BASIC.split()[1], TOKEN):
        assert secret not in text
