"""Read-time credentials chosen by a source's ``auth`` (catalogs/sources.yaml), and the one
``redact`` every message and log line goes through."""

from __future__ import annotations

import logging
import subprocess
import sys
import typing
from datetime import UTC, datetime, timedelta

import pytest

from spectralearth_data import credentials
from spectralearth_data.catalog import SourceSpec
from spectralearth_data.credentials import (
    REDACTED,
    ReadAuth,
    SasSigner,
    SasToken,
    env_secrets,
    install_log_redaction,
    read_auth,
    redact,
    redact_url,
    request_headers,
    secret_values,
    sign_href,
    source_auth,
    unsigned_href,
)
from spectralearth_data.errors import CatalogError

BLOB = "https://sentinel2l2a01.blob.core.windows.net/sentinel2-l2/01/C/CV/2024/B04.tif"
EMIT = "https://data.lpdaac.earthdatacloud.nasa.gov/lp-prod-protected/EMIT_L2A_RFL/x.nc"
SIG = "hF3kq9Zr%2BQm7Xv0L1s8yT2nW5pJ6cV4bN0aR3eU9dI%3D"
SAS = f"st=2026-11-29T00%3A00%3A00Z&se=2026-11-30T00%3A00%3A00Z&sp=rl&sv=2024-08-04&sr=c&skoid=abc&sig={SIG}"
JWT = "eyJ0eXAiOiJKV1QiLCJhbGciOiJSUzI1NiJ9.eyJ1aWQiOiJ0ZXN0In0.Zm9yLXRlc3RzLW9ubHk"

SOURCES_YAML = """sources:
  - {name: sas-src, kind: stac-api, url: "https://example.org/stac", auth: planetary-computer}
  - {name: open-src, kind: stac-api, url: "https://example.org/stac", auth: none}
  - {name: ed-src, kind: cmr, url: "https://example.org/cmr", auth: earthdata}
  - {name: default-src, kind: stac-api, url: "https://example.org/stac"}
"""


def _catalog(tmp_path, monkeypatch, sources_yaml: str = SOURCES_YAML):
    """A catalogs/ folder holding only sources.yaml, made the current catalog."""
    root = tmp_path / "catalogs"
    (root / "sensors").mkdir(parents=True)
    (root / "sources.yaml").write_text(sources_yaml)
    monkeypatch.setenv("SPECTRALEARTH_CATALOGS", str(root))
    return root


@pytest.fixture()
def fake_sas(monkeypatch):
    """This process's SAS signer with injected tokens (no network); returns the token calls."""
    calls = []

    def provider(account, container):
        calls.append((account, container))
        return SasToken(SAS, datetime.now(UTC) + timedelta(hours=1))

    monkeypatch.setattr(credentials, "_sas_signer", SasSigner(provider))
    return calls


# -- dispatch on SourceSpec.auth -------------------------------------------------------------------


def test_every_auth_value_a_source_may_have_has_credentials():
    allowed = set(typing.get_args(SourceSpec.model_fields["auth"].annotation))
    assert allowed == set(credentials.AUTHS)


def test_the_shipped_sources_auth_is_read_from_the_catalog():
    assert source_auth("planetary-computer") == "planetary-computer"
    assert source_auth("earthdata-cmr") == "earthdata"
    assert source_auth("earth-search") == "none"
    assert source_auth("dlr-geoservice") == "dlr"
    # DLR's file server needs the DLR login whichever source listed the href (a local: copy too)
    assert credentials.auth_for("local:/x/catalog.json", "https://download.geoservice.dlr.de/ENMAP/x.TIF") == "dlr"
    assert source_auth("demo") == "none"


def test_a_source_whose_auth_is_planetary_computer_is_signed(tmp_path, monkeypatch, fake_sas):
    _catalog(tmp_path, monkeypatch)
    assert source_auth("sas-src") == "planetary-computer"
    assert sign_href("sas-src", BLOB) == f"{BLOB}?{SAS}"
    assert fake_sas == [("sentinel2l2a01", "sentinel2-l2")]
    # only Azure blob URLs get a SAS token, and only remote hrefs are signed at all
    assert sign_href("sas-src", "https://example.org/a.tif") == "https://example.org/a.tif"
    assert sign_href("sas-src", "/data/a.tif") == "/data/a.tif"
    assert request_headers("sas-src", BLOB) == {}
    assert len(fake_sas) == 1


def test_sources_whose_auth_is_none_are_not_signed(tmp_path, monkeypatch, fake_sas):
    _catalog(tmp_path, monkeypatch)
    monkeypatch.setenv("EARTHDATA_TOKEN", JWT)
    for source in ("open-src", "default-src", "not-in-the-catalog", "local:/some/catalog.json", None):
        assert source_auth(source) == "none"
        assert sign_href(source, BLOB) == BLOB
        assert request_headers(source, EMIT) == {}
    assert fake_sas == []


def test_a_source_whose_auth_is_earthdata_sends_the_bearer_token(tmp_path, monkeypatch, fake_sas):
    _catalog(tmp_path, monkeypatch)
    monkeypatch.setenv("EARTHDATA_TOKEN", JWT)
    assert request_headers("ed-src", EMIT) == {"Authorization": f"Bearer {JWT}"}
    assert request_headers("ed-src", "/data/x.nc") == {}  # a local file needs no token
    assert sign_href("ed-src", EMIT) == EMIT  # the token travels in a header, never in the URL
    monkeypatch.delenv("EARTHDATA_TOKEN")
    assert request_headers("ed-src", EMIT) == {}  # requests/GDAL fall back to ~/.netrc
    assert fake_sas == []


def test_an_unknown_auth_value_is_a_clear_error(tmp_path, monkeypatch):
    with pytest.raises(CatalogError, match=r"auth 'kerberos'.*known: dlr, earthdata, none, planetary-computer"):
        read_auth("kerberos")
    # in sources.yaml: the catalog refuses it, naming the file and the field
    root = _catalog(tmp_path, monkeypatch, 'sources:\n  - {name: k, kind: stac-api, auth: kerberos}\n')
    with pytest.raises(CatalogError, match=rf"{root / 'sources.yaml'}: sources\.0\.auth"):
        sign_href("k", BLOB)
    # an auth value the catalog allows but no credentials exist for
    _catalog(tmp_path / "b", monkeypatch)
    monkeypatch.delitem(credentials.AUTHS, "earthdata")
    with pytest.raises(CatalogError, match="auth 'earthdata'"):
        request_headers("ed-src", EMIT)


def test_a_replaced_signer_is_used_for_every_source_with_that_auth(tmp_path, monkeypatch):
    _catalog(tmp_path, monkeypatch)
    monkeypatch.setitem(credentials.AUTHS, "planetary-computer", ReadAuth(sign=lambda h: h + "?sig=x"))
    assert sign_href("sas-src", "http://127.0.0.1:8000/a.tif") == "http://127.0.0.1:8000/a.tif?sig=x"
    assert sign_href("open-src", "http://127.0.0.1:8000/a.tif") == "http://127.0.0.1:8000/a.tif"


# -- redaction ---------------------------------------------------------------------------------


@pytest.mark.parametrize(("text", "want"), [
    # a SAS-signed URL in a GDAL error, bare and behind /vsicurl/
    (f"HTTP error code: 503 - {BLOB}?{SAS} (retrying)", f"HTTP error code: 503 - {BLOB}?{REDACTED} (retrying)"),
    (f"'/vsicurl/{BLOB}?{SAS}' not recognized", f"'/vsicurl/{BLOB}?{REDACTED}' not recognized"),
    # an AWS presigned URL, a query on a path without a scheme
    ("s3://b/k.zarr?X-Amz-Signature=abc123&X-Amz-Credential=AKIA", f"s3://b/k.zarr?{REDACTED}"),
    (f"cannot open local/x.tif?{SAS}", f"cannot open local/x.tif?{REDACTED}"),
    # a bearer token, as text and inside a header dict
    (f"401: Bearer {JWT}", f"401: Bearer {REDACTED}"),
    (f"headers={{'Authorization': 'Bearer {JWT}'}}", f"headers={{'Authorization': 'Bearer {REDACTED}'}}"),
    # a password in a URL's user info
    ("https://user:pw@host/r.zarr: denied", f"https://{REDACTED}@host/r.zarr: denied"),
    # secret-named name=value pairs (an Azure connection string, an environment dump)
    ("DefaultEndpointsProtocol=https;AccountName=acc;AccountKey=abc+d==;EndpointSuffix=x",
     f"DefaultEndpointsProtocol=https;AccountName=acc;AccountKey={REDACTED};EndpointSuffix=x"),
    ("AWS_SECRET_ACCESS_KEY=wJalrXUtnFEMI other", f"AWS_SECRET_ACCESS_KEY={REDACTED} other"),
    # the GDAL options of a DLR read: a Basic login, a session cookie
    ("GDAL_HTTP_USERPWD=dlr-user:Pa55w0rd next", f"GDAL_HTTP_USERPWD={REDACTED} next"),
    ("GDAL_HTTP_COOKIE=dlr_session=3f9a2c1b", f"GDAL_HTTP_COOKIE={REDACTED}"),
])
def test_redact_takes_out_every_form_of_secret(text, want):
    assert redact(text) == want
    assert redact(want) == want  # redacting twice changes nothing


@pytest.mark.parametrize("text", [
    "https://example.org/a.tif: not found",
    "abfs://container@account.dfs.core.windows.net/r.zarr",
    "token grid 3x5 is not a multiple of 4",
    "is this a GeoTIFF? no",
    "/vsicurl/https://host/a.tif?",
])
def test_redact_leaves_text_without_secrets_alone(text):
    assert redact(text) == text


def test_redact_takes_out_given_secret_values_longest_first():
    text = "denied for key AKIAEXAMPLEKEY with secret s3cr3t-value-and-more (s3cr3t)"
    got = redact(text, ["s3cr3t", "s3cr3t-value-and-more", "AKIAEXAMPLEKEY", "abc", ""])
    assert got == f"denied for key {REDACTED} with secret {REDACTED} ({REDACTED})"
    assert redact("abc abc", ["abc"]) == "abc abc"  # too short to search for


def test_secret_values_and_env_secrets_use_the_secret_names():
    options = {"key": "AKIAEXAMPLEKEY", "anon": "false", "client_kwargs": {"endpoint_url": "http://h:9000",
               "aws_session_token": "FwoGZXIvYXdzE"}, "account_key": "abc=="}
    assert secret_values(options) == ["AKIAEXAMPLEKEY", "FwoGZXIvYXdzE", "abc=="]
    env = {"AWS_SECRET_ACCESS_KEY": "wJalrXUtnFEMI", "AWS_REGION": "us-east-1", "AZURE_STORAGE_SAS_TOKEN": SAS,
           "MY_TOKEN": "not-a-backend-var", "GCS_KEY": "abc"}
    assert env_secrets(env) == ["wJalrXUtnFEMI", SAS]


def test_redact_url_drops_query_fragment_and_password():
    assert redact_url("s3://b/k.zarr?X-Amz-Signature=abc#frag") == "s3://b/k.zarr"
    assert redact_url("https://user:pw@host/r.zarr") == f"https://{REDACTED}@host/r.zarr"
    assert redact_url("abfs://container@account.dfs.core.windows.net/r.zarr") == \
        "abfs://container@account.dfs.core.windows.net/r.zarr"
    assert redact_url(f"/data/r.zarr?{SAS}") == f"/data/r.zarr?{REDACTED}"


def test_unsigned_href_drops_only_the_secret_query_keys():
    assert unsigned_href(f"{BLOB}?{SAS}") == BLOB
    assert unsigned_href(f"{BLOB}?version=2&{SAS}") == f"{BLOB}?version=2"
    assert unsigned_href("https://x/a.tif?X-Amz-Signature=a&X-Amz-Security-Token=b&token=c") == "https://x/a.tif"


def test_log_redaction_redacts_rasterio_and_gdal_records_only():
    install_log_redaction()
    install_log_redaction()  # idempotent: one factory, not two
    records = []

    class Keep(logging.Handler):
        def emit(self, record):
            records.append(record)

    handler = Keep(logging.DEBUG)
    for name in ("rasterio._err", "GDAL", "spectralearth.test"):
        log = logging.getLogger(name)
        log.addHandler(handler)
        old, log.propagate = log.level, False
        log.setLevel(logging.DEBUG)
        try:
            log.warning("HTTP error code: 503 - %s", f"{BLOB}?{SAS}")
        finally:
            log.removeHandler(handler)
            log.setLevel(old)
            log.propagate = True
    got = [r.getMessage() for r in records]
    assert got[:2] == [f"HTTP error code: 503 - {BLOB}?{REDACTED}"] * 2
    assert got[2].endswith(SAS)  # our own loggers never see a signed URL; left as they are


_PROBE = """
import logging, sys
import spectralearth_data.engine, spectralearth_data.engine.tile, spectralearth_data.engine.readers.emit
import spectralearth_data.release.upload
from spectralearth_data import credentials
before = credentials.log_redaction_installed()
credentials.AUTHS["planetary-computer"] = credentials.ReadAuth(sign=lambda h: h + "?sig=x")
credentials.sign_href("planetary-computer", "https://h/a.tif")
print(before, credentials.log_redaction_installed(),
      sorted(m for m in sys.modules if m.startswith("spectralearth_data.sources")),
      sorted({m.split(".")[0] for m in sys.modules} & {"torch", "prefect"}))
"""


def test_the_engine_imports_neither_the_sources_nor_installs_redaction_on_import():
    out = subprocess.run([sys.executable, "-c", _PROBE], capture_output=True, text=True, check=True)
    # not installed by any import; turned on by the first signed read
    assert out.stdout.strip().splitlines()[-1] == "False True [] []"


def test_a_sources_hosts_claim_their_hrefs_whatever_the_source(tmp_path, monkeypatch, fake_sas):
    """``hosts`` in sources.yaml: fnmatch patterns, a leading ``!`` excludes; the first source
    whose hosts match decides the href's auth, before the source's own."""
    _catalog(tmp_path, monkeypatch, SOURCES_YAML.replace(
        "auth: planetary-computer}",
        'auth: planetary-computer, hosts: ["*.blob.core.windows.net", "!public.blob.core.windows.net"]}'))
    public = "https://public.blob.core.windows.net/thumbs/a.png"
    assert credentials.auth_for("open-src", BLOB) == "planetary-computer"
    assert credentials.auth_for("open-src", public) == "none"
    assert credentials.auth_for("ed-src", "https://example.org/x.nc") == "earthdata"  # by source
    assert sign_href("local:/x/catalog.json", BLOB) == f"{BLOB}?{SAS}"
    assert sign_href("open-src", public) == public
    assert credentials.href_auth("/data/a.tif") is None
    assert fake_sas == [("sentinel2l2a01", "sentinel2-l2")]
