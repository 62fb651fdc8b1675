"""Turn an unsigned asset href into something GDAL can open, signing it at read time.

Hrefs in plans and indexes are always unsigned. Credentials (Planetary Computer SAS tokens,
Earthdata tokens) are applied here, just before a reader opens a file, and are never returned to
callers that write anything down.
"""

from __future__ import annotations

import logging
import re
from collections.abc import Callable
from urllib.parse import urlparse

#: Signer per source name: ``href -> signed href``. Sources that need none are absent.
Signer = Callable[[str], str]


def _planetary_computer_signer(href: str) -> str:
    # Prefer the project's own signer (spectralearth_data.sources) when it exists; otherwise the
    # planetary-computer package (fetches a short-lived SAS token over the network).
    try:
        from ..sources import sign_href  # type: ignore[attr-defined]

        return sign_href("planetary-computer", href)
    except (ImportError, AttributeError):
        import planetary_computer

        return planetary_computer.sign(href)


SIGNERS: dict[str, Signer] = {"planetary-computer": _planetary_computer_signer}


def gdal_path(href: str, source: str | None = None) -> str:
    """The GDAL path for ``href`` (local path, file://, http(s):// via /vsicurl, s3:// via /vsis3,
    gs://, az://), signed for ``source`` when that source needs signing."""
    signer = SIGNERS.get(source or "")
    if signer is not None and href.startswith(("http://", "https://")):
        href = signer(href)
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


_QUERY = re.compile(r"((?:https?|s3|gs|az|abfs)://[^\s?'\"<>]+)\?[^\s'\"<>]+")


def redact(text: str) -> str:
    """``text`` with the query string of every URL replaced by ``?<redacted>``.

    Read-time credentials (SAS signatures, signed-URL tokens) travel in the query string, and
    GDAL names the URL it opened in its errors and retry warnings (``HTTP error code: 503 -
    https://...?sig=...``), which rasterio forwards to Python logging. Hrefs we store never carry
    a query, so nothing useful is lost.
    """
    return _QUERY.sub(r"\1?<redacted>", text)


def _install_log_redaction() -> None:
    """Redact URLs in every log record from rasterio/GDAL, in any process that reads rasters.

    A record factory (not a logger filter) because filters do not apply to records of child
    loggers (``rasterio._env``, ``rasterio._err``, ...) and we do not own the handlers.
    """
    previous = logging.getLogRecordFactory()
    if getattr(previous, "_spectralearth_redacts", False):
        return

    def factory(*args, **kwargs):
        record = previous(*args, **kwargs)
        if record.name.startswith(("rasterio", "GDAL", "fiona", "pyogrio")):
            try:
                msg = record.getMessage()
            except Exception:  # noqa: BLE001 - a malformed record is logged as rasterio made it
                return record
            if "?" in msg:
                record.msg, record.args = redact(msg), ()
        return record

    factory._spectralearth_redacts = True  # type: ignore[attr-defined]
    logging.setLogRecordFactory(factory)


_install_log_redaction()
