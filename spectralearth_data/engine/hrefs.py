"""Turn an unsigned asset href into something GDAL can open, signing it at read time.

Hrefs in plans and indexes are always unsigned. Credentials (Planetary Computer SAS tokens,
Earthdata tokens) are chosen by the source's ``auth`` and applied by
:mod:`spectralearth_data.credentials`, just before a reader opens a file; what they return is
never handed to callers that write anything down.
"""

from __future__ import annotations

from urllib.parse import urlparse

from ..credentials import sign_href


def gdal_path(href: str, source: str | None = None) -> str:
    """The GDAL path for ``href`` (local path, file://, http(s):// via /vsicurl, s3:// via /vsis3,
    gs://, az://), signed when its ``auth`` signs (the href's host, else ``source``: see
    :func:`~spectralearth_data.credentials.auth_for`). Call it before every open."""
    return vsi_path(sign_href(source, href))


def vsi_path(href: str) -> str:
    """The GDAL path for an href as it is (already signed, or needing no signature)."""
    u = urlparse(href)
    if u.scheme in ("", "file"):
        return u.path if u.scheme == "file" else href
    if u.scheme in ("http", "https"):
        return f"/vsicurl/{href}"
    vsi = {"s3": "vsis3", "gs": "vsigs", "az": "vsiaz", "abfs": "vsiaz"}.get(u.scheme)
    if vsi is None:
        from ..errors import InputDataError

        raise InputDataError(f"{href}: unsupported URL scheme {u.scheme!r}")
    return f"/{vsi}/{u.netloc}{u.path}"


def local_path(href: str) -> str | None:
    """The filesystem path of a local href (plain path or file://), else None."""
    u = urlparse(href)
    if u.scheme == "":
        return href
    if u.scheme == "file":
        return u.path
    return None
