"""Read-time credentials: Planetary Computer SAS signing and Earthdata bearer tokens.

Plans and indexes hold unsigned hrefs. A reader calls :func:`sign_href` just before it opens a
file; the signed URL is used and dropped, never written anywhere. SAS tokens are cached per
(storage account, container) until shortly before they expire, so a long tiling run keeps working
and does not ask for a token per file.
"""

from __future__ import annotations

import os
import threading
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from urllib.parse import urlsplit

from ..errors import SourceError

#: Environment variable holding an Earthdata Login bearer token (used only at read time).
EARTHDATA_TOKEN_ENV = "EARTHDATA_TOKEN"


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


_default_signer: SasSigner | None = None


def sign_href(source: str, href: str) -> str:
    """Sign ``href`` for reading from ``source`` (only Planetary Computer hrefs need it)."""
    global _default_signer
    if source != "planetary-computer":
        return href
    if _default_signer is None:
        _default_signer = SasSigner()
    return _default_signer.sign(href)


def earthdata_headers() -> dict[str, str]:
    """HTTP headers for Earthdata downloads: a bearer token from ``$EARTHDATA_TOKEN`` if set.

    Without it, requests/GDAL fall back to ``~/.netrc`` (urs.earthdata.nasa.gov). Never logged.
    """
    token = os.environ.get(EARTHDATA_TOKEN_ENV)
    return {"Authorization": f"Bearer {token}"} if token else {}
