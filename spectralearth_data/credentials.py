"""Read-time credentials, and keeping secrets out of every message and log line.

Plans and indexes hold unsigned hrefs. Just before a reader opens a file it asks this module for
what the read needs - the href to open (:func:`sign_href`) and the HTTP headers to send
(:func:`request_headers`) - uses them for that one open and drops them; they are never returned
to anything that writes. Which credential a read needs is an ``auth`` of catalogs/sources.yaml
(:class:`~spectralearth_data.catalog.SourceSpec`; chosen by the href's host, else by its source,
see below), looked up in :data:`AUTHS`:

* ``none`` - hrefs are read as they are;
* ``planetary-computer`` - Azure blob hrefs get a Planetary Computer SAS token, cached per
  (storage account, container) until shortly before it expires (:class:`SasSigner`), so a long
  tiling run keeps working and does not ask for a token per file. Every open signs again (a
  fresh token once the cached one is within ``margin`` of expiry), and a read refused with 403
  re-signs with a new token and reopens once (:func:`resign_href`);
* ``earthdata`` - https reads log in with the first Earthdata Login set-up found
  (:func:`earthdata_logins`): ``$EARTHDATA_TOKEN``, the session of ``earthaccess.login()``,
  ``~/.netrc`` (``$NETRC``) or ``$EARTHDATA_USERNAME``/``$EARTHDATA_PASSWORD``; a token is sent
  as a bearer header, a login/password only to the login host the data server redirects to;
* ``dlr`` - reads from DLR's EOC file server (download.geoservice.dlr.de) log in with the first
  DLR login found (:func:`dlr_logins`: ``~/.netrc``/``$NETRC``, ``$DLR_USERNAME``/``$DLR_PASSWORD``)
  and the first method the server accepts (:func:`dlr_access`): HTTP Basic auth, or the CAS
  single sign-on it redirects to, whose session cookies are handed to GDAL (``GDAL_HTTP_COOKIE``)
  for each read of that host (:func:`gdal_options`).

Which ``auth`` a read needs is decided by the href first: a source's ``hosts`` in sources.yaml
(Planetary Computer blob storage, LP DAAC) claim their hrefs whichever source listed them, so
items copied into a ``local:`` catalogue are still signed (:func:`auth_for`). S3 hrefs of
requester-pays assets (STAC ``storage:requester_pays``) are read with GDAL's
``AWS_REQUEST_PAYER=requester`` (:func:`gdal_options`, inside :func:`reading_item`).

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

import contextlib
import contextvars
import fnmatch
import functools
import logging
import os
import re
import threading
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path
from urllib.parse import parse_qsl, urlsplit, urlunsplit

from .errors import CatalogError, InputDataError, SourceError

log = logging.getLogger(__name__)

__all__ = [
    "AUTHS", "AccessMissing", "AccessRefused", "DLR_DOWNLOAD_HOST", "DLR_HOWTO", "DlrAccess", "EARTHDATA_HOWTO", "EARTHDATA_LOGIN_HOST", "EARTHDATA_TOKEN_ENV", "REDACTED",
    "REDACTED_LOGGERS", "SECRET_ENV_PREFIXES", "SECRET_NAME_PARTS", "SECRET_QUERY_KEYS",
    "EarthdataLogin", "ReadAuth", "SasSigner", "SasToken", "TokenProvider", "auth_for",
    "earthdata_headers", "earthdata_logins", "earthdata_session", "env_secrets", "gdal_options",
    "href_auth", "install_log_redaction", "is_secret_name", "log_redaction_installed",
    "planetary_computer_token", "read_auth", "reading_item", "redact", "redact_url",
    "read_logins", "request_headers", "requester_pays", "resign_href", "secret_values", "sign_href", "source_auth",
    "unsigned_href", "dlr_access", "dlr_gdal_options", "dlr_logins", "forget_dlr_access", "plain_session",
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
SECRET_NAME_PARTS = ("key", "secret", "token", "password", "credential", "sas", "connection_string", "signature",
                     "userpwd", "cookie")

#: Environment variables credentials are read from (with a secret-looking name): the storage
#: backends', the Planetary Computer library's (PC_SDK_SUBSCRIPTION_KEY) and Earthdata Login's
#: (EARTHDATA_TOKEN, EARTHDATA_PASSWORD) and DLR's (DLR_PASSWORD).
SECRET_ENV_PREFIXES = ("AWS_", "AZURE_", "GOOGLE_", "GCS_", "PC_SDK_", "EARTHDATA_", "DLR_")

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
    """Credentials read from the environment (see SECRET_ENV_PREFIXES: AWS_*, AZURE_*, GOOGLE_*,
    GCS_*, PC_SDK_*, EARTHDATA_*)."""
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
    The secrets obtained at read time in this process (a DLR password, session cookies) are
    always taken out too.
    """
    with _live_lock:
        known = set(secrets) | _live_secrets
    for s in sorted({s for s in known if s and len(s) >= MIN_SECRET_LEN}, key=len, reverse=True):
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
#: (and fiona/pyogrio) forward those to Python logging; urllib3 logs each request line (path and
#: query) of the HTTP reads made with requests (:mod:`~spectralearth_data.engine.readers.httpfile`).
REDACTED_LOGGERS = ("rasterio", "GDAL", "fiona", "pyogrio", "urllib3")

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

#: Environment variable with a Planetary Computer API key, read by the planetary_computer
#: library (planetary_computer/settings.py) and sent to its SAS token API. Needed for the
#: collections marked ``msft:requires_account`` (sentinel-1-rtc); see catalogs/sources.yaml.
PC_SUBSCRIPTION_KEY_ENV = "PC_SDK_SUBSCRIPTION_KEY"


def planetary_computer_token(account: str, container: str) -> SasToken:
    """A new SAS token from the Planetary Computer token API (network; never used in tests with
    the real endpoint).

    The library keeps its own token cache (planetary-computer 1.0.0, ``sas.get_token``: a token
    of ``TOKEN_CACHE``, keyed by ``f"{sas_url}/{account}/{container}"``, is returned until less
    than 60 s remain). :class:`SasSigner` asks for a token when *its* margin (minutes) is reached,
    and would get the nearly expired one back; so the library's entry is dropped first and the
    token returned is always a new one.
    """
    import requests
    from planetary_computer import sas
    from planetary_computer.settings import Settings

    cache = getattr(sas, "TOKEN_CACHE", None)
    if isinstance(cache, dict):
        cache.pop(f"{Settings.get().sas_url}/{account}/{container}", None)
    try:
        tok = sas.get_token(account, container)
    except requests.HTTPError as e:
        status = e.response.status_code if e.response is not None else None
        hint = ""
        if status in (401, 403):
            hint = (f"; this container needs a Planetary Computer account (collections with "
                    f"msft:requires_account, e.g. sentinel-1-rtc): set {PC_SUBSCRIPTION_KEY_ENV} "
                    "to your API subscription key")
        raise SourceError(f"Planetary Computer SAS token for {account}/{container}: HTTP {status}"
                          f"{hint}") from None
    except requests.RequestException as e:
        raise SourceError(f"Planetary Computer SAS token for {account}/{container}: "
                          f"{redact(str(e), env_secrets())}") from None
    expiry = tok.expiry
    if expiry.tzinfo is None:
        expiry = expiry.replace(tzinfo=UTC)
    return SasToken(tok.token, expiry)


def _blob_container(href: str) -> tuple[str, str] | None:
    """(storage account, container) of an Azure blob URL, else None."""
    parts = urlsplit(href)
    host = parts.hostname or ""
    if not host.endswith(".blob.core.windows.net"):
        return None
    container = parts.path.lstrip("/").split("/", 1)[0]
    if not container:
        raise SourceError(f"{redact_url(href)}: no container in the blob URL; cannot sign it")
    return host.split(".", 1)[0], container


class SasSigner:
    """Signs Azure blob hrefs with cached SAS tokens, refreshed ``margin`` before expiry.

    Args:
        token_provider: ``(account, container) -> SasToken``; the Planetary Computer API by default.
        margin: refresh a token this long before it expires.
        clock: the current UTC time (injectable for tests).
        locate: ``href -> (account, container)`` or None for hrefs it does not sign; Azure blob
            URLs by default (tests point it at a local server).
    """

    def __init__(self, token_provider: TokenProvider = planetary_computer_token,
                 margin: timedelta = timedelta(minutes=5),
                 clock: Callable[[], datetime] = lambda: datetime.now(UTC),
                 locate: Callable[[str], tuple[str, str] | None] = _blob_container):
        self._provider = token_provider
        self._margin = margin
        self._clock = clock
        self._locate = locate
        self._cache: dict[tuple[str, str], SasToken] = {}
        self._lock = threading.Lock()

    def token_for(self, account: str, container: str, fresh: bool = False) -> SasToken:
        """The cached token, or a new one when it is within ``margin`` of expiry (or ``fresh``)."""
        key = (account, container)
        with self._lock:
            tok = self._cache.get(key)
            if fresh or tok is None or tok.expiry - self._margin <= self._clock():
                tok = self._provider(account, container)
                self._cache[key] = tok
            return tok

    def sign(self, href: str, fresh: bool = False) -> str:
        """``href`` with a SAS token when it is one this signer signs; any other href unchanged.
        ``fresh``: with a new token (after the server refused the cached one)."""
        where = self._locate(href)
        if where is None:
            return href
        tok = self.token_for(*where, fresh=fresh)
        sep = "&" if urlsplit(href).query else "?"
        return f"{href}{sep}{tok.token}"


_sas_signer: SasSigner | None = None


def _pc_signer() -> SasSigner:
    global _sas_signer
    if _sas_signer is None:
        _sas_signer = SasSigner()
    return _sas_signer


def _planetary_computer_sign(href: str) -> str:
    """``href`` signed by this process's SasSigner (one token cache per process)."""
    return _pc_signer().sign(href)


def _planetary_computer_resign(href: str) -> str:
    """``href`` signed with a new token (the cached one was refused)."""
    return _pc_signer().sign(href, fresh=True)


# -- Earthdata Login -------------------------------------------------------------------------------

#: Environment variable holding an Earthdata Login bearer token (used only at read time).
EARTHDATA_TOKEN_ENV = "EARTHDATA_TOKEN"
#: Earthdata Login's username/password variables (earthaccess's "environment" strategy).
EARTHDATA_USERNAME_ENV, EARTHDATA_PASSWORD_ENV = "EARTHDATA_USERNAME", "EARTHDATA_PASSWORD"
#: The Earthdata Login host: the ``machine`` of the ~/.netrc entry, and the only host a
#: login/password is sent to (earthaccess/system.py ``PROD.edl_hostname``). Host[:port].
EARTHDATA_LOGIN_HOST = "urs.earthdata.nasa.gov"
#: What to set when no Earthdata Login works (said in the error).
EARTHDATA_HOWTO = (
    f"set {EARTHDATA_TOKEN_ENV} (a token from https://urs.earthdata.nasa.gov/profile), or put "
    f"'machine {EARTHDATA_LOGIN_HOST} login USER password PASSWORD' in ~/.netrc (or the file "
    f"$NETRC names), or set {EARTHDATA_USERNAME_ENV} and {EARTHDATA_PASSWORD_ENV}, or call "
    "earthaccess.login() in this process")


@dataclass(frozen=True)
class EarthdataLogin:
    """One Earthdata Login set-up: where it came from (said in messages), and a bearer token or a
    (login, password) for the login host. Its repr shows no secret."""

    name: str
    token: str | None = field(default=None, repr=False)
    basic: tuple[str, str] | None = field(default=None, repr=False)


def _netrc_file() -> Path:
    """The netrc file earthaccess and requests read: ``$NETRC`` if set, else ``~/.netrc``."""
    env = os.environ.get("NETRC")
    return Path(env) if env else Path.home() / ".netrc"


def _netrc_login(host: str, what: str = "Earthdata Login") -> EarthdataLogin | None:
    import netrc

    path = _netrc_file()
    if not path.is_file():
        return None
    try:
        entry = netrc.netrc(str(path)).authenticators(host.split(":", 1)[0])
    except (netrc.NetrcParseError, OSError) as e:
        log.warning("%s: not a usable netrc file (%s); %s skips it", path,
                    getattr(e, "msg", type(e).__name__), what)
        return None
    if not entry or not entry[0] or not entry[2]:
        return None
    return EarthdataLogin(f"{path} (machine {host.split(':', 1)[0]})", basic=(entry[0], entry[2]))


def _earthaccess_login() -> EarthdataLogin | None:
    """The login of ``earthaccess.login()`` in this process, if it was called (earthaccess is
    not imported here when the caller did not import it)."""
    import sys

    ea = sys.modules.get("earthaccess")
    if ea is None:
        return None
    try:
        auth = ea.__auth__  # earthaccess >= 0.17: the module-level Auth that login() fills
    except AttributeError:
        return None
    if not getattr(auth, "authenticated", False):
        return None
    token = (getattr(auth, "token", None) or {}).get("access_token")
    user, password = getattr(auth, "username", None), getattr(auth, "password", None)
    basic = (user, password) if user and password else None
    if not token and not basic:
        return None
    return EarthdataLogin("earthaccess.login()", token=token, basic=basic)


def earthdata_logins(login_host: str | None = None) -> list[EarthdataLogin]:
    """The Earthdata Login set-ups found, in the order they are tried: ``$EARTHDATA_TOKEN``, the
    session of ``earthaccess.login()``, the netrc entry for the login host, then
    ``$EARTHDATA_USERNAME``/``$EARTHDATA_PASSWORD`` (the variables earthaccess's "environment"
    strategy reads)."""
    host = login_host or EARTHDATA_LOGIN_HOST
    found: list[EarthdataLogin] = []
    token = os.environ.get(EARTHDATA_TOKEN_ENV)
    if token:
        found.append(EarthdataLogin(f"${EARTHDATA_TOKEN_ENV}", token=token))
    for login in (_earthaccess_login(), _netrc_login(host)):
        if login is not None:
            found.append(login)
    user, password = os.environ.get(EARTHDATA_USERNAME_ENV), os.environ.get(EARTHDATA_PASSWORD_ENV)
    if user and password:
        found.append(EarthdataLogin(f"${EARTHDATA_USERNAME_ENV}/${EARTHDATA_PASSWORD_ENV}", basic=(user, password)))
    return found


def earthdata_headers() -> dict[str, str]:
    """HTTP headers for Earthdata downloads: a bearer token (``$EARTHDATA_TOKEN``, else the token
    of ``earthaccess.login()``), or none. A login/password is not a header: it goes only to the
    login host (:func:`earthdata_session`). Never logged."""
    for login in earthdata_logins():
        if login.token:
            return {"Authorization": f"Bearer {login.token}"}
    return {}


def earthdata_session(login: EarthdataLogin | None, login_host: str | None = None):
    """A ``requests.Session`` that reads with ``login``: its bearer token on every request to the
    data host, its (login, password) as Basic auth on the request the data server redirects to the
    login host (``host[:port]``) - as earthaccess's download session does. The login host's
    cookie then lets the data server serve the file. No netrc lookup of its own (requests would
    otherwise send a netrc password to any host it names)."""
    import requests
    import requests.auth

    host = (login_host or EARTHDATA_LOGIN_HOST).lower()
    basic = login.basic if login is not None else None

    class _Session(requests.Session):
        def rebuild_auth(self, prepared_request, response):
            headers = prepared_request.headers
            if "Authorization" in headers and self.should_strip_auth(response.request.url, prepared_request.url):
                del headers["Authorization"]  # a token or password never follows a redirect elsewhere
            if basic is not None and urlsplit(prepared_request.url).netloc.lower() == host:
                prepared_request.prepare_auth(basic)

    class _NoNetrc(requests.auth.AuthBase):
        """A session auth that adds nothing: with one set, requests does not look up ~/.netrc for
        every host (its proxies and CA settings still come from the environment)."""

        def __call__(self, r):
            return r

    session = _Session()
    session.auth = _NoNetrc()
    if login is not None and login.token:
        session.headers["Authorization"] = f"Bearer {login.token}"
    return session


# -- DLR EOC download: netrc/Basic, or the CAS single sign-on ------------------------------------

#: The DLR EOC file server (EnMAP and DESIS assets of the geoservice STAC): the ``machine`` of
#: its ~/.netrc entry.
DLR_DOWNLOAD_HOST = "download.geoservice.dlr.de"
#: The login/password variables of a DLR data-access account (read only at read time).
DLR_USERNAME_ENV, DLR_PASSWORD_ENV = "DLR_USERNAME", "DLR_PASSWORD"
#: What to set when no DLR login is configured or none is accepted (said in the error).
DLR_HOWTO = (
    f"set {DLR_USERNAME_ENV} and {DLR_PASSWORD_ENV} (an EOC geoservice account with EnMAP/DESIS "
    f"data access), or put 'machine {DLR_DOWNLOAD_HOST} login USER password PASSWORD' in ~/.netrc "
    "(or the file $NETRC names)")
#: Seconds (connect, read) a DLR login exchange may take.
DLR_TIMEOUT_S = (10.0, 60.0)


class AccessMissing(InputDataError):
    """A read needs a credential and none is configured; the message says what to set."""


class AccessRefused(InputDataError):
    """The server refused every credential that was tried; the message names them."""


#: Secret values obtained at read time (a DLR password, session cookies): :func:`redact` takes
#: them out of every text, whatever the caller passes. Process-wide; values are never written.
_live_secrets: set[str] = set()
_live_lock = threading.Lock()


def _remember_secrets(*values: str) -> None:
    with _live_lock:
        _live_secrets.update(v for v in values if v and len(v) >= MIN_SECRET_LEN)


@dataclass(frozen=True)
class DlrAccess:
    """How reads from one DLR data host get in: the login used (its source, for messages), the
    method (``basic``, ``cas`` or ``open``), the GDAL config options to set for each read of
    that host, and the same credential as HTTP headers (for reads made with requests). Both hold
    the secret (a password or session cookies); repr hides them."""

    login: str
    method: str
    options: Mapping[str, str] = field(default_factory=dict, repr=False)
    headers: Mapping[str, str] = field(default_factory=dict, repr=False)


def dlr_logins(host: str = DLR_DOWNLOAD_HOST) -> list[EarthdataLogin]:
    """The DLR logins found, in the order they are tried: the netrc entry for ``host`` (the
    data host, as GFZ's enmap_downloader writes it), then ``$DLR_USERNAME``/``$DLR_PASSWORD``."""
    found: list[EarthdataLogin] = []
    login = _netrc_login(host, "DLR download")
    if login is not None:
        found.append(login)
    user, password = os.environ.get(DLR_USERNAME_ENV), os.environ.get(DLR_PASSWORD_ENV)
    if user and password:
        found.append(EarthdataLogin(f"${DLR_USERNAME_ENV}/${DLR_PASSWORD_ENV}", basic=(user, password)))
    for login in found:
        _remember_secrets(login.basic[1])  # type: ignore[index]
    return found


_dlr_cache: dict[str, DlrAccess] = {}
_dlr_lock = threading.Lock()


def forget_dlr_access() -> None:
    """Drop the cached DLR access of every host (the next read logs in again)."""
    with _dlr_lock:
        _dlr_cache.clear()


def _loopback(host: str | None) -> bool:
    return (host or "") in ("127.0.0.1", "localhost", "::1")


def _may_send_password(url: str) -> bool:
    """A password goes only over https (or to this machine, for local test servers)."""
    u = urlsplit(url)
    return u.scheme == "https" or _loopback(u.hostname)


def plain_session():
    """A ``requests.Session`` that adds no credential of its own (requests would otherwise send a
    ~/.netrc password to whichever host it names, redirects included)."""
    import requests
    import requests.auth

    class _NoNetrc(requests.auth.AuthBase):
        def __call__(self, r):
            return r

    session = requests.Session()
    session.auth = _NoNetrc()
    return session


def _is_file(r, host: str) -> bool:
    """Whether ``r`` is the file itself: 200/206 from the data host, not an HTML (login) page."""
    return (r.status_code in (200, 206) and (urlsplit(r.url).netloc.lower() == host)
            and "text/html" not in r.headers.get("Content-Type", "").lower())


def _first_byte(session, href: str, **kw):
    return session.get(href, headers={"Range": "bytes=0-0"}, timeout=DLR_TIMEOUT_S, **kw)


def _password_form(html: str) -> tuple[str | None, dict[str, str], str, str] | None:
    """The form of ``html`` that has a password input: (action, the other fields to send with
    their values, the login field's name, the password field's name); None when there is none.
    Forms are kept apart, so the fields of another form on the page are not sent."""
    from html.parser import HTMLParser

    forms: list[dict] = []

    class _Parser(HTMLParser):
        current: dict | None = None

        def handle_starttag(self, tag, attrs):
            a = {k: (v or "") for k, v in attrs}
            if tag == "form":
                self.current = {"action": a.get("action"), "fields": {}, "user": None, "password": None}
                forms.append(self.current)
            elif tag == "input" and self.current is not None and a.get("name"):
                kind = a.get("type", "text").lower()
                if kind == "password":
                    self.current["password"] = self.current["password"] or a["name"]
                elif kind in ("text", "email") and self.current["user"] is None:
                    self.current["user"] = a["name"]
                elif kind in ("hidden",) or (kind in ("checkbox", "radio") and "checked" in a):
                    self.current["fields"][a["name"]] = a.get("value", "")

        def handle_endtag(self, tag):
            if tag == "form":
                self.current = None

    _Parser().feed(html)
    for f in forms:
        if f["password"]:
            return f["action"], f["fields"], f["user"] or "username", f["password"]
    return None


def _form_target(page_url: str, action: str | None) -> str:
    """Where a form posts: its action resolved against the page; an empty action posts back to
    the page with its query string (CAS keeps the ``service`` being signed in to there)."""
    from urllib.parse import urljoin

    return urljoin(page_url, action) if action else page_url


def _basic_access(href: str, login: EarthdataLogin) -> tuple[DlrAccess | None, str]:
    """Try HTTP Basic auth on ``href`` (no redirect followed): the access, or why not."""
    if not _may_send_password(href):
        return None, "Basic: not sent over plain http"
    session = plain_session()
    try:
        r = _first_byte(session, href, auth=login.basic, allow_redirects=False)
        with r:
            if _is_file(r, urlsplit(href).netloc.lower()):
                import base64

                user, password = login.basic  # type: ignore[misc]
                basic = base64.b64encode(f"{user}:{password}".encode()).decode()
                _remember_secrets(basic)
                return DlrAccess(login.name, "basic", {"GDAL_HTTP_AUTH": "BASIC",
                                                       "GDAL_HTTP_USERPWD": f"{user}:{password}",
                                                       "GDAL_HTTP_NETRC": "NO"},
                                 {"Authorization": f"Basic {basic}"}), ""
            where = " (a redirect to a login)" if r.is_redirect else ""
            return None, f"Basic: HTTP {r.status_code}{where}"
    finally:
        session.close()


def _cas_access(href: str, login: EarthdataLogin, first=None) -> tuple[DlrAccess | None, str]:
    """Log in through the single sign-on the data server redirects to: post the login form
    (with its hidden fields, e.g. CAS's one-time ``execution``) and keep the session cookies the
    exchange sets; the access holds the cookies the data host accepts, as GDAL_HTTP_COOKIE."""
    import requests

    host = urlsplit(href).netloc.lower()
    session = plain_session()
    try:
        r = _first_byte(session, href, allow_redirects=True)
        with r:
            if _is_file(r, host):
                return DlrAccess("no login", "open"), ""
            page, page_url, status = r.text, r.url, r.status_code
        form = _password_form(page)
        if form is None:
            return None, f"CAS: no login form at {redact_url(page_url)} (HTTP {status})"
        action, fields, user_field, password_field = form
        target = _form_target(page_url, action)
        if not _may_send_password(target):
            return None, f"CAS: login form {redact_url(target)} is not https; password not sent"
        user, password = login.basic  # type: ignore[misc]
        headers = {}
        xsrf = session.cookies.get("XSRF-TOKEN")
        if xsrf:
            headers["X-XSRF-TOKEN"] = xsrf
        install_log_redaction()  # urllib3 logs the redirect lines (a service ticket in a query)
        with session.post(target, data={**fields, user_field: user, password_field: password},
                          headers=headers, timeout=DLR_TIMEOUT_S, allow_redirects=True) as p:
            after = p.status_code
        with _first_byte(session, href, allow_redirects=False) as v:
            if not _is_file(v, host):
                return None, f"CAS: login at {redact_url(target)} answered HTTP {after}, the file then HTTP {v.status_code}"
        cookie = session.prepare_request(requests.Request("GET", href)).headers.get("Cookie", "")
        if not cookie:
            return None, "CAS: the login set no cookie for the data host"
        _remember_secrets(cookie, *(c.value for c in session.cookies if c.value))
        return DlrAccess(login.name, "cas", {"GDAL_HTTP_COOKIE": cookie, "GDAL_HTTP_NETRC": "NO"},
                         {"Cookie": cookie}), ""
    finally:
        session.close()


def dlr_access(href: str, fresh: bool = False) -> DlrAccess:
    """How to read ``href`` (http/https) from a DLR data host, found once per host and process.

    For each login of :func:`dlr_logins` in turn: HTTP Basic auth (what GDAL sends from a netrc
    entry), then the CAS login form the server redirects to (the session cookies it sets are
    handed to GDAL). The first that serves the file is used for every read of the host.
    ``fresh``: find it again (the cached cookies were refused).

    Raises :class:`AccessMissing` when no login is configured, :class:`AccessRefused` when the
    server takes none of them; both one line, naming what was tried and what to set, with no
    secret. A network failure is a :class:`~spectralearth_data.errors.SourceError`.
    """
    import requests

    u = urlsplit(href)
    host = u.netloc.lower()
    with _dlr_lock:
        if not fresh and host in _dlr_cache:
            return _dlr_cache[host]
    shown = redact_url(href)
    logins = dlr_logins(u.hostname or DLR_DOWNLOAD_HOST)
    if not logins:
        raise AccessMissing(f"{shown}: DLR download needs a login, and none is configured; {DLR_HOWTO}")
    tried: list[str] = []
    try:
        for login in logins:
            access, why_basic = _basic_access(href, login)
            if access is None:
                access, why_cas = _cas_access(href, login)
            if access is not None:
                with _dlr_lock:
                    _dlr_cache[host] = access
                log.info("DLR download from %s: %s login (%s)", host, access.method, access.login)
                return access
            tried.append(f"{login.name}: {why_basic}, {why_cas}")
    except requests.RequestException as e:
        raise SourceError(f"{shown}: DLR login exchange failed: {type(e).__name__} "
                          f"({redact(str(e))})") from None
    raise AccessRefused(f"{shown}: DLR refused the login ({'; '.join(tried)}); {DLR_HOWTO}")


def dlr_gdal_options(href: str) -> dict[str, str]:
    """The GDAL config options that let one read of ``href`` in (:func:`dlr_access`)."""
    return dict(dlr_access(href).options)


# -- requester pays (S3) ---------------------------------------------------------------------------

_item_ctx: contextvars.ContextVar[Mapping | None] = contextvars.ContextVar("spectralearth_read_item", default=None)


@contextlib.contextmanager
def reading_item(item: Mapping | None):
    """Within this block, reads are of assets of the STAC ``item``: :func:`gdal_options` looks up
    whether an href is a requester-pays asset of it. Per thread/task (a context variable)."""
    tok = _item_ctx.set(item)
    try:
        yield
    finally:
        _item_ctx.reset(tok)


def _pays(d: Mapping | None) -> bool | None:
    """The requester-pays flag a STAC object states (storage extension v1 ``storage:requester_pays``;
    v2 ``storage:schemes`` entries with ``requester_pays``), or None when it says nothing."""
    if not isinstance(d, Mapping):
        return None
    if "storage:requester_pays" in d:
        return bool(d["storage:requester_pays"])
    schemes = d.get("storage:schemes")
    if isinstance(schemes, Mapping):
        flags = [s.get("requester_pays") for s in schemes.values() if isinstance(s, Mapping)]
        if any(f is not None for f in flags):
            return any(bool(f) for f in flags)
    return None


def requester_pays(item: Mapping | None, href: str) -> bool:
    """Whether reading ``href`` (an asset of STAC ``item``) must say the requester pays: the
    asset's ``storage:requester_pays``, else the item's (properties, then item level)."""
    if not item:
        return False
    base = unsigned_href(href)
    for asset in (item.get("assets") or {}).values():
        if isinstance(asset, Mapping) and asset.get("href") in (href, base):
            flag = _pays(asset)
            if flag is not None:
                return flag
            break
    for d in (item.get("properties"), item):
        flag = _pays(d)
        if flag is not None:
            return flag
    return False


#: What a requester-pays read needs besides the GDAL option (said in its errors).
REQUESTER_PAYS_HOWTO = ("a requester-pays bucket: reads are billed to your AWS account, so they need AWS "
                        "credentials (AWS_ACCESS_KEY_ID and AWS_SECRET_ACCESS_KEY, or AWS_PROFILE)")


def gdal_options(href: str, source: str | None = None) -> dict[str, str]:
    """GDAL config options a read of ``href`` (listed by ``source``) needs:
    ``AWS_REQUEST_PAYER=requester`` for an ``s3://`` href that is a requester-pays asset of the
    item being read (:func:`reading_item`), e.g. Earth Search's Landsat on ``s3://usgs-landsat``;
    for an http(s) href, what its ``auth`` hands GDAL (``dlr``: Basic auth or the session cookies
    of the single sign-on, :func:`dlr_access`). Set them for that read only; they may hold a
    secret (redacted from every message and log record)."""
    if href.startswith("s3://") and requester_pays(_item_ctx.get(), href):
        return {"AWS_REQUEST_PAYER": "requester"}
    if _remote(href):
        options = read_auth(auth_for(source, href)).gdal(href)
        if options:
            install_log_redaction()
        return options
    return {}


# -- dispatch on SourceSpec.auth -------------------------------------------------------------------


def _unchanged(href: str) -> str:
    return href


def _no_headers() -> dict[str, str]:
    return {}


def _no_logins() -> list[EarthdataLogin]:
    return []


def _no_gdal_options(href: str) -> dict[str, str]:
    return {}


@dataclass(frozen=True)
class ReadAuth:
    """What one kind of ``auth`` adds to the read of an http(s) href."""

    sign: Callable[[str], str] = _unchanged  # href -> the href to open (e.g. with a SAS query)
    headers: Callable[[], dict[str, str]] = _no_headers  # HTTP headers to send with the read
    resign: Callable[[str], str] | None = None  # href -> signed with a new credential (after a 403)
    logins: Callable[[], list[EarthdataLogin]] = _no_logins  # log-ins to try in turn (first that works)
    gdal: Callable[[str], dict[str, str]] = _no_gdal_options  # href -> GDAL config options for its read


#: Read-time credentials per value of ``SourceSpec.auth`` (one entry per value it may take).
AUTHS: dict[str, ReadAuth] = {
    "none": ReadAuth(),
    "planetary-computer": ReadAuth(sign=_planetary_computer_sign, resign=_planetary_computer_resign),
    "earthdata": ReadAuth(headers=earthdata_headers, logins=earthdata_logins),
    "dlr": ReadAuth(gdal=dlr_gdal_options),
}


def read_auth(auth: str) -> ReadAuth:
    """The read-time credentials for an ``auth`` value of catalogs/sources.yaml."""
    try:
        return AUTHS[auth]
    except KeyError:
        known = ", ".join(sorted(AUTHS))
        raise CatalogError(f"auth {auth!r}: no such kind of credentials (known: {known}); "
                           "see the sources in catalogs/sources.yaml") from None


@dataclass(frozen=True)
class _CatalogAuth:
    by_source: Mapping[str, str]
    by_host: tuple[tuple[str, tuple[str, ...]], ...]  # (auth, host patterns) per source with hosts


@functools.lru_cache(maxsize=8)
def _catalog_auth(root: str) -> _CatalogAuth:
    from types import MappingProxyType

    from .catalog import load_sources

    sources = load_sources(Path(root))
    return _CatalogAuth(MappingProxyType({name: spec.auth for name, spec in sources.items()}),
                        tuple((spec.auth, spec.hosts) for spec in sources.values() if spec.hosts))


def _current_catalog() -> _CatalogAuth:
    from .catalog import catalog_root

    return _catalog_auth(str(catalog_root()))


def source_auth(source: str | None) -> str:
    """The ``auth`` of ``source`` in catalogs/sources.yaml (read once per process and catalog
    folder); ``none`` for a source that is not listed there (``local:PATH``, a name made up by a
    caller)."""
    if not source or source.startswith("local:"):
        return "none"
    return _current_catalog().by_source.get(source, "none")


def _host_matches(host: str, patterns: Iterable[str]) -> bool:
    hit = False
    for pat in patterns:
        if pat.startswith("!"):
            if fnmatch.fnmatchcase(host, pat[1:].lower()):
                return False
        elif fnmatch.fnmatchcase(host, pat.lower()):
            hit = True
    return hit


def href_auth(href: str) -> str | None:
    """The ``auth`` of the first source in sources.yaml whose ``hosts`` match the host of
    ``href`` (e.g. ``planetary-computer`` for a Planetary Computer blob), else None."""
    if not _remote(href):
        return None
    host = (urlsplit(href).hostname or "").lower()
    for auth, patterns in _current_catalog().by_host:
        if _host_matches(host, patterns):
            return auth
    return None


def auth_for(source: str | None, href: str) -> str:
    """The ``auth`` a read of ``href`` listed by ``source`` needs: decided by the href's host
    when a source claims it (:func:`href_auth`), else by the source's ``auth``."""
    return href_auth(href) or source_auth(source)


def _remote(href: str) -> bool:
    return href.startswith(("http://", "https://"))


def sign_href(source: str | None, href: str) -> str:
    """The href to open for reading ``href`` of ``source``: signed when its ``auth``
    (:func:`auth_for`) signs (``planetary-computer``), else ``href`` itself. Only http(s) hrefs
    are signed. Call it before every open: a token near expiry is replaced.

    Use the result for the read and drop it. A signed href turns on
    :func:`install_log_redaction` in this process, so GDAL never logs its signature.
    """
    if not _remote(href):
        return href
    signed = read_auth(auth_for(source, href)).sign(href)
    if signed != href:
        install_log_redaction()
    return signed


def resign_href(source: str | None, href: str) -> str | None:
    """``href`` signed with a new credential, after the server refused (403) the signed one
    (an expired or revoked SAS token); None when ``href`` is not signed at all (nothing to renew).
    """
    if not _remote(href):
        return None
    auth = read_auth(auth_for(source, href))
    if auth.sign(href) == href:
        return None
    signed = (auth.resign or auth.sign)(href)
    install_log_redaction()
    return signed


def request_headers(source: str | None, href: str) -> dict[str, str]:
    """HTTP headers for reading ``href`` of ``source`` (``earthdata``: the bearer token); empty
    for other sources and for hrefs that are not http(s). Use them for the read only."""
    if not _remote(href):
        return {}
    return read_auth(auth_for(source, href)).headers()


def read_logins(source: str | None, href: str) -> list[EarthdataLogin]:
    """The log-ins to try, in order, for reading http(s) ``href`` of ``source`` (``earthdata``:
    :func:`earthdata_logins`); empty when the read needs none."""
    if not _remote(href):
        return []
    return read_auth(auth_for(source, href)).logins()
