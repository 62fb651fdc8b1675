"""Read-time credentials, and keeping secrets out of every message and log line.

Plans and indexes hold unsigned hrefs. Just before a reader opens a file it asks this module for
what the read needs - the href to open (:func:`sign_href`) and the HTTP headers to send
(:func:`request_headers`) - uses them for that one open and drops them; they are never returned
to anything that writes. Which credential a read needs is the ``auth`` of its source in
catalogs/sources.yaml (:class:`~spectralearth_data.catalog.SourceSpec`), looked up in
:data:`AUTHS`:

* ``none`` - hrefs are read as they are;
* ``planetary-computer`` - Azure blob hrefs get a Planetary Computer SAS token, cached per
  (storage account, container) until shortly before it expires (:class:`SasSigner`), so a long
  tiling run keeps working and does not ask for a token per file;
* ``earthdata`` - https reads send ``Authorization: Bearer $EARTHDATA_TOKEN`` when it is set
  (:func:`earthdata_headers`); without it requests/GDAL fall back to ``~/.netrc``.

Redaction: :func:`redact` is the one function that takes secrets out of text (error messages,
log records, URLs), and :data:`SECRET_QUERY_KEYS`, :data:`SECRET_NAME_PARTS` and
:data:`SECRET_ENV_PREFIXES` are the one description of where secrets travel.
:func:`install_log_redaction` applies :func:`redact` to the log records of rasterio/GDAL (which
name the URLs they open, signature included); entry points call it (the CLI, every tiling task),
importing this module does not.

Imports neither torch, Prefect nor the search package (:mod:`spectralearth_data.sources`): the
engine and the sources both build on it.
"""

from __future__ import annotations

import functools
import logging
import os
import re
import threading
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from urllib.parse import parse_qsl, urlsplit, urlunsplit

from .errors import CatalogError, SourceError

__all__ = [
    "AUTHS", "EARTHDATA_TOKEN_ENV", "REDACTED", "REDACTED_LOGGERS", "SECRET_ENV_PREFIXES",
    "SECRET_NAME_PARTS", "SECRET_QUERY_KEYS", "ReadAuth", "SasSigner", "SasToken", "TokenProvider",
    "earthdata_headers", "env_secrets", "install_log_redaction", "is_secret_name",
    "log_redaction_installed", "planetary_computer_token", "read_auth", "redact", "redact_url",
    "request_headers", "secret_values", "sign_href", "source_auth", "unsigned_href",
]

# -- where secrets travel ------------------------------------------------------------------------

#: What a secret is replaced with in text.
REDACTED = "<redacted>"

#: Query-string keys that carry credentials (Azure SAS, AWS presigned URLs, bearer tokens).
SECRET_QUERY_KEYS = frozenset({
    "sig", "se", "st", "sp", "sv", "sr", "skoid", "sktid", "skt", "ske", "sks", "skv",
    "x-amz-signature", "x-amz-credential", "x-amz-security-token", "token", "access_token",
})

#: Option, variable and ``name=value`` names holding secrets (substrings of the lower-cased name).
SECRET_NAME_PARTS = ("key", "secret", "token", "password", "credential", "sas", "connection_string", "signature")

#: Environment variables the storage backends read credentials from (with a secret-looking name).
SECRET_ENV_PREFIXES = ("AWS_", "AZURE_", "GOOGLE_", "GCS_")

#: Secret values shorter than this are not searched for in text (they would match everywhere).
MIN_SECRET_LEN = 4

_SCHEME = r"[A-Za-z][A-Za-z0-9+.-]*://"
_STOP = r"\s'\"<>"  # a URL or a value ends at whitespace, a quote or an angle bracket
#: ``scheme://user:password@`` (userinfo has no unescaped ``/``; ``container@account`` has no ``:``).
_USERINFO = re.compile(rf"({_SCHEME})[^{_STOP}/@:]+:[^{_STOP}/@]*@")
#: ``Bearer <token>`` (the value of an Authorization header).
_BEARER = re.compile(rf"\b(Bearer)\s+[^{_STOP},;]+", re.IGNORECASE)
#: ``name=value`` where the name looks secret (``AccountKey=...``, ``x-amz-security-token=...``).
_NAMED = re.compile(
    rf"\b([\w.-]*(?:{'|'.join(SECRET_NAME_PARTS)})[\w.-]*=)(?!{REDACTED})[^{_STOP}&;,]+", re.IGNORECASE)
#: The query string of a URL (where SAS signatures and signed-URL tokens travel).
_URL_QUERY = re.compile(rf"({_SCHEME}[^{_STOP}?]+)\?[^{_STOP}]+")
#: A query string on anything else (a path, a /vsicurl name): a ``?`` after a name, with a ``=``.
_BARE_QUERY = re.compile(rf"(?<=[^{_STOP}?])\?(?=[^{_STOP}]*=)[^{_STOP}]+")


def is_secret_name(name: str) -> bool:
    """True when an option or variable called ``name`` holds a secret (see SECRET_NAME_PARTS)."""
    low = name.lower()
    return any(part in low for part in SECRET_NAME_PARTS)


def secret_values(options: Mapping) -> list[str]:
    """String values of the secret-named options (at any depth), to take out of messages."""
    out: list[str] = []
    for k, v in options.items():
        if isinstance(v, Mapping):
            out += secret_values(v)
        elif isinstance(v, str) and len(v) >= MIN_SECRET_LEN and is_secret_name(str(k)):
            out.append(v)
    return out


def env_secrets(environ: Mapping[str, str] | None = None) -> list[str]:
    """Credentials the storage backends read from the environment (AWS_*, AZURE_*, GOOGLE_*, GCS_*)."""
    env = os.environ if environ is None else environ
    return [v for k, v in env.items()
            if k.startswith(SECRET_ENV_PREFIXES) and len(v) >= MIN_SECRET_LEN and is_secret_name(k)]


def redact(text: str, secrets: Iterable[str] = ()) -> str:
    """``text`` without credentials, each replaced by ``<redacted>``.

    Taken out: every value in ``secrets`` (e.g. :func:`secret_values` of the storage options,
    :func:`env_secrets`); the password of ``scheme://user:password@host``; the token after
    ``Bearer``; the query string of every URL or path (``...?<redacted>``), where SAS signatures
    and signed-URL tokens travel; and the value of any other secret-named ``name=value``.
    Hrefs we store never carry a query, so nothing useful is lost. Redacting twice changes nothing.
    """
    for s in sorted({s for s in secrets if s and len(s) >= MIN_SECRET_LEN}, key=len, reverse=True):
        text = text.replace(s, REDACTED)
    text = _USERINFO.sub(rf"\1{REDACTED}@", text)
    text = _BEARER.sub(rf"\1 {REDACTED}", text)
    text = _URL_QUERY.sub(rf"\1?{REDACTED}", text)
    text = _BARE_QUERY.sub(f"?{REDACTED}", text)
    return _NAMED.sub(rf"\1{REDACTED}", text)


def redact_url(url: str) -> str:
    """``url`` to show: without query string, fragment or password (``<redacted>@host``).

    ``abfs://container@account...`` keeps its ``container@`` (no secret); a local path only loses
    what :func:`redact` takes out.
    """
    u = urlsplit(url)
    if not u.scheme or len(u.scheme) == 1:  # a local path (or a Windows drive letter)
        return redact(url)
    netloc = u.netloc
    if "@" in netloc:
        user, host = netloc.rsplit("@", 1)
        netloc = f"{REDACTED}@{host}" if ":" in user else netloc
    return redact(urlunsplit((u.scheme, netloc, u.path, "", "")))


def unsigned_href(href: str) -> str:
    """``href`` without credentials: the query parameters in SECRET_QUERY_KEYS are dropped, the
    others (``?version=2``) kept. Used on every href before it is stored."""
    if "?" not in href:
        return href
    parts = urlsplit(href)
    kept = [(k, v) for k, v in parse_qsl(parts.query, keep_blank_values=True) if k.lower() not in SECRET_QUERY_KEYS]
    query = "&".join(f"{k}={v}" if v else k for k, v in kept)
    return urlunsplit((parts.scheme, parts.netloc, parts.path, query, parts.fragment))


# -- log redaction ---------------------------------------------------------------------------------

#: Loggers whose records :func:`install_log_redaction` redacts: GDAL names the URL it opened in
#: its errors and retry warnings (``HTTP error code: 503 - https://...?sig=...``), and rasterio
#: (and fiona/pyogrio) forward those to Python logging.
REDACTED_LOGGERS = ("rasterio", "GDAL", "fiona", "pyogrio")

_install_lock = threading.Lock()


def install_log_redaction() -> None:
    """Redact (:func:`redact`) every log record of REDACTED_LOGGERS in this process from now on.

    Idempotent and cheap: call it at every entry point that may read rasters (the CLI's ``main``,
    each tiling task, since Dask workers are separate processes). A record factory, not a logger
    filter, because filters do not apply to records of child loggers (``rasterio._env``,
    ``rasterio._err``, ...) and we do not own the handlers.
    """
    with _install_lock:
        previous = logging.getLogRecordFactory()
        if getattr(previous, "_spectralearth_redacts", False):
            return

        def factory(*args, **kwargs):
            record = previous(*args, **kwargs)
            if record.name.startswith(REDACTED_LOGGERS):
                try:
                    msg = record.getMessage()
                except Exception:  # noqa: BLE001 - a malformed record is logged as its library made it
                    return record
                clean = redact(msg)
                if clean != msg:
                    record.msg, record.args = clean, ()
            return record

        factory._spectralearth_redacts = True  # type: ignore[attr-defined]
        logging.setLogRecordFactory(factory)


def log_redaction_installed() -> bool:
    """Whether :func:`install_log_redaction` has run in this process."""
    return bool(getattr(logging.getLogRecordFactory(), "_spectralearth_redacts", False))


# -- Planetary Computer: SAS tokens ----------------------------------------------------------------


@dataclass(frozen=True)
class SasToken:
    """A SAS query string (without the leading ``?``) and when it stops working."""

    token: str
    expiry: datetime


TokenProvider = Callable[[str, str], SasToken]


def planetary_computer_token(account: str, container: str) -> SasToken:
    """Fetch a SAS token from the Planetary Computer token API (network; never used in tests)."""
    from planetary_computer import sas

    tok = sas.get_token(account, container)
    expiry = tok.expiry
    if expiry.tzinfo is None:
        expiry = expiry.replace(tzinfo=UTC)
    return SasToken(tok.token, expiry)


class SasSigner:
    """Signs Azure blob hrefs with cached SAS tokens, refreshed ``margin`` before expiry.

    Args:
        token_provider: ``(account, container) -> SasToken``; the Planetary Computer API by default.
        margin: refresh a token this long before it expires.
        clock: the current UTC time (injectable for tests).
    """

    def __init__(self, token_provider: TokenProvider = planetary_computer_token,
                 margin: timedelta = timedelta(minutes=5),
                 clock: Callable[[], datetime] = lambda: datetime.now(UTC)):
        self._provider = token_provider
        self._margin = margin
        self._clock = clock
        self._cache: dict[tuple[str, str], SasToken] = {}
        self._lock = threading.Lock()

    def token_for(self, account: str, container: str) -> SasToken:
        key = (account, container)
        with self._lock:
            tok = self._cache.get(key)
            if tok is None or tok.expiry - self._margin <= self._clock():
                tok = self._provider(account, container)
                self._cache[key] = tok
            return tok

    def sign(self, href: str) -> str:
        """``href`` with a SAS token when it is an Azure blob URL; any other href unchanged."""
        parts = urlsplit(href)
        host = parts.hostname or ""
        if not host.endswith(".blob.core.windows.net"):
            return href
        account = host.split(".", 1)[0]
        container = parts.path.lstrip("/").split("/", 1)[0]
        if not container:
            raise SourceError(f"{href}: no container in the blob URL; cannot sign it")
        tok = self.token_for(account, container)
        sep = "&" if parts.query else "?"
        return f"{href}{sep}{tok.token}"


_sas_signer: SasSigner | None = None


def _planetary_computer_sign(href: str) -> str:
    """``href`` signed by this process's SasSigner (one token cache per process)."""
    global _sas_signer
    if _sas_signer is None:
        _sas_signer = SasSigner()
    return _sas_signer.sign(href)


# -- Earthdata: bearer token -----------------------------------------------------------------------

#: Environment variable holding an Earthdata Login bearer token (used only at read time).
EARTHDATA_TOKEN_ENV = "EARTHDATA_TOKEN"


def earthdata_headers() -> dict[str, str]:
    """HTTP headers for Earthdata downloads: a bearer token from ``$EARTHDATA_TOKEN`` if set.

    Without it, requests/GDAL fall back to ``~/.netrc`` (urs.earthdata.nasa.gov). Never logged.
    """
    token = os.environ.get(EARTHDATA_TOKEN_ENV)
    return {"Authorization": f"Bearer {token}"} if token else {}


# -- dispatch on SourceSpec.auth -------------------------------------------------------------------


def _unchanged(href: str) -> str:
    return href


def _no_headers() -> dict[str, str]:
    return {}


@dataclass(frozen=True)
class ReadAuth:
    """What one kind of ``auth`` adds to the read of an http(s) href."""

    sign: Callable[[str], str] = _unchanged  # href -> the href to open (e.g. with a SAS query)
    headers: Callable[[], dict[str, str]] = _no_headers  # HTTP headers to send with the read


#: Read-time credentials per value of ``SourceSpec.auth`` (one entry per value it may take).
AUTHS: dict[str, ReadAuth] = {
    "none": ReadAuth(),
    "planetary-computer": ReadAuth(sign=_planetary_computer_sign),
    "earthdata": ReadAuth(headers=earthdata_headers),
}


def read_auth(auth: str) -> ReadAuth:
    """The read-time credentials for an ``auth`` value of catalogs/sources.yaml."""
    try:
        return AUTHS[auth]
    except KeyError:
        known = ", ".join(sorted(AUTHS))
        raise CatalogError(f"auth {auth!r}: no such kind of credentials (known: {known}); "
                           "see the sources in catalogs/sources.yaml") from None


@functools.lru_cache(maxsize=8)
def _auth_by_source(root: str) -> Mapping[str, str]:
    from types import MappingProxyType

    from .catalog import load_sources

    return MappingProxyType({name: spec.auth for name, spec in load_sources(Path(root)).items()})


def source_auth(source: str | None) -> str:
    """The ``auth`` of ``source`` in catalogs/sources.yaml (read once per process and catalog
    folder); ``none`` for a source that is not listed there (``local:PATH``, a name made up by a
    caller), whose hrefs are read as they are."""
    if not source or source.startswith("local:"):
        return "none"
    from .catalog import catalog_root

    return _auth_by_source(str(catalog_root())).get(source, "none")


def _remote(href: str) -> bool:
    return href.startswith(("http://", "https://"))


def sign_href(source: str | None, href: str) -> str:
    """The href to open for reading ``href`` of ``source``: signed when the source's ``auth``
    signs (``planetary-computer``), else ``href`` itself. Only http(s) hrefs are signed.

    Use the result for the read and drop it. A signed href turns on
    :func:`install_log_redaction` in this process, so GDAL never logs its signature.
    """
    if not _remote(href):
        return href
    signed = read_auth(source_auth(source)).sign(href)
    if signed != href:
        install_log_redaction()
    return signed


def request_headers(source: str | None, href: str) -> dict[str, str]:
    """HTTP headers for reading ``href`` of ``source`` (``earthdata``: the bearer token); empty
    for other sources and for hrefs that are not http(s). Use them for the read only."""
    if not _remote(href):
        return {}
    return read_auth(source_auth(source)).headers()
