"""Can this machine reach each source, and read its data? (``spectralearth check-access``)

For each source of catalogs/sources.yaml, :func:`check_source` makes one search (one item of
the first collection a product of the catalog names there; for CMR one granule) and one header
read of that item's first data asset (a one-byte range request), with the read-time credentials
of the asset's ``auth`` (:mod:`spectralearth_data.credentials`). The answer is one
:class:`Access` line: authorised, or exactly which credential is missing or refused, or that the
host cannot be reached.

Nothing is retried: a DNS failure, a refused connection or a timeout is reported at once (the
connect timeout is a few seconds), so the check answers quickly offline. No secret reaches a
line: every detail goes through :func:`~spectralearth_data.credentials.redact`.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import Any
from urllib.parse import urlsplit

from ..catalog import SourceSpec, load_catalog, load_sources
from ..credentials import (
    DLR_HOWTO,
    EARTHDATA_HOWTO,
    PC_SUBSCRIPTION_KEY_ENV,
    AccessMissing,
    AccessRefused,
    EarthdataLogin,
    auth_for,
    dlr_access,
    earthdata_session,
    plain_session,
    read_logins,
    redact,
    redact_url,
    sign_href,
)
from ..errors import SourceError

__all__ = ["Access", "CONNECT_TIMEOUT_S", "check_access", "check_source"]

#: Seconds to wait for a connection (then the host is unreachable) and for an answer.
CONNECT_TIMEOUT_S = 3.0
READ_TIMEOUT_S = 20.0

#: What a check found, in order of how far it got.
STATUSES = ("ok", "missing", "refused", "unreachable", "error", "skipped")


@dataclass(frozen=True)
class Access:
    """One source's answer: ``status`` (one of STATUSES) and a one-line ``detail``."""

    source: str
    status: str
    detail: str

    @property
    def ok(self) -> bool:
        return self.status in ("ok", "skipped")

    def line(self) -> str:
        return f"{self.source}: {self.status}: {self.detail}"


class _Unreachable(Exception):
    pass


def _why(e: Exception) -> str:
    """A short reason for a network failure (no URL, no retry talk)."""
    text = str(e)
    for needle, why in (("Name or service not known", "name not resolved"),
                        ("Temporary failure in name resolution", "name not resolved"),
                        ("nodename nor servname", "name not resolved"),
                        ("getaddrinfo failed", "name not resolved"),
                        ("Connection refused", "connection refused"),
                        ("timed out", "timed out"), ("Connection reset", "connection reset"),
                        ("Network is unreachable", "network unreachable")):
        if needle in text:
            return why
    return type(e).__name__


def _get(session, method: str, url: str, **kw):
    """One request, no retry: a connection failure or timeout raises :class:`_Unreachable`."""
    import requests

    try:
        return session.request(method, url, timeout=(CONNECT_TIMEOUT_S, READ_TIMEOUT_S), **kw)
    except (requests.ConnectionError, requests.Timeout) as e:
        raise _Unreachable(f"{urlsplit(url).netloc} ({_why(e)}; not retried)") from None


def _collections(spec: SourceSpec) -> list[str]:
    """The collections (STAC) or short names (CMR) the catalog's products name for ``spec``."""
    out: list[str] = []
    for sensor in load_catalog().values():
        for p in sensor.providers:
            name = p.collection if spec.kind == "stac-api" else p.short_name
            if p.source == spec.name and name and name not in out:
                out.append(name)
    return out


def _asset_href(assets: Mapping[str, Any]) -> str | None:
    """The first http(s) data asset of an item (a ``data`` role first, then any)."""
    hrefs = [(a.get("roles") or [], a.get("href")) for a in assets.values() if isinstance(a, Mapping)]
    remote = [(roles, h) for roles, h in hrefs if isinstance(h, str) and h.startswith(("http://", "https://"))]
    for roles, h in remote:
        if "data" in roles:
            return h
    return remote[0][1] if remote else None


def _search_one(spec: SourceSpec) -> tuple[str | None, str]:
    """(an asset href of the first item found, what was searched); raises _Unreachable."""
    session = plain_session()
    try:
        names = _collections(spec)
        url = (spec.url or "").rstrip("/")
        if spec.kind == "stac-api":
            body: dict[str, Any] = {"limit": 1}
            if names:
                body["collections"] = names[:1]
            r = _get(session, "POST", f"{url}/search", json=body)
            what = f"search of {names[0] if names else 'any collection'}"
            if r.status_code != 200:
                raise SourceError(f"{what}: HTTP {r.status_code} from {redact_url(r.url)}")
            features = (r.json() or {}).get("features") or []
            return (_asset_href(features[0].get("assets") or {}) if features else None), what
        params: dict[str, Any] = {"page_size": 1}
        if names:
            params["short_name"] = names[0]
        r = _get(session, "GET", f"{url}/granules.umm_json", params=params)
        what = f"CMR search of {names[0] if names else 'any collection'}"
        if r.status_code != 200:
            raise SourceError(f"{what}: HTTP {r.status_code} from {redact_url(r.url)}")
        items = (r.json() or {}).get("items") or []
        for item in items[:1]:
            for link in (item.get("umm") or {}).get("RelatedUrls") or []:
                u = link.get("URL", "")
                if link.get("Type") == "GET DATA" and u.startswith(("http://", "https://")):
                    return u, what
        return None, what
    except ValueError as e:  # not JSON
        raise SourceError(f"search answered something that is not JSON ({type(e).__name__})") from None
    finally:
        session.close()


def _served(r) -> bool:
    return r.status_code in (200, 206) and "text/html" not in r.headers.get("Content-Type", "").lower()


def _read_header(source: str, href: str) -> Access:
    """One-byte read of ``href`` with its read-time credentials."""
    shown = redact_url(href)
    auth = auth_for(source, href)
    rng = {"Range": "bytes=0-0"}
    if auth == "dlr":
        try:
            access = dlr_access(href)
        except AccessMissing:
            return Access(source, "missing", f"{shown}: DLR login; {DLR_HOWTO}")
        except AccessRefused as e:
            return Access(source, "refused", str(e))
        except SourceError as e:  # the login exchange could not reach a host
            text = redact(str(e))
            down = any(w in text for w in ("ConnectionError", "Timeout", "SSLError"))
            return Access(source, "unreachable" if down else "error", text)
        return Access(source, "ok", f"reachable and authorised ({shown} read with {access.method} login "
                                    f"from {access.login})")
    if auth == "earthdata":
        logins: list[EarthdataLogin | None] = [*read_logins(source, href)] or [None]
        refused = []
        for login in logins:
            session = earthdata_session(login)
            try:
                with _get(session, "GET", href, headers=rng, allow_redirects=True) as r:
                    if _served(r):
                        who = login.name if login else "no login"
                        return Access(source, "ok", f"reachable and authorised ({shown} read with {who})")
                    refused.append(f"{login.name if login else 'no login'}: HTTP {r.status_code}")
            finally:
                session.close()
        if logins == [None]:
            return Access(source, "missing", f"{shown}: Earthdata Login ({refused[0]}); {EARTHDATA_HOWTO}")
        return Access(source, "refused", f"{shown}: Earthdata Login refused ({'; '.join(refused)}); "
                                         f"{EARTHDATA_HOWTO}")
    try:
        signed = sign_href(source, href)
    except SourceError as e:
        import os

        text = str(e)
        if PC_SUBSCRIPTION_KEY_ENV in text:
            state = "refused" if os.environ.get(PC_SUBSCRIPTION_KEY_ENV) else "missing"
            return Access(source, state, redact(text))
        return Access(source, "refused", redact(text))
    session = plain_session()
    try:
        with _get(session, "GET", signed, headers=rng, allow_redirects=True) as r:
            if _served(r):
                how = "signed" if signed != href else "no credential needed"
                return Access(source, "ok", f"reachable and authorised ({shown} read, {how})")
            if r.status_code in (401, 403):
                need = ("the SAS token was refused" if signed != href
                        else f"the server wants a credential and this source has auth: {auth}")
                return Access(source, "refused", f"{shown}: HTTP {r.status_code}; {need}")
            return Access(source, "error", f"{shown}: HTTP {r.status_code}")
    finally:
        session.close()


def check_source(spec: SourceSpec) -> Access:
    """One search and one asset header read of ``spec`` (see the module docstring)."""
    if spec.kind in ("local", "demo") or not spec.url:
        return Access(spec.name, "skipped", f"kind {spec.kind}: files on this machine, nothing remote to check")
    try:
        href, what = _search_one(spec)
        if href is None:
            return Access(spec.name, "ok", f"reachable ({what} answered); no item with an http(s) asset to read")
        return _read_header(spec.name, href)
    except _Unreachable as e:
        return Access(spec.name, "unreachable", str(e))
    except SourceError as e:
        return Access(spec.name, "error", redact(str(e)))
    except Exception as e:  # noqa: BLE001 - one line per source, whatever failed
        import requests

        if isinstance(e, requests.RequestException):
            return Access(spec.name, "error", f"{type(e).__name__} ({redact(str(e))})")
        raise


def check_access(names: Iterable[str] | None = None) -> list[Access]:
    """:func:`check_source` for the named sources (all of catalogs/sources.yaml when None)."""
    specs = load_sources()
    wanted = list(names) if names else list(specs)
    unknown = [n for n in wanted if n not in specs]
    if unknown:
        raise SourceError(f"unknown source {unknown[0]!r}; known sources: {', '.join(sorted(specs))}")
    return [check_source(specs[n]) for n in wanted]
